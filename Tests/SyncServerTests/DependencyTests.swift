import Foundation
import SyncEngine
import Testing
import TestSupport

/// The server and the agent are storage-free on the client side: neither reaches the SQLite
/// replica (`LocalStore`) or GRDB, through any chain of targets, and the server binary does not
/// load SQLite at all.
@Suite("Module dependencies", .timeLimit(.minutes(2)))
struct DependencyTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every target and product `target` depends on, directly or through other targets of the package.
    static func closure(of target: String, in manifest: JSONValue) -> Set<String> {
        var direct: [String: [String]] = [:]
        for entry in manifest["targets"]?.arrayValue ?? [] {
            guard let name = entry["name"]?.stringValue else { continue }
            direct[name] = (entry["dependencies"]?.arrayValue ?? []).compactMap { dependency in
                // {"byName": [name, null]}, {"target": [name, null]} or {"product": [name, package, ...]}
                for kind in ["byName", "target", "product"] {
                    if let name = dependency[kind]?.arrayValue?.first?.stringValue { return name }
                }
                return nil
            }
        }
        var seen = Set<String>(), queue = [target]
        while let next = queue.popLast() {
            for dependency in direct[next] ?? [] where seen.insert(dependency).inserted { queue.append(dependency) }
        }
        return seen
    }

    @Test("SyncServer, ChatAgent and ChatModel depend on neither LocalStore nor GRDB; LocalStore does (so the check can fail)")
    func storageFree() async throws {
        let output = try await offPool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            // A scratch path of its own: the test run holds the package's .build lock.
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("dump-package-\(UUID().uuidString)")
            process.arguments = ["swift", "package", "--package-path", Self.packageRoot.path, "--scratch-path", scratch.path, "dump-package"]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: scratch)
            guard process.terminationStatus == 0 else { throw ProcessFailure("swift package dump-package failed") }
            return data
        }
        let manifest = try WireJSON.decode(JSONValue.self, from: output)
        for target in ["SyncServer", "ChatAgent", "ChatModel", "chat-server"] {
            let reached = Self.closure(of: target, in: manifest)
            #expect(reached.contains("SyncEngine"), "\(target) is in the manifest")
            #expect(!reached.contains("LocalStore") && !reached.contains("GRDB") && !reached.contains("GRDBSQLite"),
                    "\(target) reaches \(reached.sorted())")
        }
        #expect(Self.closure(of: "LocalStore", in: manifest).contains("GRDB"))
    }

    @Test("the chat-server binary does not load SQLite; chat-cli does")
    func serverBinaryHasNoSQLite() async throws {
        func libraries(_ name: String) async throws -> String {
            let path = try Binaries.path(name).path
            return try await offPool {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["ldd", path]
                let pipe = Pipe()
                process.standardOutput = pipe
                try process.run()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                return String(decoding: data, as: UTF8.self)
            }
        }
        #expect(try await libraries("chat-cli").contains("libsqlite3"))
        #expect(try await !libraries("chat-server").contains("libsqlite3"))
    }
}
