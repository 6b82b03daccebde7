import Foundation
import Logging
import NIOCore
import PostgresNIO
import SyncEngine
import SyncServer

/// A release `chat-server serve` process on 127.0.0.1 and a free port, migrated on start.
final class BenchServer: @unchecked Sendable {
    // @unchecked: `process` is set once in `start` and only stopped afterwards.
    let baseURL: String
    let logURL: URL
    private let process: Process

    private init(process: Process, port: Int, logURL: URL) {
        self.process = process
        self.baseURL = "http://127.0.0.1:\(port)"
        self.logURL = logURL
    }

    /// The `chat-server` next to this executable (both are built into the same directory).
    static func defaultBinary() -> URL {
        let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return own.deletingLastPathComponent().appendingPathComponent("chat-server")
    }

    static func start(binary: URL, databaseURL: String, directory: URL) async throws -> BenchServer {
        try await withCheckedThrowingContinuation { continuation in
            // Waiting for the address blocks a thread: not one of the cooperative pool's.
            DispatchQueue.global().async {
                continuation.resume(with: Result { try startBlocking(binary: binary, databaseURL: databaseURL, directory: directory) })
            }
        }
    }

    private static func startBlocking(binary: URL, databaseURL: String, directory: URL) throws -> BenchServer {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw BenchFailure("no chat-server at \(binary.path); build it with swift build -c release --product chat-server")
        }
        let logURL = directory.appendingPathComponent("chat-server.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--database-url", databaseURL, "--log-level", "warning"]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: logURL)
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        var buffer = Data()
        let reader = stdout.fileHandleForReading
        while Date() < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty {
                if !process.isRunning { break }
                continue
            }
            buffer.append(chunk)
            let text = String(decoding: buffer, as: UTF8.self)
            if let range = text.range(of: "listening on http://127.0.0.1:"), text[range.upperBound...].contains("\n"),
               let port = Int(text[range.upperBound...].prefix { $0.isNumber })
            {
                return BenchServer(process: process, port: port, logURL: logURL)
            }
        }
        process.terminate()
        throw BenchFailure("chat-server did not start: \(String(decoding: buffer, as: UTF8.self)) (log: \(logURL.path))")
    }

    /// The server's resident set (`VmRSS`) and its peak (`VmHWM`), in bytes.
    var memory: (rss: Int64?, peak: Int64?) {
        let text = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int64? {
            text.split(separator: "\n").first { $0.hasPrefix(name + ":") }.flatMap { Int64($0.filter(\.isNumber)) }.map { $0 * 1024 }
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    func stop() async {
        let process = process
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                if process.isRunning {
                    process.terminate()
                    process.waitUntilExit()
                }
                continuation.resume()
            }
        }
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Plain tables for the raw PostgreSQL baselines: the canonical columns, keys, foreign keys and
/// indexes, without `sync_seq`, `sync_meta` and the sync index on them.
enum RawPostgres {
    static let tables = ["sessions", "messages", "message_parts"]

    static func create(_ client: PostgresClient, logger: Logger) async throws {
        var statements: [String] = []
        statements.append("DROP TABLE IF EXISTS raw_live")
        for table in tables.reversed() { statements.append("DROP TABLE IF EXISTS raw_\(table)") }
        for table in tables {
            statements.append("CREATE TABLE raw_\(table) (LIKE \(table) INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)")
            // Dropping the columns drops the (owner_id, sync_seq) index with them.
            statements.append("ALTER TABLE raw_\(table) DROP COLUMN sync_seq, DROP COLUMN sync_meta")
        }
        statements += [
            "ALTER TABLE raw_sessions ADD FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE",
            "ALTER TABLE raw_messages ADD FOREIGN KEY (owner_id, session_id) REFERENCES raw_sessions (owner_id, id) ON DELETE CASCADE",
            "ALTER TABLE raw_message_parts ADD FOREIGN KEY (owner_id, message_id) REFERENCES raw_messages (owner_id, id) ON DELETE CASCADE",
            """
            CREATE TABLE raw_live (id text PRIMARY KEY, owner_id bigint NOT NULL, body text NOT NULL,
                                   created_at timestamptz NOT NULL DEFAULT now())
            """,
        ]
        for statement in statements {
            try await client.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
    }

    static func truncate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.query("TRUNCATE raw_message_parts, raw_messages, raw_sessions", logger: logger)
    }

    /// COPYs the buffers (parents first) on one connection; returns the seconds it took.
    static func copy(_ buffers: [(table: TableSchema, text: String, rows: Int)], client: PostgresClient, logger: Logger) async throws -> Double {
        let payloads = buffers.map { (table: $0.table, bytes: Array($0.text.utf8)) }
        return try await client.withConnection { connection in
            let start = nowNanos()
            for buffer in payloads {
                try await connection.copyFrom(table: "raw_\(buffer.table.name)", columns: CopyText.columns(buffer.table), logger: logger) { writer in
                    // Chunks of about 1 MB, as a COPY client streams them.
                    let utf8 = buffer.bytes
                    var offset = 0
                    while offset < utf8.count {
                        var end = min(offset + (1 << 20), utf8.count)
                        while end < utf8.count, utf8[end - 1] != 10 { end += 1 }
                        try await writer.write(ByteBuffer(bytes: utf8[offset..<end]))
                        offset = end
                    }
                }
            }
            return Double(nowNanos() - start) / 1e9
        }
    }
}

extension RawPostgres {
    /// Reads one owner's rows back out of the raw tables, one plain `SELECT` per table on one
    /// connection, every value decoded into a Swift value (timestamps as epoch milliseconds,
    /// JSON as text, as the server's own reads ask for them): the floor for any server that
    /// serves these rows out of PostgreSQL. Returns the rows read and the seconds it took.
    static func readAll(ownerID: Int64, client: PostgresClient, logger: Logger) async throws -> (rows: Int, seconds: Double) {
        try await client.withConnection { connection in
            var count = 0
            let start = nowNanos()
            for table in tables {
                guard let schema = ChatSchema.table(table) else { throw BenchFailure("unknown table \(table)") }
                let expressions = ["id"] + schema.columns.map { column -> String in
                    let name = "\"\(column.name)\""
                    return switch column.type {
                    case .text, .int64, .boolean: name
                    case .int32: "\(name)::int8"
                    case .timestamp: "(extract(epoch FROM \(name)) * 1000)::int8"
                    case .json: "\(name)::text"
                    }
                }
                let types = [ColumnType.text] + schema.columns.map(\.type)
                let rows = try await connection.query(PostgresQuery(unsafeSQL: """
                    SELECT \(expressions.joined(separator: ", ")) FROM raw_\(table) WHERE owner_id = \(ownerID)
                    """), logger: logger)
                for try await row in rows {
                    for (cell, type) in zip(row, types) {
                        switch type {
                        case .text, .json: _ = try cell.decode(String?.self)
                        case .int32, .int64, .timestamp: _ = try cell.decode(Int64?.self)
                        case .boolean: _ = try cell.decode(Bool?.self)
                        }
                    }
                    count += 1
                }
            }
            return (count, Double(nowNanos() - start) / 1e9)
        }
    }
}

/// A `Sendable` counter for callbacks that cannot await.
final class Tally: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var count = 0
    func add(_ amount: Int = 1) { lock.lock(); count += amount; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// Arrival times of awaited row ids, for the live-propagation figure.
actor Arrivals {
    private var arrived: [String: UInt64] = [:]
    private var waiters: [String: CheckedContinuation<UInt64, Never>] = [:]
    private(set) var expected: String?

    func expect(_ id: String) { expected = id }

    func mark(_ id: String, at time: UInt64) {
        guard arrived[id] == nil else { return }
        arrived[id] = time
        if expected == id { expected = nil }
        waiters.removeValue(forKey: id)?.resume(returning: time)
    }

    func wait(_ id: String) async -> UInt64 {
        if let time = arrived[id] { return time }
        return await withCheckedContinuation { waiters[id] = $0 }
    }

    /// Waits at most `timeout`; `nil` if the id did not arrive by then (it is then marked with
    /// time 0, so a late arrival is ignored).
    func wait(_ id: String, timeout: Duration) async -> UInt64? {
        let timer = Task {
            do { try await Task.sleep(for: timeout) } catch { return }
            self.mark(id, at: 0)
        }
        let time = await wait(id)
        timer.cancel()
        return time == 0 ? nil : time
    }
}
