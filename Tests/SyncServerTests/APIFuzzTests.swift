import ChatModel
import Foundation
import HTTPTypes
import HummingbirdTesting
import LocalStore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// Random and malformed requests to every documented route: the server answers each with a
/// status below 500 and a JSON error body for every 4xx, and keeps answering. Seeded:
/// `TEST_SEED=<seed>` replays a failure.
@Suite("HTTP API fuzzing", .timeLimit(.minutes(3)))
struct APIFuzzTests {
    @Test("no input makes any endpoint answer 5xx (except 502 when a valid message meets an absent provider)")
    func noServerErrors() async throws {
        let seed = SeededRandom.runSeed()
        var rng = SeededRandom(seed: seed)
        let document = try OpenAPITests.document()
        var operations: [(method: HTTPRequest.Method, path: String)] = []
        for (path, item) in (document["paths"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) where path != "/v1/sync/live" {
            for method in OpenAPITests.methods where item[method] != nil {
                operations.append((HTTPRequest.Method(rawValue: method.uppercased())!, path))
            }
        }
        let requests = (0..<400).map { _ in
            let operation = operations.randomElement(using: &rng)!
            return Self.randomRequest(method: operation.method, template: operation.path, using: &rng)
        }
        try await Harness.run { client, database in
            let (_, token) = try await TestDatabase.makeUser(database, prefix: "fuzz")
            // Session ids are global: each run names its own.
            let session = "fuzz-\(UUID().uuidString)"
            let created = try await client.send(.post, "/v1/sessions", token: token, body: Data(#"{"id":"\#(session)"}"#.utf8))
            #expect(created.status == .created)
            for (index, request) in requests.enumerated() {
                let uri = request.uri.replacingOccurrences(of: "fuzz-session", with: session)
                let body = request.body.map { Data(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "fuzz-session", with: session).utf8) }
                let response = try await client.send(request.method, uri, token: token, body: body)
                let context = "seed \(seed) request \(index): \(request.method) \(uri) (replay with TEST_SEED=\(seed))"
                let allowed502 = request.method == .post && uri.hasSuffix("/messages") && response.status == .badGateway
                #expect(response.status.code < 500 || allowed502, "\(response.status) for \(context)")
                if (400..<500).contains(response.status.code) {
                    #expect(response.errorBody != nil || response.status.code == 402, "no JSON error body for \(context)")
                }
            }
            // Still serving.
            #expect(try await client.send(.get, "/v1/sessions", token: token).status == .ok)
        }
    }

    struct FuzzRequest {
        var method: HTTPRequest.Method
        var uri: String
        var body: Data?
    }

    static let ids = ["fuzz-session", "nope", "a%20b", "%00", "x" + String(repeating: "y", count: 200), "..", "%2F", "😀", "-1", ""]
    static let queryNames = ["limit", "cursor", "archived", "role", "status", "protocolVersion", "junk"]
    static let queryValues = ["0", "-1", "1", "50", "99999999999999999999", "abc", "true", "all", "user", "pending", "", "%FF", "MTIzOmFiYw"]
    static let fieldNames = ["id", "title", "agent", "provider", "model", "projectPath", "archived", "content", "stream", "changes",
                             "replicaID", "protocolVersion", "extra"]

    static func randomRequest(method: HTTPRequest.Method, template: String, using rng: inout SeededRandom) -> FuzzRequest {
        var path = template.replacingOccurrences(of: "{id}", with: ids.randomElement(using: &rng)!)
        if path.hasSuffix("/") { path.removeLast() }
        let queries = (0..<Int.random(in: 0...3, using: &rng)).map { _ in
            "\(queryNames.randomElement(using: &rng)!)=\(queryValues.randomElement(using: &rng)!)"
        }
        let uri = path + (queries.isEmpty ? "" : "?" + queries.joined(separator: "&"))
        let body: Data? = switch Int.random(in: 0..<6, using: &rng) {
        case 0: nil
        case 1: Data((0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        case 2: Data(String((try? WireJSON.encodeString(randomJSON(depth: 2, using: &rng))) ?? "{}").dropLast(Int.random(in: 0...3, using: &rng)).utf8)
        default:
            Data(((try? WireJSON.encodeString(JSONValue.object(Dictionary(uniqueKeysWithValues: fieldNames.shuffled(using: &rng)
                .prefix(Int.random(in: 0...4, using: &rng)).map { ($0, randomJSON(depth: 1, using: &rng)) })))) ?? "{}").utf8)
        }
        return FuzzRequest(method: method, uri: uri, body: body)
    }

    static func randomJSON(depth: Int, using rng: inout SeededRandom) -> JSONValue {
        switch Int.random(in: 0..<(depth > 0 ? 8 : 6), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int([Int64.min, -1, 0, 1, 200, Int64.max].randomElement(using: &rng)!)
        case 3: return .double(Double.random(in: -1e6...1e6, using: &rng))
        case 4: return .string(["", "hi", " ", String(repeating: "z", count: 600), "a b", "\u{0}", "😀", "fuzz-session"].randomElement(using: &rng)!)
        case 5: return .string(String(Int.random(in: 0...1_000_000, using: &rng)))
        case 6: return .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in randomJSON(depth: depth - 1, using: &rng) })
        default:
            return .object(Dictionary(uniqueKeysWithValues: fieldNames.shuffled(using: &rng).prefix(3).map { ($0, randomJSON(depth: depth - 1, using: &rng)) }))
        }
    }
}
