import AsyncHTTPClient
import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import Logging
import PostgresNIO
import SyncEngine
import SyncServer

/// Sizes of the server figures.
struct ServerBenchOptions: Sendable {
    var pushMessages: Int
    var pushBatch: Int
    var pageSize: Int
    var historySmall: Int
    var historyLarge: Int
    var pulls: Int
    var liveWrites: Int
    var devices: Int
    var concurrentDevices: Int
    var concurrentMessages: Int
    var concurrentBatch: Int
    /// The server figures to run (2, 3, 4, 5, 7).
    var figures: Set<Int>
}

struct ServerBenchResult: Sendable {
    var figures: [Figure]
    var details: [String: Double]
    var postgresVersion: String
}

/// The server figures (2, 3 end to end, 4, 5, 7): a release `chat-server` process on
/// 127.0.0.1 against the PostgreSQL at `databaseURL`, and raw PostgreSQL / SQLite baselines
/// measured in the same run.
enum ServerBench {
    static func run(
        options: ServerBenchOptions, databaseURL: String, serverBinary: URL, directory: URL, log: @escaping @Sendable (String) -> Void
    ) async throws -> ServerBenchResult {
        guard let url = DatabaseURL(databaseURL) else { throw BenchFailure("not a PostgreSQL URL: \(databaseURL)") }
        var logger = Logger(label: "chat-bench")
        logger.logLevel = .warning
        let pgLogger = logger
        do {
            return try await measure(options: options, url: url, databaseURL: databaseURL, serverBinary: serverBinary,
                                     directory: directory, logger: pgLogger, log: log)
        } catch let error as PSQLError {
            // PostgresNIO keeps the server's message out of `description`; a benchmark run needs it.
            throw BenchFailure(String(reflecting: error))
        }
    }

    static func measure(
        options: ServerBenchOptions, url: DatabaseURL, databaseURL: String, serverBinary: URL, directory: URL, logger: Logger,
        log: @escaping @Sendable (String) -> Void
    ) async throws -> ServerBenchResult {
        let pgLogger = logger
        return try await ChatServer.withDatabase(url, logger: logger, maxConnections: options.concurrentDevices + 4) { client in
            try await PostgresMigrations.migrate(client, logger: pgLogger)
            var version = "?"
            for try await text in try await client.query("SHOW server_version", logger: pgLogger).decode(String.self) { version = text }
            try await RawPostgres.create(client, logger: pgLogger)
            log("  server: PostgreSQL \(version); starting \(serverBinary.path)")
            let server = try await BenchServer.start(binary: serverBinary, databaseURL: databaseURL, directory: directory)
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = .seconds(5)
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(16, options.concurrentDevices + 8)
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            do {
                let context = Context(client: client, logger: pgLogger, server: server, http: http, directory: directory, log: log)
                var figures: [Figure] = []
                var details: [String: Double] = [:]
                if !options.figures.isDisjoint(with: [2, 3]) { try await pushAndBootstrap(options, context, &figures, &details) }
                if options.figures.contains(4) { try await incrementalPull(options, context, &figures, &details) }
                if options.figures.contains(5) { try await liveFigure(options, context, &figures, &details) }
                if options.figures.contains(7) { try await concurrentPushes(options, context, &figures, &details) }
                let memory = server.memory
                details["server.peakRSSMB"] = memory.peak.map { Double($0) / 1_048_576 } ?? -1
                try await http.shutdown()
                await server.stop()
                return ServerBenchResult(figures: figures, details: details, postgresVersion: version)
            } catch {
                try? await http.shutdown()
                await server.stop()
                throw error
            }
        }
    }

    struct Context: Sendable {
        let client: PostgresClient
        let logger: Logger
        let server: BenchServer
        let http: HTTPClient
        let directory: URL
        let log: @Sendable (String) -> Void

        func user(_ name: String) async throws -> (User, String) {
            try await UserRepository(client: client, logger: logger).createUser(name: "\(name)-\(UUID().uuidString.prefix(8).lowercased())")
        }

        func transport(_ token: String) -> HTTPSyncTransport {
            HTTPSyncTransport(baseURL: server.baseURL, token: token, client: http, timeout: .seconds(120))
        }

        func count(_ sql: String) async throws -> Int64 {
            var result: Int64 = 0
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int64.self) { result = value }
            return result
        }
    }

    static func batches(_ rows: [RowChange], size: Int) -> [[RowChange]] {
        stride(from: 0, to: rows.count, by: size).map { Array(rows[$0..<min($0 + size, rows.count)]) }
    }

    // MARK: Figures 2 and 3

    /// Figure 2: one replica pushes the whole history through the server (batches as the
    /// `Synchronizer` sends them); the raw side COPYs the same rows into plain tables.
    /// Figure 3 (end to end): a fresh file replica pulls it all back through the server; the raw
    /// side bulk-inserts the same rows into plain SQLite.
    static func pushAndBootstrap(
        _ options: ServerBenchOptions, _ context: Context, _ figures: inout [Figure], _ details: inout [String: Double]
    ) async throws {
        let log = context.log
        let (user, token) = try await context.user("bench-push")
        var generator = SyntheticHistory(device: "push\(user.id)", seed: 2)
        let (rows, generateSeconds) = timed { generator.generate(messages: options.pushMessages) }
        let replicaID = generator.replica
        let requests = batches(rows, size: options.pushBatch).map { PushRequest(replicaID: replicaID, changes: $0) }
        log(String(format: "figure 2: push ingest, %d messages = %d rows in %d pushes (generated in %.1f s)",
                   options.pushMessages, rows.count, requests.count, generateSeconds))

        // Raw: COPY of the same rows, prepared before timing.
        let buffers = try CopyText.encode(rows, ownerID: user.id)
        try await RawPostgres.truncate(context.client, logger: context.logger)
        let copySeconds = try await RawPostgres.copy(buffers, client: context.client, logger: context.logger)
        let rawRate = Double(rows.count) / copySeconds
        log(String(format: "  raw COPY: %.2f s (%.0f rows/s)", copySeconds, rawRate))

        // Warm-up, not timed: another user's history (a quarter of the size) through the
        // server, then ANALYZE, as autovacuum does within the first minute of a new database.
        // A connection plans each foreign-key check once; planned while `sessions` held a few
        // pages, the check scans `sessions` sequentially until ANALYZE invalidates the plan, so
        // without the warm-up this figure measured that first minute (pushes up to 4× slower
        // by its end) rather than a server that has been running.
        let (warmUser, warmToken) = try await context.user("bench-push-warm-up")
        var warmGenerator = SyntheticHistory(device: "warm\(warmUser.id)", seed: 5)
        let warmTransport = context.transport(warmToken)
        for changes in batches(warmGenerator.generate(messages: max(1_000, options.pushMessages / 4)), size: options.pushBatch) {
            _ = try await warmTransport.push(PushRequest(replicaID: warmGenerator.replica, changes: changes))
        }
        for table in ["users", "sessions", "messages", "message_parts", "artifacts", "sync_tombstones"] {
            try await context.client.query(PostgresQuery(unsafeSQL: "ANALYZE \(table)"), logger: context.logger)
        }

        // Ours: push every batch through the server, one after the other, as a replica does.
        let transport = context.transport(token)
        var latencies = Samples()
        let start = nowNanos()
        for request in requests {
            let t0 = nowNanos()
            let response = try await transport.push(request)
            latencies.add(Double(nowNanos() - t0) / 1e9)
            guard response.results.count == request.changes.count else { throw BenchFailure("a push lost results") }
        }
        let pushSeconds = Double(nowNanos() - start) / 1e9
        let oursRate = Double(rows.count) / pushSeconds
        let stored = try await context.count("""
            SELECT (SELECT count(*) FROM sessions WHERE owner_id = \(user.id)) + (SELECT count(*) FROM messages WHERE owner_id = \(user.id))
                 + (SELECT count(*) FROM message_parts WHERE owner_id = \(user.id))
            """)
        log(String(format: "  ours: %.2f s (%.0f changes/s), %d rows stored", pushSeconds, oursRate, stored))
        guard stored == Int64(rows.count) else { throw BenchFailure("push ingest stored \(stored) of \(rows.count) rows") }
        figures.append(.rate(2, "Push ingest", "\(rows.count) changes, \(options.pushBatch)/push", unit: "changes/s",
                             ours: oursRate, raw: rawRate, target: "≥ 50 % of COPY (≤ 2×)", met: oursRate >= rawRate / 2,
                             note: "raw: COPY into plain tables; ours: HTTP + JSON + merge + Postgres, one replica"))
        figures.append(.cost(2, "Push ingest", "push latency p50 (\(options.pushBatch) changes)", unit: "ms",
                             ours: latencies.percentile(50) * 1e3, raw: nil))
        // Where the time goes: the same pushes straight into the repository the server uses
        // (merge + PostgreSQL, no HTTP, no JSON), for another user, and the JSON both ends
        // spend on them, each on its own.
        let (inProcessUser, _) = try await context.user("bench-push-direct")
        // The same shape of history under other ids (ids belong to one user).
        var directGenerator = SyntheticHistory(device: "direct\(inProcessUser.id)", seed: 2)
        let directRows = directGenerator.generate(messages: options.pushMessages)
        let directRequests = batches(directRows, size: options.pushBatch).map {
            PushRequest(replicaID: directGenerator.replica, changes: $0)
        }
        let repository = PostgresSyncRepository(client: context.client, logger: context.logger)
        let directStart = nowNanos()
        for request in directRequests {
            let response = try await repository.push(userID: inProcessUser.id, request: request)
            guard response.results.count == request.changes.count else { throw BenchFailure("a direct push lost results") }
        }
        let directSeconds = Double(nowNanos() - directStart) / 1e9
        var bodies: [Data] = []
        let (_, encodeSeconds) = try timed { bodies = try requests.map { try WireJSON.encode($0) } }
        let (_, decodeSeconds) = try timed { for body in bodies { _ = try WireJSON.decode(PushRequest.self, from: body) } }
        log(String(format: "  of which: merge + PostgreSQL in process %.2f s (%.0f changes/s), JSON encode %.2f s, decode %.2f s (%.1f MB)",
                   directSeconds, Double(rows.count) / directSeconds, encodeSeconds, decodeSeconds,
                   Double(bodies.reduce(0) { $0 + $1.count }) / 1_048_576))
        figures.append(.rate(2, "Push ingest", "merge + PostgreSQL alone, in process", unit: "changes/s",
                             ours: Double(rows.count) / directSeconds, raw: rawRate,
                             note: "the server's repository called directly: no HTTP, no JSON"))
        details["push.directSeconds"] = directSeconds
        details["push.encodeSeconds"] = encodeSeconds
        details["push.decodeSeconds"] = decodeSeconds
        details["push.rows"] = Double(rows.count)
        details["push.seconds"] = pushSeconds
        details["push.copySeconds"] = copySeconds
        details["push.p99Millis"] = latencies.percentile(99) * 1e3

        let rowCount = rows.count
        guard options.figures.contains(3) else { return }
        // Figure 3, raw: plain SQLite bulk insert of the same rows (prepared statements, one
        // transaction per page), the conversion done before timing.
        let rawPages = try RawSQLitePages(rows, pageSize: options.pageSize)
        let rawSeconds = try rawPages.insertAll(path: context.directory.appendingPathComponent("bootstrap-server-raw.sqlite").path)

        // Figure 3, ours: a fresh file replica pulls everything through the server.
        log("figure 3: bootstrap through the server, \(rowCount) rows")
        let replica = try ChatStore.open(path: context.directory.appendingPathComponent("bootstrap-server.sqlite").path)
        let synchronizer = Synchronizer(storage: replica, transport: transport, pullPageSize: options.pageSize)
        let wasReset = resetPeakRSS()
        let rssBefore = procStatusBytes("VmRSS")
        let bootStart = nowNanos()
        let report = try await synchronizer.pullAll()
        let bootSeconds = Double(nowNanos() - bootStart) / 1e9
        let peak = procStatusBytes("VmHWM")
        guard report.pulled == rowCount else { throw BenchFailure("bootstrap pulled \(report.pulled) of \(rowCount) rows") }
        let oursBoot = Double(rowCount) / bootSeconds, rawBoot = Double(rowCount) / rawSeconds
        log(String(format: "  ours %.2f s (%.0f rows/s), raw SQLite %.2f s (%.0f rows/s)", bootSeconds, oursBoot, rawSeconds, rawBoot))
        figures.append(.rate(3, "Bootstrap (server)", "pull + apply \(rowCount) rows over HTTP", unit: "rows/s", ours: oursBoot, raw: rawBoot,
                             target: "≥ 50 % of raw (≤ 2×)", met: oursBoot >= rawBoot / 2,
                             note: "raw: SQLite bulk insert of the same rows"))
        let growth: Double? = if let peak, let rssBefore { Double(peak - rssBefore) / 1_048_576 } else { nil }
        figures.append(.cost(3, "Bootstrap (server)", "peak RSS growth while pulling", unit: "MB", ours: growth, raw: nil,
                             target: "< 200 MB at 1M rows", met: growth.map { $0 < 200 },
                             note: "\(rowCount) rows; process peak \(peak.map { String(format: "%.0f MB", Double($0) / 1_048_576) } ?? "?")"
                                 + (wasReset ? "" : "; VmHWM not reset")))
        // Where the time goes: the server's page reads in process (no HTTP, no JSON), and the
        // JSON of those pages encoded (server) and decoded (client).
        var pages: [PullResponse] = []
        var pageCursor: Int64 = 0
        let readStart = nowNanos()
        while true {
            let page = try await repository.pull(userID: user.id, cursor: pageCursor, limit: options.pageSize)
            pages.append(page)
            pageCursor = page.cursor
            if !page.hasMore { break }
        }
        let readSeconds = Double(nowNanos() - readStart) / 1e9
        var pageBodies: [Data] = []
        let (_, pageEncodeSeconds) = try timed { pageBodies = try pages.map { try WireJSON.encode($0) } }
        let (_, pageDecodeSeconds) = try timed { for body in pageBodies { _ = try WireJSON.decode(PullResponse.self, from: body) } }
        log(String(format: "  of which: page reads in process %.2f s (%.0f rows/s), JSON encode %.2f s, decode %.2f s (%.1f MB)",
                   readSeconds, Double(rowCount) / readSeconds, pageEncodeSeconds, pageDecodeSeconds,
                   Double(pageBodies.reduce(0) { $0 + $1.count }) / 1_048_576))
        // The floor: the same rows read out of the raw tables with plain SELECTs.
        let (rawRead, rawReadSeconds) = try await RawPostgres.readAll(ownerID: user.id, client: context.client, logger: context.logger)
        guard rawRead == rowCount else { throw BenchFailure("the raw tables hold \(rawRead) of \(rowCount) rows") }
        log(String(format: "  floor: the same rows read from the raw tables with plain SELECTs %.2f s (%.0f rows/s)",
                   rawReadSeconds, Double(rowCount) / rawReadSeconds))
        figures.append(.rate(3, "Bootstrap (server)", "floor: plain SELECT of the same rows", unit: "rows/s",
                             ours: Double(rowCount) / rawReadSeconds, raw: rawBoot,
                             note: "raw PostgreSQL reading the raw tables (no sync metadata, no HTTP, no JSON, no apply) against raw SQLite inserting them"))
        details["bootstrap.server.rawReadSeconds"] = rawReadSeconds
        details["bootstrap.server.readSeconds"] = readSeconds
        details["bootstrap.server.encodeSeconds"] = pageEncodeSeconds
        details["bootstrap.server.decodeSeconds"] = pageDecodeSeconds
        details["bootstrap.server.seconds"] = bootSeconds
        details["bootstrap.server.rawSeconds"] = rawSeconds
        details["bootstrap.server.rows"] = Double(rowCount)
    }

    // MARK: Figure 4

    /// Figure 4: the cost of pulling one new change after 10k and after 1M rows of history.
    /// The history is generated inside PostgreSQL (`generate_series`) straight into the
    /// canonical tables with valid `sync_meta`, not pushed; then one real change is pushed and
    /// pulled again and again from the cursor just before it.
    static func incrementalPull(
        _ options: ServerBenchOptions, _ context: Context, _ figures: inout [Figure], _ details: inout [String: Double]
    ) async throws {
        var results: [(history: Int, ours: Double, raw: Double)] = []
        for history in [options.historySmall, options.historyLarge] {
            let (user, token) = try await context.user("bench-history")
            let (_, seconds) = try await timedAsync { try await generateHistory(rows: history, userID: user.id, context: context) }
            context.log(String(format: "figure 4: %d rows of history generated in %.1f s", history, seconds))
            // One new change, pushed for real.
            var generator = SyntheticHistory(device: "inc\(user.id)", seed: 4)
            let change = generator.generate(messages: 1).filter { $0.table == "sessions" }
            let transport = context.transport(token)
            _ = try await transport.push(PushRequest(replicaID: generator.replica, changes: change))
            let cursor = Int64(history)
            for _ in 0..<20 { _ = try await transport.pull(cursor: cursor, limit: options.pageSize) }
            var ours = Samples(), raw = Samples()
            for _ in 0..<options.pulls {
                let t0 = nowNanos()
                let page = try await transport.pull(cursor: cursor, limit: options.pageSize)
                ours.add(Double(nowNanos() - t0) / 1e9)
                guard page.changes.count == 1 else { throw BenchFailure("incremental pull returned \(page.changes.count) changes") }
                let t1 = nowNanos()
                var found = 0
                let rows = try await context.client.query("""
                    SELECT id, title, sync_seq FROM sessions WHERE owner_id = \(user.id) AND sync_seq > \(cursor) ORDER BY sync_seq LIMIT \(options.pageSize)
                    """, logger: context.logger)
                for try await _ in rows.decode((String, String?, Int64).self) { found += 1 }
                raw.add(Double(nowNanos() - t1) / 1e9)
                guard found == 1 else { throw BenchFailure("raw incremental select returned \(found) rows") }
            }
            results.append((history, ours.percentile(50) * 1e6, raw.percentile(50) * 1e6))
            details["incremental.\(history).oursP99Micros"] = ours.percentile(99) * 1e6
            context.log(String(format: "  ours p50 %.0f µs, raw p50 %.0f µs", ours.percentile(50) * 1e6, raw.percentile(50) * 1e6))
        }
        let flat = results[1].ours / results[0].ours
        for (offset, result) in results.enumerated() {
            figures.append(.cost(4, "Incremental pull", "1 new change, \(result.history) rows of history, p50", unit: "µs",
                                 ours: result.ours, raw: result.raw,
                                 target: offset == 1 ? "flat (large ÷ small ≤ 1.3)" : nil, met: offset == 1 ? flat <= 1.3 : nil,
                                 note: offset == 1 ? String(format: "large ÷ small = %.2f; raw: indexed SELECT … WHERE sync_seq > $1 LIMIT, no HTTP", flat) : nil))
        }
        details["incremental.flatRatio"] = flat
    }

    /// `rows` rows of history for one user: sessions of 40 messages (one session row, then
    /// its messages), sequence numbers 1…rows, every row with the same valid `sync_meta`.
    static func generateHistory(rows: Int, userID: Int64, context: Context) async throws {
        let replica = ReplicaID("bench-history")
        let stamp = Stamp(hlc: HLC(millis: Int64(Date().timeIntervalSince1970 * 1000) - 86_400_000), replica: replica)
        let vv = VersionVector([replica: stamp.hlc])
        func meta(_ schema: TableSchema, _ columns: [String]) throws -> String {
            try WireJSON.encodeString(RowMeta(vv: vv, stamps: Dictionary(uniqueKeysWithValues: columns.map { ($0, stamp) })))
        }
        let sessionMeta = try meta(ChatSchema.sessions, ["title", "agent", "provider", "model", "project_path", "created_at", "last_active_at"])
        let messageMeta = try meta(ChatSchema.messages, ["session_id", "role", "status", "agent", "provider", "model", "created_at"])
        let base = stamp.hlc.millis
        // Row n (1-based): a session when (n - 1) % 41 == 0, else a message of session (n - 1) / 41.
        // Only integers are spliced into the SQL; the metadata is bound.
        let time = "timestamptz 'epoch' + (\(base) + n) * interval '1 millisecond'"
        var sessionBinds = PostgresBindings()
        sessionBinds.append(sessionMeta)
        try await context.client.query(PostgresQuery(unsafeSQL: """
            INSERT INTO sessions (id, title, agent, provider, model, project_path, created_at, last_active_at, owner_id, sync_seq, sync_meta)
            SELECT 'h\(userID)-s' || ((n - 1) / 41), 'history ' || n, 'bench', 'openai', 'gpt-bench', '/home/dev/project',
                   \(time), \(time), \(userID), n, $1::json
            FROM generate_series(1, \(rows)) AS n WHERE (n - 1) % 41 = 0
            """, binds: sessionBinds), logger: context.logger)
        var messageBinds = PostgresBindings()
        messageBinds.append(messageMeta)
        try await context.client.query(PostgresQuery(unsafeSQL: """
            INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at, owner_id, sync_seq, sync_meta)
            SELECT 'h\(userID)-m' || n, 'h\(userID)-s' || ((n - 1) / 41), CASE WHEN n % 2 = 0 THEN 'user' ELSE 'assistant' END,
                   'complete', 'bench', 'openai', 'gpt-bench', \(time), \(userID), n, $1::json
            FROM generate_series(1, \(rows)) AS n WHERE (n - 1) % 41 <> 0
            """, binds: messageBinds), logger: context.logger)
        try await context.client.query("UPDATE users SET sync_seq = \(Int64(rows)) WHERE id = \(userID)", logger: context.logger)
        try await context.client.query("ANALYZE sessions", logger: context.logger)
        try await context.client.query("ANALYZE messages", logger: context.logger)
    }

    // MARK: Figure 7

    /// Figure 7: 50 devices (each its own user, so that no user lock serializes them) push
    /// their histories at once, in batches; then the rows in PostgreSQL are counted per user.
    /// The raw side: 50 concurrent COPYs of the same rows into the plain tables.
    static func concurrentPushes(
        _ options: ServerBenchOptions, _ context: Context, _ figures: inout [Figure], _ details: inout [String: Double]
    ) async throws {
        let devices = options.concurrentDevices
        var work: [(userID: Int64, token: String, requests: [PushRequest], rows: [RowChange])] = []
        for device in 0..<devices {
            let (user, token) = try await context.user("bench-device\(device)")
            var generator = SyntheticHistory(device: "d\(device)-\(user.id)", seed: UInt64(100 + device))
            let rows = generator.generate(messages: options.concurrentMessages)
            let replicaID = generator.replica
            work.append((user.id, token, batches(rows, size: options.concurrentBatch).map { PushRequest(replicaID: replicaID, changes: $0) }, rows))
        }
        let total = work.reduce(0) { $0 + $1.rows.count }
        context.log("figure 7: \(devices) devices push \(options.concurrentMessages) messages each (\(total) rows, batches of \(options.concurrentBatch))")

        // Raw: 50 concurrent COPYs.
        try await RawPostgres.truncate(context.client, logger: context.logger)
        let buffers = try work.map { try CopyText.encode($0.rows, ownerID: $0.userID) }
        let client = context.client, logger = context.logger
        let rawStart = nowNanos()
        try await withThrowingTaskGroup(of: Double.self) { group in
            for buffer in buffers { group.addTask { try await RawPostgres.copy(buffer, client: client, logger: logger) } }
            for try await _ in group {}
        }
        let rawSeconds = Double(nowNanos() - rawStart) / 1e9
        let rawRate = Double(total) / rawSeconds

        // Ours: every device pushes its batches one after the other, all devices at once.
        let transports = work.map { context.transport($0.token) }
        let start = nowNanos()
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for (index, device) in work.enumerated() {
                let transport = transports[index], requests = device.requests
                group.addTask {
                    var times: [Double] = []
                    for request in requests {
                        let t0 = nowNanos()
                        let response = try await transport.push(request)
                        times.append(Double(nowNanos() - t0) / 1e9)
                        guard response.results.count == request.changes.count else { throw BenchFailure("a push lost results") }
                    }
                    return times
                }
            }
            var all = Samples()
            for try await times in group { for time in times { all.add(time) } }
            return all
        }
        let seconds = Double(nowNanos() - start) / 1e9
        let rate = Double(total) / seconds

        // Nothing lost: every device's rows are in PostgreSQL.
        var missing = 0
        for device in work {
            let stored = try await context.count("""
                SELECT (SELECT count(*) FROM sessions WHERE owner_id = \(device.userID)) + (SELECT count(*) FROM messages WHERE owner_id = \(device.userID))
                     + (SELECT count(*) FROM message_parts WHERE owner_id = \(device.userID))
                """)
            let seq = try await context.count("SELECT sync_seq FROM users WHERE id = \(device.userID)")
            missing += device.rows.count - Int(stored)
            if seq != Int64(device.rows.count) { missing += 1 }
        }
        context.log(String(format: "  ours %.2f s (%.0f changes/s, p99 push %.0f ms), raw COPY %.2f s (%.0f rows/s); %d rows missing",
                           seconds, rate, latencies.percentile(99) * 1e3, rawSeconds, rawRate, missing))
        figures.append(.rate(7, "Concurrent pushes", "\(devices) devices, \(total) changes", unit: "changes/s", ours: rate, raw: rawRate,
                             note: "raw: \(devices) concurrent COPYs into plain tables"))
        figures.append(.cost(7, "Concurrent pushes", "push latency p99 (\(options.concurrentBatch) changes)", unit: "ms",
                             ours: latencies.percentile(99) * 1e3, raw: nil,
                             note: String(format: "p50 %.0f ms over %d pushes", latencies.percentile(50) * 1e3, latencies.count)))
        figures.append(.cost(7, "Concurrent pushes", "rows lost (counted in PostgreSQL)", unit: "changes", ours: Double(missing), raw: nil,
                             target: "0", met: missing == 0))
        details["concurrent.seconds"] = seconds
        details["concurrent.rawSeconds"] = rawSeconds
        details["concurrent.rows"] = Double(total)
    }
}

func timedAsync<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let start = nowNanos()
    let result = try await body()
    return (result, Double(nowNanos() - start) / 1e9)
}

/// Samples shared between tasks.
actor SampleBox {
    private var samples = Samples()
    func add(_ seconds: Double) { samples.add(seconds) }
    var p50: Double { samples.percentile(50) }
}
