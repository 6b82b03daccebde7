import ChatModel
import Foundation
import LocalStore
import SyncEngine
import SyncServer

/// The properties every run must have once everything is delivered.
struct SimulationChecker {
    let world: World

    func check() async throws -> [String] {
        var failures: [String] = []
        let serverStates = await world.server.states(userID: world.userID)
        let server = Dictionary(uniqueKeysWithValues: serverStates.map { ($0.key, $0) })
        let serverLive = live(serverStates)

        // 1. Convergence: every replica holds exactly the server's live rows, values and stamps.
        for replica in world.replicas {
            let states = try replica.store.allRowStates()
            let rows = live(states)
            if rows != serverLive {
                let missing = Set(serverLive.keys).subtracting(rows.keys)
                let extra = Set(rows.keys).subtracting(serverLive.keys)
                let differing = rows.keys.filter { serverLive[$0] != nil && serverLive[$0] != rows[$0] }
                failures.append("replica \(replica.id) diverged: \(missing.count) rows missing, \(extra.count) extra, "
                    + "\(differing.count) differ (e.g. \((missing.first ?? extra.first ?? differing.first).map { "\($0.table)/\($0.id)" } ?? "-"))")
            }
            let status = try replica.store.syncStatus()
            if status.pendingChanges != 0 { failures.append("replica \(replica.id) still has \(status.pendingChanges) pending changes") }
            if status.parkedRows != 0 { failures.append("replica \(replica.id) still has \(status.parkedRows) rows waiting for a parent") }
        }

        // Every replica's ledger shows every loss the server recorded.
        let serverLedger = Set(await world.server.conflicts.map(\.identity))
        for replica in world.replicas {
            let local = Set(try replica.store.conflicts(limit: 1_000_000).map(\.conflict.identity))
            let missing = serverLedger.subtracting(local)
            if !missing.isEmpty { failures.append("replica \(replica.id) lacks \(missing.count) of the server's conflict records") }
        }

        // 2. No write lost without a reason: each is the current value, was overwritten by a
        //    writer that had seen it, lost a recorded conflict, or went with a deleted row.
        let ledger = await world.server.conflicts
        var lostStamps: Set<Stamp> = Set(ledger.compactMap(\.loserStamp))
        for replica in world.replicas {
            lostStamps.formUnion(try replica.store.conflicts(limit: 1_000_000).compactMap(\.conflict.loserStamp))
        }
        for write in world.log.writes {
            if let reason = unexplained(write, server: server, lostStamps: lostStamps) {
                failures.append("\(write.key.table)/\(write.key.id).\(write.column) written at \(write.stamp): \(reason)")
                if ProcessInfo.processInfo.environment["CHAT_SIM_DEBUG"] != nil {
                    for other in world.log.columnWrites[ColumnKey(key: write.key, column: write.column)] ?? [] {
                        failures.append("    write \(other.stamp) = \(other.value) vv \(other.vv.entries.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" })")
                    }
                    for conflict in ledger where conflict.rowID == write.key.id {
                        failures.append("    ledger \(conflict.kind) \(conflict.column ?? "-") loser \(conflict.loserStamp.map { "\($0)" } ?? "-") winner \(conflict.winnerStamp.map { "\($0)" } ?? "-")")
                    }
                    if let state = server[write.key] {
                        failures.append("    server \(state.fields[write.column].map { "\($0.stamp) = \($0.value)" } ?? "-") vv \(state.vv.entries.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" })")
                    }
                }
                if failures.count > 20 { break }
            }
        }

        // 3. Counters exact: every increment to a live session counted once, no more, no less.
        for (sessionID, counters) in world.log.increments {
            guard let state = server[RowKey(table: "sessions", id: sessionID)], !state.isDeleted else { continue }
            for (name, expected) in counters {
                let actual = state.counters[name]?.total ?? 0
                if actual != expected {
                    failures.append("sessions/\(sessionID) counter \(name) is \(actual), expected \(expected)")
                }
            }
        }
        return failures
    }

    func live(_ states: [RowChange]) -> [RowKey: RowChange] {
        Dictionary(uniqueKeysWithValues: states.filter { !$0.isDeleted }.map { ($0.key, $0) })
    }

    /// Why a write is not visible, or `nil` when its fate is accounted for.
    func unexplained(_ write: WriteLog.FieldWrite, server: [RowKey: RowChange], lostStamps: Set<Stamp>) -> String? {
        if deletedOrGone(write.key, server: server) { return nil }
        guard let state = server[write.key] else { return "the row is missing and no ancestor was deleted" }
        if write.column.isEmpty { return "the row was deleted here but is live on the server" }
        guard let field = state.fields[write.column] else { return "the column has no value on the server" }
        if field.stamp == write.stamp {
            return field.value == write.value ? nil : "the server holds another value under the same stamp"
        }
        let rule = ChatSchema.table(write.key.table)?.column(write.column)?.rule ?? .lastWriterWins
        switch rule {
        case .maximum:
            return (field.value.intValue ?? .min) >= (write.value.intValue ?? .min) ? nil : "a maximum went down"
        case .firstWriterWins:
            return field.stamp < write.stamp ? nil : "a first write was replaced by a later one"
        case .statusRank(let ranks):
            let (now, then) = (ranks[field.value.stringValue ?? ""] ?? -1, ranks[write.value.stringValue ?? ""] ?? -1)
            if now < then { return "a status moved backwards" }
            if now > then { return nil }
            fallthrough
        default:
            if field.stamp < write.stamp { return "an older write replaced it" }
            return supersededOrRecorded(write, current: field, lostStamps: lostStamps)
                ? nil : "overwritten by \(field.stamp) concurrently, and no conflict was recorded"
        }
    }

    /// An overwritten write is accounted for when the loss is in a conflict ledger, or when a
    /// later write to the same column by a writer that had seen it, or of the same value, is
    /// itself accounted for (the current value, or recorded in turn): a chain of informed or
    /// equal overwrites ending in a conflict or in the current value.
    func supersededOrRecorded(_ write: WriteLog.FieldWrite, current: FieldValue, lostStamps: Set<Stamp>) -> Bool {
        var frontier = [write]
        var visited: Set<Stamp> = []
        while let candidate = frontier.popLast() {
            guard visited.insert(candidate.stamp).inserted else { continue }
            // Overwritten by the same value: nothing was lost.
            if candidate.stamp == current.stamp || candidate.value == current.value || lostStamps.contains(candidate.stamp) {
                return true
            }
            // Next in the chain: writes that had seen this one, and writes of the same value with
            // a later stamp, which absorb it when they meet without any value being lost (so
            // no conflict is recorded for it; the fate of the value is then theirs).
            frontier += (world.log.columnWrites[ColumnKey(key: write.key, column: write.column)] ?? [])
                .filter { $0.stamp != candidate.stamp && ($0.vv.contains(candidate.stamp) || ($0.value == candidate.value && $0.stamp > candidate.stamp)) }
        }
        return false
    }

    /// Whether the row was deleted, itself or through an ancestor.
    func deletedOrGone(_ key: RowKey, server: [RowKey: RowChange]) -> Bool {
        var current: RowKey? = key
        while let row = current {
            if server[row]?.isDeleted == true { return true }
            current = world.log.parents[row]
        }
        return false
    }
}
