import ChatModel
import Foundation
import LocalStore
import SyncEngine
import SyncServer
import TestSupport

/// The simulated devices, server and network of one seed.
final class World {
    final class Replica {
        let id: ReplicaID
        let path: String?
        let skew: Int64
        var store: ChatStore
        /// Assistant replies this replica is streaming: message id and its parts.
        var streaming: [(message: String, parts: [String])] = []

        init(id: ReplicaID, path: String?, skew: Int64, store: ChatStore) {
            self.id = id
            self.path = path
            self.skew = skew
            self.store = store
        }
    }

    let seed: UInt64
    var random: SeededRandom
    /// Decides the server's own writes (what the REST API does), from a stream of its own so the
    /// devices' schedule for a seed stays what it was before the server wrote.
    var serverRandom: SeededRandom
    /// Decides the live channel's messages (`World+Live`), from a stream of its own too.
    var liveRandom: SeededRandom
    let liveMessages: Bool
    var live = LiveState()
    let serverClock = ServerReplica.Clock()
    var serverWrites = 0
    let clock = SimulatedClock()
    let server = InMemorySyncRepository()
    let network: SimulatedNetwork
    var replicas: [Replica] = []
    var log = WriteLog()
    var refused = 0
    var crashes = 0
    let directory: URL?
    let userID: Int64 = 1

    init(seed: UInt64, options: Simulation.Options) throws {
        self.seed = seed
        self.random = SeededRandom(seed: seed)
        self.serverRandom = SeededRandom(seed: seed ^ 0x5E_4E4E_5E4E)
        self.liveRandom = SeededRandom(seed: seed ^ 0x11_7E11_7E11)
        self.liveMessages = options.liveMessages
        let clock = clock
        self.network = SimulatedNetwork(server: server, userID: userID, seed: seed, faults: options.faults, now: { clock.now })
        let count = Int.random(in: 2...8, using: &random)
        if options.onDisk {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("chat-sim-\(seed)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            directory = url
        } else {
            directory = nil
        }
        for index in 0..<count {
            let id = ReplicaID("r\(index)-\(seed % 10_000)")
            let skew = Int64.random(in: -5_000...5_000, using: &random)
            let path = directory?.appendingPathComponent("\(id.rawValue).sqlite").path
            let store = try Self.open(id: id, path: path, now: clock.reading(skew: skew))
            replicas.append(Replica(id: id, path: path, skew: skew, store: store))
        }
    }

    static func open(id: ReplicaID, path: String?, now: @escaping @Sendable () -> Int64) throws -> ChatStore {
        if let path { return try ChatStore.open(path: path, now: now, replicaID: id) }
        return try ChatStore.inMemory(replicaID: id, now: now)
    }

    func cleanUp() {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func newID(_ prefix: String) -> String {
        "\(prefix)-\(String(random.next() & 0xFFFF_FFFF_FFFF, radix: 36))"
    }

    func pick<T>(_ items: [T]) -> T? {
        items.isEmpty ? nil : items[Int.random(in: 0..<items.count, using: &random)]
    }

    func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &random) < probability }

    func synchronizer(_ replica: Replica) -> Synchronizer<ChatStore, SimulatedNetwork.Transport> {
        Synchronizer(storage: replica.store, transport: network.transport(for: replica.id),
                     pushBatchSize: Int.random(in: 1...6, using: &random), pullPageSize: Int.random(in: 1...6, using: &random),
                     // A prefetch would race the apply and make a seed's schedule depend on timing.
                     prefetchPages: false)
    }

    // MARK: The schedule

    func runSchedule(steps: Int) async throws {
        for _ in 0..<steps {
            clock.advance(Int64.random(in: 1...40, using: &random))
            if Double.random(in: 0..<1, using: &serverRandom) < 0.06 { try await serverWrite() }
            if liveMessages { try await liveStep() }
            guard let replica = pick(replicas) else { return }
            let roll = Double.random(in: 0..<1, using: &random)
            switch roll {
            case ..<0.55: try write(on: replica)
            case ..<0.70: await attempt { try await self.synchronizer(replica).syncOnce(nowMillis: { [clock] in clock.now }) }
            case ..<0.78: await attempt { try await self.synchronizer(replica).pushAll() }
            case ..<0.86: await attempt { try await self.synchronizer(replica).pullAll() }
            case ..<0.92:
                network.setPartitioned(replica.id, !network.isPartitioned(replica.id))
                if network.isPartitioned(replica.id) { dropLiveMessages(for: replica) }
            case ..<0.96: _ = try await network.deliverLate()
            default: try crash(replica)
            }
        }
    }

    /// Runs a sync step; network failures are expected, anything else is a finding.
    func attempt(_ body: () async throws -> some Any) async {
        do {
            _ = try await body()
        } catch is SyncError {
            // Injected fault or partition: the replica simply tries again later.
        } catch {
            pendingBug = pendingBug ?? "\(error)"
        }
    }

    var pendingBug: String?

    /// A crash: the process dies and restarts. On disk the store is closed and reopened from
    /// its file; in memory nothing survives but the database, which is what a restart keeps.
    func crash(_ replica: Replica) throws {
        crashes += 1
        replica.streaming.removeAll()
        dropLiveMessages(for: replica)
        if let path = replica.path {
            replica.store = try Self.open(id: replica.id, path: path, now: clock.reading(skew: replica.skew))
        }
    }

    // MARK: Chat operations

    func write(on replica: Replica) throws {
        let store = replica.store
        let sessions = try store.sessions(includeArchived: true, limit: 100)
        let roll = Double.random(in: 0..<1, using: &random)
        do {
            if sessions.isEmpty || roll < 0.12 {
                let id = newID("s")
                try store.createSession(title: "t\(random.next() % 100)", agent: "sim", provider: "p", model: "m", projectPath: "/", id: id)
                try record(replica, [RowKey(table: "sessions", id: id)])
                return
            }
            let session = pick(sessions)!
            let sessionKey = RowKey(table: "sessions", id: session.id)
            switch roll {
            case ..<0.22:
                try store.renameSession(id: session.id, title: "title \(random.next() % 1000)")
                try record(replica, [sessionKey])
            case ..<0.26:
                try store.archiveSession(id: session.id, archived: !session.isArchived)
                try record(replica, [sessionKey])
            case ..<0.29:
                try store.deleteSession(id: session.id)
                try record(replica, [sessionKey])
            case ..<0.50:
                let (id, part) = (newID("m"), newID("p"))
                try store.appendUserMessage(sessionID: session.id, text: "hello \(random.next() % 1000)", id: id, partID: part)
                log.parents[RowKey(table: "messages", id: id)] = sessionKey
                log.parents[RowKey(table: "message_parts", id: part)] = RowKey(table: "messages", id: id)
                try record(replica, [RowKey(table: "messages", id: id), RowKey(table: "message_parts", id: part), sessionKey])
            case ..<0.62:
                let id = newID("m")
                try store.startAssistantMessage(sessionID: session.id, id: id)
                log.parents[RowKey(table: "messages", id: id)] = sessionKey
                replica.streaming.append((id, []))
                try record(replica, [RowKey(table: "messages", id: id), sessionKey])
            default:
                try stream(on: replica)
            }
        } catch let error as LocalStoreError {
            // The replica refuses the write (the row was deleted or finished meanwhile): fine,
            // nothing was written and nothing is expected.
            _ = error
            refused += 1
        }
    }

    /// The server writes as its own replica, as the REST API does: rename, archive or restore,
    /// append a user message, or delete a session, on the server's current state.
    func serverWrite() async throws {
        let sessions = await server.states(userID: userID).filter { $0.table == "sessions" && !$0.isDeleted }.sorted { $0.id < $1.id }
        guard !sessions.isEmpty else { return }
        let session = sessions[Int.random(in: 0..<sessions.count, using: &serverRandom)]
        func id(_ prefix: String) -> String { "\(prefix)-\(String(serverRandom.next() & 0xFFFF_FFFF_FFFF, radix: 36))" }
        let now = clock.now
        var edits: [RowEdit]
        switch Double.random(in: 0..<1, using: &serverRandom) {
        case ..<0.35:
            edits = [ChatEdits.updateSession(id: session.id, .init(title: "server \(serverRandom.next() % 1000)"), at: now)]
        case ..<0.55:
            let archived = (session.value("archived_at") ?? .null) != .null
            edits = [ChatEdits.updateSession(id: session.id, .init(archived: !archived), at: now)]
        case ..<0.95:
            let (message, part) = (id("sm"), id("sp"))
            let origin = ChatEdits.Origin(
                sessionID: session.id, agent: session.value("agent")?.stringValue ?? "", provider: session.value("provider")?.stringValue ?? "",
                model: session.value("model")?.stringValue ?? "")
            edits = ChatEdits.appendUserMessage(in: origin, text: "from the web", id: message, partID: part, at: now)
            log.parents[RowKey(table: "messages", id: message)] = session.key
            log.parents[RowKey(table: "message_parts", id: part)] = RowKey(table: "messages", id: message)
        default:
            edits = [ChatEdits.deleteSession(id: session.id)]
        }
        let states = try await server.write(userID: userID, clock: serverClock, wallMillis: now, edits)
        serverWrites += 1
        for state in states {
            let stamp = Stamp(hlc: state.vv[ServerReplica.replicaID], replica: ServerReplica.replicaID)
            if state.tombstone == stamp {
                log.add(.init(key: state.key, column: "", value: .null, stamp: stamp, vv: state.vv))
                continue
            }
            for (column, field) in state.fields where field.stamp == stamp {
                log.add(.init(key: state.key, column: column, value: field.value, stamp: stamp, vv: state.vv))
            }
        }
    }

    /// Continues one of the replies this replica is streaming: a new part, a rewrite, a tool
    /// result with usage of tool time, completion with token usage, or failure.
    func stream(on replica: Replica) throws {
        guard !replica.streaming.isEmpty else { return }
        let index = Int.random(in: 0..<replica.streaming.count, using: &random)
        let (messageID, parts) = replica.streaming[index]
        let messageKey = RowKey(table: "messages", id: messageID)
        let store = replica.store
        guard let message = try store.message(id: messageID) else {
            replica.streaming.remove(at: index)
            throw LocalStoreError.notFound(table: "messages", id: messageID)
        }
        let sessionKey = RowKey(table: "sessions", id: message.sessionID)
        let roll = Double.random(in: 0..<1, using: &random)
        if parts.isEmpty || roll < 0.25 {
            let id = newID("p")
            try store.addPart(messageID: messageID, type: .text, content: ["text": "a"], stepIndex: 0, id: id)
            log.parents[RowKey(table: "message_parts", id: id)] = messageKey
            replica.streaming[index].parts.append(id)
            try record(replica, [RowKey(table: "message_parts", id: id)])
        } else if roll < 0.33, let part = pick(parts) {
            // An artifact on one of this reply's parts (the duplicate-artifact race between two
            // replicas is covered by LocalStore's and the server's tests, not here).
            let id = newID("a")
            try store.addArtifact(partID: part, kind: "file", path: "/tmp/\(id)", mime: "text/plain", size: 1, id: id)
            log.parents[RowKey(table: "artifacts", id: id)] = RowKey(table: "message_parts", id: part)
            try record(replica, [RowKey(table: "artifacts", id: id)])
        } else if roll < 0.60, let part = pick(parts) {
            let text = String(repeating: "x", count: Int(random.next() % 40))
            try store.updatePart(id: part, content: ["text": .string(text)])
            try record(replica, [RowKey(table: "message_parts", id: part)])
        } else if roll < 0.72 {
            let id = newID("p")
            let duration = Int64(random.next() % 500)
            let tool = ["bash", "read", "edit"][Int(random.next() % 3)]
            try store.addPart(messageID: messageID, type: .toolResult, content: ["name": .string(tool), "result": "ok"],
                              toolName: tool, toolDurationMs: duration, id: id)
            log.parents[RowKey(table: "message_parts", id: id)] = messageKey
            log.increments[message.sessionID, default: [:]]["total_tool_time_ms", default: 0] += duration
            log.increments[message.sessionID, default: [:]]["tool_counts_json.\(tool)", default: 0] += 1
            try record(replica, [RowKey(table: "message_parts", id: id), sessionKey])
        } else if roll < 0.92 {
            let usage = Usage(promptTokens: Int64(random.next() % 1_000), completionTokens: Int64(random.next() % 500),
                              cachedInputTokens: Int64(random.next() % 100), reasoningTokens: Int64(random.next() % 50))
            try store.completeMessage(id: messageID, usage: usage, latencyMs: Int64(random.next() % 3_000))
            replica.streaming.remove(at: index)
            log.increments[message.sessionID, default: [:]]["total_input_tokens", default: 0] += usage.promptTokens
            log.increments[message.sessionID, default: [:]]["total_output_tokens", default: 0] += usage.completionTokens
            log.increments[message.sessionID, default: [:]]["total_cached_tokens", default: 0] += usage.cachedInputTokens
            log.increments[message.sessionID, default: [:]]["total_reasoning_tokens", default: 0] += usage.reasoningTokens
            try record(replica, [messageKey, sessionKey])
        } else {
            let part = newID("p")
            try store.failMessage(id: messageID, error: "boom", errorType: "provider", isAborted: chance(0.5), partID: part)
            log.parents[RowKey(table: "message_parts", id: part)] = messageKey
            replica.streaming.remove(at: index)
            try record(replica, [messageKey, RowKey(table: "message_parts", id: part), sessionKey])
        }
    }

    /// Logs every field the last write set on `keys` (those stamped with the replica's newest
    /// clock reading), with the row's vector at that moment.
    func record(_ replica: Replica, _ keys: [RowKey]) throws {
        let hlc = try replica.store.clockReading()
        let stamp = Stamp(hlc: hlc, replica: replica.id)
        for key in keys {
            guard let state = try replica.store.rowState(table: key.table, id: key.id) else { continue }
            if state.tombstone == stamp {
                log.add(.init(key: key, column: "", value: .null, stamp: stamp, vv: state.vv))
                continue
            }
            for (column, field) in state.fields where field.stamp == stamp {
                log.add(.init(key: key, column: column, value: field.value, stamp: stamp, vv: state.vv))
            }
        }
    }

    // MARK: Delivery

    /// Heals the network, stops faults, delivers held-back requests, and syncs every replica
    /// until a whole round changes nothing.
    func deliverEverything() async throws {
        if let pendingBug { throw SimulationBug(pendingBug) }
        network.healAll()
        network.setFaults(.none)
        while try await network.deliverLate() {}
        for round in 0..<20 {
            var quiet = true
            for replica in replicas {
                let report = try await synchronizer(replica).syncOnce(nowMillis: { [clock] in clock.now })
                if report.pushed > 0 || report.applied > 0 { quiet = false }
            }
            if quiet { return }
            if round == 19 { throw SimulationBug("replicas still exchanged changes after 20 full rounds") }
        }
    }
}
