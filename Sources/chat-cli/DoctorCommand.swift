import ArgumentParser
import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import SyncEngine

/// `chat-cli doctor`: is this replica the same as the server, and if not, why.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare this replica with the server session by session, and say what is waiting and why.",
        discussion: """
            Digests every session here and on the server (SHA-256 over the row states, with their \
            stamps), lists the writes waiting to be pushed and the pulled rows waiting for a parent, \
            and ends with a one-line verdict. Exits 0 when the replica matches the server, 1 otherwise.
            """)

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "List at most this many pending writes and parked rows.") var limit = 20

    struct SessionReport: Encodable {
        var sessionID: String
        var status: String
        var reason: String?
        var localRows: Int?
        var serverRows: Int?
        var localDigest: String?
        var serverDigest: String?
    }

    struct Report: Encodable {
        var inSync: Bool
        var verdict: String
        var replica: String
        var server: String?
        var serverReachable: Bool
        var localCursor: Int64
        var serverCursor: Int64?
        var pendingWrites: Int
        var pendingWritesListed: [ChatStore.PendingWrite]
        var parkedRows: [ChatStore.ParkedRow]
        var sessionsMatching: Int
        var sessions: [SessionReport]
    }

    func run() async throws {
        var inSync = false
        try await handled {
            let replica = try store.open()
            let report = try await diagnose(replica)
            inSync = report.inSync
            if json { try printJSON(report) } else { printText(report) }
        }
        if !inSync { throw ExitCode(1) }
    }

    func diagnose(_ replica: ChatStore) async throws -> Report {
        let status = try replica.syncStatus()
        let (cursor, states) = try replica.snapshot()
        let local = try SessionDigests.compute(states)
        let sessionOf = SessionDigests.attribution(states)
        let pending = try replica.pendingWrites(limit: Int.max)
        // Sessions with unpushed writes (a pending delete of a row no longer here counts as its own).
        var pendingSessions = Set<String>()
        for write in pending {
            let key = RowKey(table: write.table, id: write.rowID)
            pendingSessions.insert(write.table == ChatSchema.sessions.name ? write.rowID : sessionOf[key] ?? "")
        }
        let parked = try replica.parkedRows(limit: limit)
        var report = Report(
            inSync: false, verdict: "", replica: status.replicaID, server: nil, serverReachable: false, localCursor: cursor,
            serverCursor: nil, pendingWrites: pending.count, pendingWritesListed: Array(pending.prefix(limit)), parkedRows: parked,
            sessionsMatching: 0, sessions: [])
        guard let server = try serverConfiguration(replica) else {
            report.verdict = "Only checked locally (\(local.count) sessions, \(pending.count) writes waiting): no server is configured; run `chat-cli configure --server URL --token TOKEN`."
            return report
        }
        report.server = server.url
        let remote: DigestsResponse
        do {
            remote = try await HTTPSyncTransport(baseURL: server.url, token: server.token, timeout: .seconds(10)).digests()
        } catch let error as SyncError {
            report.verdict = "Could not compare with the server: \(describe(error))"
            return report
        }
        report.serverReachable = true
        report.serverCursor = remote.cursor
        let behind = max(0, remote.cursor - cursor)
        let localByID = Dictionary(uniqueKeysWithValues: local.map { ($0.sessionID, $0) })
        let remoteByID = Dictionary(uniqueKeysWithValues: remote.sessions.map { ($0.sessionID, $0) })
        var unexplained = 0
        for id in Set(localByID.keys).union(remoteByID.keys).sorted() {
            let mine = localByID[id], theirs = remoteByID[id]
            if let mine, let theirs, mine.digest == theirs.digest {
                report.sessionsMatching += 1
                continue
            }
            var reason: String
            let status = mine == nil ? "only on the server" : theirs == nil ? "only here" : "differs"
            if pendingSessions.contains(id) {
                reason = "this replica has writes to push in it"
            } else if behind > 0 {
                reason = "the server has \(behind) changes this replica has not pulled"
            } else if !parked.isEmpty {
                reason = "rows wait here for a parent"
            } else {
                reason = "nothing is waiting on either side: the replicas diverged"
                unexplained += 1
            }
            report.sessions.append(SessionReport(
                sessionID: id, status: status, reason: reason, localRows: mine?.rows, serverRows: theirs?.rows,
                localDigest: mine?.digest, serverDigest: theirs?.digest))
        }
        if report.sessions.isEmpty, pending.isEmpty, behind == 0, parked.isEmpty {
            report.inSync = true
            report.verdict = "In sync: all \(report.sessionsMatching) sessions match the server at change \(remote.cursor)."
        } else if unexplained > 0 {
            report.verdict = "Diverged: \(unexplained) sessions differ from the server with nothing waiting; run `chat-cli sync`, and if they still differ, report it with `chat-cli doctor --json`."
        } else {
            report.verdict = "Not in sync yet: \(pending.count) writes to push, \(behind) changes to pull, \(report.sessions.count) sessions differ; run `chat-cli sync`."
        }
        return report
    }

    func printText(_ report: Report) {
        print("replica \(report.replica), pulled up to change \(report.localCursor)"
            + (report.serverCursor.map { "; the server is at \($0)" } ?? ""))
        if report.pendingWrites > 0 {
            print("\(report.pendingWrites) writes wait to be pushed:")
            for write in report.pendingWritesListed {
                let columns = write.columns.isEmpty ? "delete" : write.columns.joined(separator: ", ")
                print("  \(write.table) \(write.rowID): \(columns) (\(write.revisions) writes since \(formatTime(write.firstWrittenAt)))")
            }
            if report.pendingWrites > report.pendingWritesListed.count {
                print("  … and \(report.pendingWrites - report.pendingWritesListed.count) more")
            }
        }
        if !report.parkedRows.isEmpty {
            print("\(report.parkedRows.count) pulled rows wait for a parent:")
            for row in report.parkedRows { print("  \(row.table) \(row.rowID): \(row.reason)") }
        }
        if report.serverReachable {
            print("\(report.sessionsMatching) sessions match the server")
            for session in report.sessions {
                print("  session \(session.sessionID.isEmpty ? "(rows without a session)" : session.sessionID): \(session.status); \(session.reason ?? "")")
            }
        }
        print(report.verdict)
    }
}
