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

@Suite("Bad requests get a 4xx, a JSON message, and change nothing", .timeLimit(.minutes(2)))
struct BadRequestTests {
    static let replica = ReplicaID("bad-client")
    static let stamp = Stamp(hlc: HLC(millis: ChatStore.systemNow()), replica: replica)

    static func session(_ id: String, _ extra: [String: JSONValue] = [:]) -> RowChange {
        var fields: [String: JSONValue] = [
            "title": "t", "agent": "a", "provider": "p", "model": "m", "project_path": "/", "created_at": 1_800_000_000_000,
        ]
        fields.merge(extra) { _, new in new }
        return RowChange(table: "sessions", id: id, vv: VersionVector([replica: stamp.hlc]),
                         fields: fields.mapValues { FieldValue($0, stamp: stamp) })
    }

    static func message(_ id: String, session: String, role: JSONValue = "user") -> RowChange {
        let fields: [String: JSONValue] = [
            "session_id": .string(session), "role": role, "status": "complete", "agent": "a", "provider": "p", "model": "m",
            "created_at": 1_800_000_000_000,
        ]
        return RowChange(table: "messages", id: id, vv: VersionVector([replica: stamp.hlc]),
                         fields: fields.mapValues { FieldValue($0, stamp: stamp) })
    }

    static func body(_ changes: [RowChange], version: Int = 1) throws -> Data {
        try WireJSON.encode(PushRequest(protocolVersion: version, replicaID: replica, changes: changes))
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var method: HTTPRequest.Method
        var uri: String
        var body: Data?
        var status: HTTPResponse.Status
        var code: String
        var testDescription: String { name }
    }

    static var cases: [Case] {
        get throws {
            // Unique ids: every test shares the database, isolated only by tenancy.
            let unique = UUID().uuidString.lowercased()
            let good = session("s-good-\(unique)")
            var futureStamp = good
            let future = Stamp(hlc: HLC(millis: ChatStore.systemNow() + 3 * 86_400_000), replica: replica)
            futureStamp.vv = VersionVector([replica: future.hlc])
            futureStamp.fields["title"] = FieldValue("late", stamp: future)
            let oversized = session("s-big", ["title": .string(String(repeating: "x", count: 2_000))])
            return [
                Case(name: "not JSON", method: .post, uri: "/v1/sync/push", body: Data("{not json".utf8), status: .badRequest, code: "bad_request"),
                Case(name: "JSON of the wrong shape", method: .post, uri: "/v1/sync/push", body: Data(#"{"changes": 3}"#.utf8), status: .badRequest, code: "bad_request"),
                Case(name: "malformed stamp", method: .post, uri: "/v1/sync/push",
                     body: Data(#"{"protocolVersion":1,"replicaID":"x","changes":[{"table":"sessions","id":"s","vv":{},"fields":{"title":{"v":"t","t":"nope"}}}]}"#.utf8),
                     status: .badRequest, code: "bad_request"),
                Case(name: "unknown protocol version", method: .post, uri: "/v1/sync/push", body: try body([good], version: 99), status: .badRequest, code: "unsupported_protocol"),
                Case(name: "unknown table", method: .post, uri: "/v1/sync/push",
                     body: try body([RowChange(table: "users", id: "1", vv: VersionVector([replica: stamp.hlc]))]), status: .unprocessableContent, code: "invalid"),
                Case(name: "invalid enum value, batched with a good row", method: .post, uri: "/v1/sync/push",
                     body: try body([good, message("m-1-\(unique)", session: good.id, role: "wizard")]), status: .unprocessableContent, code: "invalid"),
                Case(name: "text longer than its column allows", method: .post, uri: "/v1/sync/push", body: try body([oversized]), status: .unprocessableContent, code: "invalid"),
                Case(name: "stamp far in the future", method: .post, uri: "/v1/sync/push", body: try body([futureStamp]), status: .unprocessableContent, code: "invalid"),
                Case(name: "new row without its required columns", method: .post, uri: "/v1/sync/push",
                     body: try body([RowChange(table: "sessions", id: "s-partial", vv: VersionVector([replica: stamp.hlc]), fields: ["title": FieldValue("t", stamp: stamp)])]),
                     status: .unprocessableContent, code: "invalid"),
                Case(name: "child whose parent does not exist, after a good row", method: .post, uri: "/v1/sync/push",
                     body: try body([good, message("m-2-\(unique)", session: "s-missing-\(unique)")]), status: .unprocessableContent, code: "invalid"),
                Case(name: "the same row twice in a batch", method: .post, uri: "/v1/sync/push", body: try body([good, good]), status: .unprocessableContent, code: "invalid"),
                Case(name: "too many changes", method: .post, uri: "/v1/sync/push",
                     body: try body((0...SyncProtocol.maxPushChanges).map { session("s-\($0)") }), status: .contentTooLarge, code: "too_large"),
                Case(name: "pull with an unknown protocol", method: .get, uri: "/v1/sync/pull?protocolVersion=2", body: nil, status: .badRequest, code: "unsupported_protocol"),
                Case(name: "pull with a non-numeric cursor", method: .get, uri: "/v1/sync/pull?cursor=abc", body: nil, status: .badRequest, code: "bad_request"),
                Case(name: "pull with a negative cursor", method: .get, uri: "/v1/sync/pull?cursor=-1", body: nil, status: .badRequest, code: "bad_request"),
                Case(name: "pull with a limit of zero", method: .get, uri: "/v1/sync/pull?limit=0", body: nil, status: .badRequest, code: "bad_request"),
                Case(name: "pull with a huge limit", method: .get, uri: "/v1/sync/pull?limit=1000000", body: nil, status: .badRequest, code: "bad_request"),
                Case(name: "the live endpoint without a WebSocket upgrade", method: .get, uri: "/v1/sync/live", body: nil,
                     status: .upgradeRequired, code: "upgrade_required"),
                Case(name: "unknown route", method: .get, uri: "/v1/nothing-here", body: nil, status: .notFound, code: "not_found"),
            ]
        }
    }

    @Test("each bad request is refused with its status and leaves the user's data as it was", arguments: try cases)
    func refused(_ testCase: Case) async throws {
        try await Harness.run(maxPushBytes: 256 << 10) { api, client in
            let (_, token) = try await TestDatabase.makeUser(client)
            let store = try ChatStore.inMemory()
            _ = try Replicas.chatHistory(store)
            let (request, _) = try await Replicas.pushRequest(store)
            #expect(try await api.push(request, token: token).status == .ok)
            let before = try await api.pullAll(token: token)

            let response = try await api.send(testCase.method, testCase.uri, token: token, body: testCase.body)
            #expect(response.status == testCase.status)
            let error = try #require(response.errorBody, "the error body is JSON")
            #expect(error.error.code == testCase.code)
            #expect(!error.error.message.isEmpty)

            let after = try await api.pullAll(token: token)
            #expect(after.changes == before.changes)
            #expect(after.cursor == before.cursor)
            #expect(try await api.send(.get, "/healthz", token: nil).status == .ok)
        }
    }

    @Test("the well-formed counterparts of those requests are accepted, so each case fails for its own reason")
    func controls() async throws {
        try await Harness.run { api, client in
            let (_, token) = try await TestDatabase.makeUser(client)
            let unique = UUID().uuidString.lowercased()
            let response = try await api.send(
                .post, "/v1/sync/push", token: token,
                body: try Self.body([Self.session("s-ok-\(unique)"), Self.message("m-ok-\(unique)", session: "s-ok-\(unique)")]))
            #expect(response.status == .ok)
            for query in ["protocolVersion=1", "cursor=0", "limit=1", "limit=\(SyncProtocol.maxPullLimit)"] {
                #expect(try await api.send(.get, "/v1/sync/pull?\(query)", token: token).status == .ok, "\(query)")
            }
        }
    }

    @Test("a malformed push is refused with where it is wrong, in Foundation's words", arguments: [
        (#"{"changes":[{"id":"m1","vv":{}}],"protocolVersion":1,"replicaID":"dev-a"}"#, #"missing key "table" at changes.0"#),
        (#"{"changes":[{"id":"m1","table":"messages","vv":5}],"protocolVersion":1,"replicaID":"dev-a"}"#, "wrong type at changes.0.vv"),
        (#"{"changes":[{"fields":{"title":{"t":"nope","v":"t"}},"id":"s","table":"sessions"}],"protocolVersion":1,"replicaID":"dev-a"}"#,
         #"a stamp is "<16 hex digits>@<replica id>" at changes.0.fields.title.t"#),
        (#"{"changes":[],"protocolVersion":1,"replicaID":"dev a"}"#, "a replica id is 1-64 characters of A-Z a-z 0-9 _ - at replicaID"),
        (#"{"changes":[],"protocolVersion":1,"replicaID":"dev-a"} x"#, "The given data was not valid JSON. at the top level"),
    ])
    func malformedPushMessages(body: String, message: String) async throws {
        try await Harness.run { api, client in
            let (_, token) = try await TestDatabase.makeUser(client)
            let response = try await api.send(.post, "/v1/sync/push", token: token, body: Data(body.utf8))
            #expect(response.status == .badRequest)
            #expect(response.errorBody?.error.message == "the body is not a valid push request: \(message)")
        }
    }

    @Test("a body over the size limit gets 413")
    func oversizedBody() async throws {
        try await Harness.run(maxPushBytes: 1_024) { api, client in
            let (_, token) = try await TestDatabase.makeUser(client)
            let big = try Self.body((0..<50).map { Self.session("s-\($0)") })
            #expect(big.count > 1_024)
            let response = try await api.send(.post, "/v1/sync/push", token: token, body: big)
            #expect(response.status == .contentTooLarge)
            #expect(response.errorBody?.error.code == "too_large")
            #expect(try await api.pullAll(token: token).changes.isEmpty)
        }
    }
}
