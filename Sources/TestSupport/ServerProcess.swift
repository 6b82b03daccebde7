import Foundation
import SyncServer

/// A real `chat-server` process on 127.0.0.1 and a free port, for end-to-end tests.
public final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched in `start` (before the value is shared) and `stop`,
    // which `Process` itself makes safe to call from any thread.
    public let baseURL: String
    public let port: Int
    private let process: Process
    public let logURL: URL

    /// Starts `chat-server serve --port 0` and waits until it prints its address. The waiting
    /// blocks a thread, so it runs on a dispatch queue, never on the cooperative pool (two
    /// threads on a two-core machine: blocking them stalls every other test).
    /// `arguments` are added to `chat-server serve`'s (for example `--provider-url`), and
    /// `environment` to the test's own.
    public static func start(
        database: DatabaseURL, arguments: [String] = [], timeout: TimeInterval = 30, environment: [String: String] = [:]
    ) async throws -> ServerProcess {
        try await offPool { try startBlocking(database: database, arguments: arguments, timeout: timeout, environment: environment) }
    }

    static func startBlocking(
        database: DatabaseURL, arguments: [String], timeout: TimeInterval, environment: [String: String]
    ) throws -> ServerProcess {
        let binary = try Binaries.path("chat-server")
        let logURL = FileManager.default.temporaryDirectory.appendingPathComponent("chat-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        // Scheduled pruning is off unless a test asks for it: the test database is shared, and a
        // server pruning in the background would race the retention tests' own pruning.
        let pruning = arguments.contains("--prune-interval") ? [] : ["--prune-interval", "off"]
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--database-url", databaseURLText(database),
                             "--log-level", "warning"] + pruning + arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: logURL)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
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
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), text[range.upperBound...].contains("\n") {
                    return ServerProcess(process: process, port: port, logURL: logURL)
                }
            }
        }
        process.terminate()
        let log = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        throw ProcessFailure("chat-server did not start: \(String(decoding: buffer, as: UTF8.self)) \(log.suffix(2_000))")
    }

    private init(process: Process, port: Int, logURL: URL) {
        self.process = process
        self.port = port
        self.baseURL = "http://127.0.0.1:\(port)"
        self.logURL = logURL
    }

    public var isRunning: Bool { process.isRunning }

    /// SIGTERM and wait: the server shuts down gracefully.
    public func stop() async {
        let process = process
        await offPool {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// SIGKILL: the server dies at once, mid-request if need be.
    public func kill() async {
        let process = process
        await offPool {
            guard process.isRunning else { return }
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { if process.isRunning { process.terminate() } }

    static func databaseURLText(_ url: DatabaseURL) -> String {
        let password = url.password.map { ":\($0)" } ?? ""
        return "postgres://\(url.username)\(password)@\(url.host):\(url.port)/\(url.database)"
    }
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The project's built executables, found next to the test bundle (`swift build` puts them there).
public enum Binaries {
    public static func path(_ name: String) throws -> URL {
        var candidates: [URL] = []
        let argument0 = URL(fileURLWithPath: CommandLine.arguments[0])
        candidates.append(argument0.deletingLastPathComponent().appendingPathComponent(name))
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(name))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
        throw ProcessFailure("cannot find the \(name) executable; build it first with `swift build`")
    }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs a built executable to completion with extra environment variables (off the
    /// cooperative pool, since it blocks).
    /// `input`, when given, is written to the child's standard input (a pipe, not a terminal).
    public static func run(_ name: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil) async throws -> Output {
        try await offPool { try runBlocking(name, arguments, environment: environment, input: input) }
    }

    static func runBlocking(_ name: String, _ arguments: [String], environment: [String: String], input: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = try path(name)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Runs blocking work on a dispatch queue and awaits it, keeping the cooperative pool free.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

func offPool(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            work()
            continuation.resume()
        }
    }
}
