import ChatModel
import ChatProvider
import Foundation
import Hummingbird
import HummingbirdTesting
import LocalStore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// `docs/openapi.json` stays true: every route the server has is documented, every documented
/// operation exists, and what the REST API returns has exactly the documented fields.
@Suite("OpenAPI document", .timeLimit(.minutes(2)))
struct OpenAPITests {
    static let documentURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.json")

    static func document() throws -> JSONValue {
        try WireJSON.decode(JSONValue.self, from: try Data(contentsOf: documentURL))
    }

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options"]

    @Test("the document lists exactly the server's routes, method by method")
    func routesMatch() async throws {
        let document = try Self.document()
        let documented = Set((document["paths"]?.objectValue ?? [:]).flatMap { path, item in
            Self.methods.filter { item[$0] != nil }.map { "\($0.uppercased()) \(path)" }
        })
        try await TestDatabase.withClient { client in
            let logger = TestDatabase.logger
            let router = ChatServer.buildRouter(
                configuration: ServerConfiguration(database: try TestDatabase.url()),
                repository: PostgresSyncRepository(client: client, logger: logger), users: UserRepository(client: client, logger: logger),
                chat: ChatAPI(client: client, logger: logger), health: { true })
            let served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
            #expect(served.contains("POST /v1/sync/push") && served.contains("POST /v1/sessions/{id}/messages"), "the router lists its routes")
            #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
            #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        }
    }

    @Test("every operation documents its success response and its 401 when it needs a token")
    func operationsAreComplete() throws {
        let document = try Self.document()
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for method in Self.methods {
                guard let operation = item[method] else { continue }
                let responses = operation["responses"]?.objectValue ?? [:]
                #expect(responses.keys.contains { $0.hasPrefix("2") || $0 == "101" }, "\(method) \(path) has no success response")
                if path.hasPrefix("/v1/") {
                    #expect(responses["401"] != nil, "\(method) \(path) does not document 401")
                }
                #expect(operation["operationId"]?.stringValue != nil, "\(method) \(path) has no operationId")
            }
        }
    }

    @Test("sessions, messages, parts and artifacts come back with exactly the documented fields")
    func shapesMatch() async throws {
        let schemas = try #require(try Self.document()["components"]?["schemas"]?.objectValue)
        try await Harness.run { client, database in
            let (_, token) = try await TestDatabase.makeUser(database, prefix: "openapi")
            let store = try ChatStore.inMemory()
            let sessionID = try Replicas.chatHistory(store)
            let (push, _) = try await Replicas.pushRequest(store)
            #expect(try await client.push(push, token: token).status == .ok)

            let list = try await client.send(.get, "/v1/sessions", token: token).object()
            try Self.check(list, against: "SessionPage", schemas)
            let detail = try await client.send(.get, "/v1/sessions/\(sessionID)", token: token).object()
            let messages = try #require(detail["messages"])
            try Self.check(messages, against: "MessagePage", schemas)
            var session = try #require(detail.objectValue)
            session["messages"] = nil
            try Self.check(.object(session), against: "Session", schemas)
            var sawArtifact = false
            for message in messages["items"]?.arrayValue ?? [] {
                try Self.check(message, against: "Message", schemas)
                for part in message["parts"]?.arrayValue ?? [] {
                    try Self.check(part, against: "Part", schemas)
                    if let artifact = part["artifact"], artifact != .null {
                        try Self.check(artifact, against: "Artifact", schemas)
                        sawArtifact = true
                    }
                }
            }
            #expect(sawArtifact, "the history has an artifact to check")
        }
    }

    /// The object's keys are the schema's properties, and every required one is there.
    static func check(_ value: JSONValue, against name: String, _ schemas: [String: JSONValue]) throws {
        let schema = try #require(schemas[name], "schema \(name)")
        let properties = Set(schema["properties"]?.objectValue?.keys.map { $0 } ?? [])
        let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
        let keys = Set(try #require(value.objectValue, "\(name) is an object").keys)
        #expect(keys.subtracting(properties).isEmpty, "\(name) returns undocumented fields \(keys.subtracting(properties).sorted())")
        #expect(properties.subtracting(keys).isEmpty, "\(name) documents fields it does not return \(properties.subtracting(keys).sorted())")
        #expect(required.isSubset(of: keys), "\(name) misses required fields \(required.subtracting(keys).sorted())")
    }
}
