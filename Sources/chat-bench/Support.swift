import Foundation
import GRDB
import SyncEngine

// MARK: Timing

/// Monotonic nanoseconds.
@inline(__always) func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Runs `body` and returns its result with the elapsed seconds.
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = nowNanos()
    let result = try body()
    return (result, Double(nowNanos() - start) / 1e9)
}

/// Latency samples in seconds.
struct Samples {
    private(set) var values: [Double] = []
    mutating func add(_ seconds: Double) { values.append(seconds) }
    var count: Int { values.count }
    var total: Double { values.reduce(0, +) }
    var mean: Double { values.isEmpty ? 0 : total / Double(values.count) }
    /// Nearest-rank percentile, `p` in 0...100.
    func percentile(_ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}

// MARK: Process memory (Linux)

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`), in bytes; `nil` off Linux.
func procStatusBytes(_ field: String) -> Int64? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        let digits = line.dropFirst(field.count + 1).filter(\.isNumber)
        return Int64(digits).map { $0 * 1024 }
    }
    return nil
}

/// Resets the peak resident set (`VmHWM`) to the current resident set; `false` if the kernel
/// refused (then only the before/after delta is meaningful).
func resetPeakRSS() -> Bool {
    guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
    defer { try? handle.close() }
    do {
        try handle.write(contentsOf: Data("5".utf8))
        return true
    } catch {
        return false
    }
}

// MARK: Data generation

/// A small deterministic generator (SplitMix64), so runs are comparable.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private let words = """
    the sync store keeps every message local first and pushes changes when the network returns while \
    replicas merge with version vectors so nothing written offline is ever lost and the server holds \
    the canonical copy for analysts who query postgres with plain sql about sessions tokens and tools
    """.split(separator: " ").map(String.init)

/// Prose of about `bytes` UTF-8 bytes.
func prose(bytes: Int, using rng: inout SeededRandom) -> String {
    var text = ""
    text.reserveCapacity(bytes + 16)
    while text.utf8.count < bytes {
        if !text.isEmpty { text += " " }
        text += words[Int(rng.next() % UInt64(words.count))]
    }
    return text
}

/// A stream of `count` token-sized deltas (3–8 bytes each).
func deltas(count: Int, using rng: inout SeededRandom) -> [String] {
    (0..<count).map { _ in " " + words[Int(rng.next() % UInt64(words.count))].prefix(Int(2 + rng.next() % 6)) }
}

// MARK: Temporary files

func makeTempDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("chat-bench-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

// MARK: The raw SQLite baseline

/// The replica's chat tables with the same columns, indexes and foreign keys, but no sync
/// metadata (`sync_meta`), no outbox, no clock: what an app without sync would store.
enum RawSchema {
    static let sql = """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY NOT NULL, title TEXT, agent TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
            project_path TEXT NOT NULL, created_at INTEGER NOT NULL, last_active_at INTEGER, total_input_tokens INTEGER,
            total_output_tokens INTEGER, total_cached_tokens INTEGER, total_reasoning_tokens INTEGER,
            total_tool_time_ms INTEGER, tool_counts_json TEXT, archived_at INTEGER
        );
        CREATE INDEX sessions_last_active ON sessions(last_active_at DESC, id DESC);
        CREATE TABLE messages (
            id TEXT PRIMARY KEY NOT NULL, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            role TEXT NOT NULL, status TEXT NOT NULL, agent TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
            created_at INTEGER NOT NULL, completed_at INTEGER, latency_ms INTEGER, prompt_tokens INTEGER,
            completion_tokens INTEGER, total_tokens INTEGER, cached_input_tokens INTEGER, reasoning_tokens INTEGER,
            error TEXT, error_type TEXT, error_details TEXT, is_aborted INTEGER
        );
        CREATE INDEX messages_session_created ON messages(session_id, created_at, id);
        CREATE TABLE message_parts (
            id TEXT PRIMARY KEY NOT NULL, message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            "index" INTEGER NOT NULL, step_index INTEGER, type TEXT NOT NULL, content TEXT NOT NULL, agent TEXT NOT NULL,
            provider TEXT NOT NULL, model TEXT NOT NULL, started_at INTEGER, completed_at INTEGER, tool_name TEXT,
            tool_call_id TEXT, tool_duration_ms INTEGER
        );
        CREATE INDEX message_parts_message_index ON message_parts(message_id, "index", id);
        CREATE TABLE artifacts (
            id TEXT PRIMARY KEY NOT NULL, message_part_id TEXT NOT NULL UNIQUE REFERENCES message_parts(id) ON DELETE CASCADE,
            kind TEXT NOT NULL, path TEXT, mime TEXT, size INTEGER, sha256 TEXT
        );
        """

    /// A file database configured like `ChatStore.open`: a `DatabasePool` (WAL,
    /// `synchronous = NORMAL`), foreign keys on, 10 s busy timeout.
    static func open(path: String) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in try db.execute(sql: sql) }
        return pool
    }

    /// The same conversion the replica applies to a column value before binding it.
    static func databaseValue(_ value: JSONValue, type: ColumnType) throws -> DatabaseValue {
        switch (value, type) {
        case (.null, _): return .null
        case (_, .json): return try WireJSON.encodeString(value).databaseValue
        case (.bool(let b), _): return (b ? 1 : 0).databaseValue
        case (.string(let s), _): return s.databaseValue
        case (.int(let i), _): return i.databaseValue
        case (.double(let d), _): return d.databaseValue
        default: return try WireJSON.encodeString(value).databaseValue
        }
    }

    static func insertSQL(_ schema: TableSchema) -> String {
        let columns = ["id"] + schema.columns.map(\.name)
        let names = columns.map(\.quotedDatabaseIdentifier).joined(separator: ", ")
        let marks = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        return "INSERT INTO \(schema.name.quotedDatabaseIdentifier) (\(names)) VALUES (\(marks))"
    }
}

// MARK: The machine

struct Machine: Codable {
    var cores: Int
    var cpuModel: String?
    var memoryTotalBytes: Int64?
    var sqliteVersion: String
    var postgresVersion: String?
    var swiftVersion: String
    var os: String

    static func current(sqliteVersion: String) -> Machine {
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let memTotal = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { Int64($0.filter(\.isNumber)) }.map { $0 * 1024 }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpuModel = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) }
        return Machine(
            cores: ProcessInfo.processInfo.activeProcessorCount, cpuModel: cpuModel, memoryTotalBytes: memTotal,
            sqliteVersion: sqliteVersion, postgresVersion: nil, swiftVersion: swiftVersion(), os: ProcessInfo.processInfo.operatingSystemVersionString)
    }

    /// `swift --version`'s first line if `swift` is on PATH, else the compiler this was built with.
    static func swiftVersion() -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = Pipe()
        if (try? process.run()) != nil {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            if process.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self)
                .split(separator: "\n").first(where: { $0.contains("Swift version") })
            {
                return String(line)
            }
        }
        #if compiler(>=6.3)
        return "Swift compiler >= 6.3"
        #elseif compiler(>=6.2)
        return "Swift compiler 6.2"
        #else
        return "Swift compiler < 6.2"
        #endif
    }
}
