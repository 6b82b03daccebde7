import ChatModel
import ChatProvider
import Foundation
import HTTPTypes
import HummingbirdTesting
import LocalStore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// The REST chat API against the real router and PostgreSQL: sessions, messages, pagination,
/// and that every REST write is an ordinary change devices pull.
@Suite("REST chat API", .timeLimit(.minutes(2)))
struct ChatAPITests {
    @Test("create, read, rename, archive and delete a session; each write syncs to devices as the server's replica")
    func sessionLifecycle() async throws {
        try await Harness.run { client, database in
            let (_, token) = try await TestDatabase.makeUser(database, prefix: "rest")
            let created = try await client.send(.post, "/v1/sessions", token: token, body: Data(#"{"title":"Plans","model":"llama3.2","projectPath":"/home/me"}"#.utf8))
            #expect(created.status == .created)
            let session = try created.object()
            let id = try #require(session["id"]?.stringValue)
            #expect(session["title"] == "Plans")
            #expect(session["model"] == "llama3.2")
            #expect(session["archived"] == .bool(false))

            // A device sees the session, stamped by the server's replica.
            var pulled = try await client.pullAll(token: token)
            let row = try #require(pulled.changes.first { $0.id == id })
            #expect(row.fields["title"]?.stamp.replica == ServerReplica.replicaID)

            let renamed = try await client.send(.patch, "/v1/sessions/\(id)", token: token, body: Data(#"{"title":"Trip to Oslo"}"#.utf8))
            #expect(renamed.status == .ok)
            #expect(try renamed.object()["title"] == "Trip to Oslo")

            let archived = try await client.send(.patch, "/v1/sessions/\(id)", token: token, body: Data(#"{"archived":true}"#.utf8))
            #expect(try archived.object()["archived"] == .bool(true))
            #expect(try await client.list(token: token).total == 0)
            #expect(try await client.list(token: token, query: "archived=true").ids == [id])
            #expect(try await client.list(token: token, query: "archived=all").ids == [id])

            let detail = try await client.send(.get, "/v1/sessions/\(id)", token: token)
            #expect(detail.status == .ok)
            #expect(try detail.object()["title"] == "Trip to Oslo")

            let deleted = try await client.send(.delete, "/v1/sessions/\(id)", token: token)
            #expect(deleted.status == .noContent)
            #expect(try await client.send(.get, "/v1/sessions/\(id)", token: token).status == .notFound)
            #expect(try await client.list(token: token, query: "archived=all").total == 0)
            pulled = try await client.pullAll(token: token, from: pulled.cursor)
            #expect(pulled.changes.contains { $0.id == id && $0.isDeleted })
        }
    }

    @Test("session lists page by last activity with a correct total; message pages keep order and lose nothing")
    func pagination() async throws {
        try await Harness.run { client, database in
            let (_, token) = try await TestDatabase.makeUser(database, prefix: "rest-page")
            var ids: [String] = []
            for index in 0..<7 {
                let response = try await client.send(.post, "/v1/sessions", token: token, body: Data(#"{"title":"s\#(index)"}"#.utf8))
                ids.append(try #require(try response.object()["id"]?.stringValue))
                try await Task.sleep(for: .milliseconds(3))
            }
            var seen: [String] = []
            var query = "limit=3"
            var pages = 0
            while true {
                let page = try await client.list(token: token, query: query)
                #expect(page.total == 7)
                seen += page.ids
                pages += 1
                guard let next = page.next else { break }
                query = "limit=3&cursor=\(next)"
            }
            #expect(pages == 3)
            #expect(seen == ids.reversed(), "most recently active first, each once")

            // Messages written by a device, read back through the API a page at a time.
            let store = try ChatStore.inMemory()
            let session = try store.createSession(title: "device", agent: "a", provider: "p", model: "m", projectPath: "/")
            for index in 0..<5 {
                // Messages order by (created_at, id): a new millisecond for each, or ids decide.
                try await Task.sleep(for: .milliseconds(2))
                try store.appendUserMessage(sessionID: session.id, text: "message \(index)")
            }
            let (push, _) = try await Replicas.pushRequest(store)
            #expect(try await client.push(push, token: token).status == .ok)
            var texts: [String] = []
            var cursor: String?
            repeat {
                let suffix = cursor.map { "&cursor=\($0)" } ?? ""
                let response = try await client.send(.get, "/v1/sessions/\(session.id)/messages?limit=2\(suffix)", token: token)
                #expect(response.status == .ok)
                let page = try response.object()
                for message in page["items"]?.arrayValue ?? [] {
                    texts.append(message["parts"]?.arrayValue?.first?["content"]?["text"]?.stringValue ?? "?")
                }
                cursor = page["nextCursor"]?.stringValue
            } while cursor != nil
            #expect(texts == (0..<5).map { "message \($0)" })

            // The detail view carries the first page; filters narrow it.
            let detail = try await client.send(.get, "/v1/sessions/\(session.id)?limit=1&role=user&status=complete", token: token)
            let messages = try #require(try detail.object()["messages"])
            #expect(messages["items"]?.arrayValue?.count == 1)
            #expect(messages["nextCursor"]?.stringValue != nil)
            let none = try await client.send(.get, "/v1/sessions/\(session.id)/messages?role=assistant", token: token)
            #expect(try none.object()["items"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test("another user's token sees nothing and changes nothing; no token or a wrong one is 401")
    func tenancy() async throws {
        try await Harness.run { client, database in
            let (_, owner) = try await TestDatabase.makeUser(database, prefix: "rest-owner")
            let (_, other) = try await TestDatabase.makeUser(database, prefix: "rest-other")
            let created = try await client.send(.post, "/v1/sessions", token: owner, body: Data(#"{"title":"mine"}"#.utf8))
            let id = try #require(try created.object()["id"]?.stringValue)

            #expect(try await client.send(.get, "/v1/sessions", token: nil).status == .unauthorized)
            #expect(try await client.send(.get, "/v1/sessions", token: "cst_wrong").status == .unauthorized)
            #expect(try await client.send(.get, "/v1/sessions/\(id)", token: other).status == .notFound)
            #expect(try await client.send(.get, "/v1/sessions/\(id)/messages", token: other).status == .notFound)
            #expect(try await client.send(.patch, "/v1/sessions/\(id)", token: other, body: Data(#"{"title":"theirs"}"#.utf8)).status == .notFound)
            #expect(try await client.send(.delete, "/v1/sessions/\(id)", token: other).status == .notFound)
            #expect(try await client.send(.post, "/v1/sessions/\(id)/messages", token: other, body: Data(#"{"content":"hi"}"#.utf8)).status == .notFound)
            // Taking the id for a session of one's own is refused without saying whose it is.
            let clash = try await client.send(.post, "/v1/sessions", token: other, body: Data(#"{"id":"\#(id)"}"#.utf8))
            #expect(clash.status == .conflict)
            #expect(try await client.list(token: other).total == 0)

            let mine = try await client.send(.get, "/v1/sessions/\(id)", token: owner)
            #expect(try mine.object()["title"] == "mine")
        }
    }

    /// One bad request: what is sent and what must come back.
    struct BadRequest: Sendable, CustomTestStringConvertible {
        var name: String
        var method: HTTPRequest.Method
        /// `{session}` is replaced by an existing session's id.
        var path: String
        var body: String?
        var status: HTTPResponse.Status
        var testDescription: String { name }
    }

    static let badRequests: [BadRequest] = [
        BadRequest(name: "body is not JSON", method: .post, path: "/v1/sessions", body: "{title", status: .badRequest),
        BadRequest(name: "body is not an object", method: .post, path: "/v1/sessions", body: "[1]", status: .badRequest),
        BadRequest(name: "unknown field", method: .post, path: "/v1/sessions", body: #"{"titel":"x"}"#, status: .badRequest),
        BadRequest(name: "title of the wrong type", method: .post, path: "/v1/sessions", body: #"{"title":5}"#, status: .badRequest),
        BadRequest(name: "title too long", method: .post, path: "/v1/sessions", body: #"{"title":"\#(String(repeating: "x", count: 501))"}"#,
                   status: .unprocessableContent),
        BadRequest(name: "id with forbidden characters", method: .post, path: "/v1/sessions", body: #"{"id":"a b"}"#, status: .unprocessableContent),
        BadRequest(name: "id already taken", method: .post, path: "/v1/sessions", body: #"{"id":"{session}"}"#, status: .conflict),
        BadRequest(name: "limit zero", method: .get, path: "/v1/sessions?limit=0", status: .badRequest),
        BadRequest(name: "limit not a number", method: .get, path: "/v1/sessions?limit=ten", status: .badRequest),
        BadRequest(name: "limit above the maximum", method: .get, path: "/v1/sessions?limit=201", status: .badRequest),
        BadRequest(name: "cursor not given out by the server", method: .get, path: "/v1/sessions?cursor=garbage", status: .badRequest),
        BadRequest(name: "archived filter not an option", method: .get, path: "/v1/sessions?archived=maybe", status: .badRequest),
        BadRequest(name: "unknown query parameter", method: .get, path: "/v1/sessions?sort=title", status: .badRequest),
        BadRequest(name: "role filter not a role", method: .get, path: "/v1/sessions/{session}/messages?role=robot", status: .badRequest),
        BadRequest(name: "status filter not a status", method: .get, path: "/v1/sessions/{session}/messages?status=done", status: .badRequest),
        BadRequest(name: "session id with forbidden characters", method: .get, path: "/v1/sessions/a%20b", status: .badRequest),
        BadRequest(name: "session that does not exist", method: .get, path: "/v1/sessions/nope", status: .notFound),
        BadRequest(name: "message that does not exist", method: .get, path: "/v1/messages/nope", status: .notFound),
        BadRequest(name: "rename with nothing to change", method: .patch, path: "/v1/sessions/{session}", body: "{}", status: .unprocessableContent),
        BadRequest(name: "archived not a boolean", method: .patch, path: "/v1/sessions/{session}", body: #"{"archived":"yes"}"#, status: .badRequest),
        BadRequest(name: "rename a missing session", method: .patch, path: "/v1/sessions/nope", body: #"{"title":"x"}"#, status: .notFound),
        BadRequest(name: "delete a missing session", method: .delete, path: "/v1/sessions/nope", status: .notFound),
        BadRequest(name: "message without content", method: .post, path: "/v1/sessions/{session}/messages", body: "{}", status: .unprocessableContent),
        BadRequest(name: "blank message", method: .post, path: "/v1/sessions/{session}/messages", body: #"{"content":"  \n"}"#,
                   status: .unprocessableContent),
        BadRequest(name: "content of the wrong type", method: .post, path: "/v1/sessions/{session}/messages", body: #"{"content":["hi"]}"#,
                   status: .badRequest),
        BadRequest(name: "stream flag not a boolean", method: .post, path: "/v1/sessions/{session}/messages",
                   body: #"{"content":"hi","stream":"yes"}"#, status: .badRequest),
        BadRequest(name: "message to a missing session", method: .post, path: "/v1/sessions/nope/messages", body: #"{"content":"hi"}"#,
                   status: .notFound),
        BadRequest(name: "body over the size limit", method: .post, path: "/v1/sessions/{session}/messages",
                   body: #"{"content":"\#(String(repeating: "x", count: 70_000))"}"#, status: .contentTooLarge),
    ]

    @Test("bad input gets its 4xx with a JSON error that says what is wrong, and changes nothing", arguments: badRequests)
    func badInput(_ bad: BadRequest) async throws {
        try await Harness.run { client, database in
            let (user, token) = try await TestDatabase.makeUser(database, prefix: "rest-bad")
            let created = try await client.send(.post, "/v1/sessions", token: token, body: Data(#"{"title":"keep"}"#.utf8))
            let session = try #require(try created.object()["id"]?.stringValue)
            let before = try await Self.sequence(of: user.id, database)

            let path = bad.path.replacingOccurrences(of: "{session}", with: session)
            let body = bad.body.map { Data($0.replacingOccurrences(of: "{session}", with: session).utf8) }
            let response = try await client.send(bad.method, path, token: token, body: body)
            #expect(response.status == bad.status)
            let error = try #require(response.errorBody, "a JSON error body")
            #expect(!error.error.message.isEmpty)
            #expect(try await Self.sequence(of: user.id, database) == before, "nothing was written")
            let kept = try await client.send(.get, "/v1/sessions/\(session)", token: token)
            #expect(try kept.object()["title"] == "keep")
        }
    }

    @Test("a known path with the wrong method is 405 with Allow; an unknown path is 404")
    func wrongMethod() async throws {
        try await Harness.run { client, database in
            let (_, token) = try await TestDatabase.makeUser(database, prefix: "rest-405")
            let put = try await client.send(.put, "/v1/sessions", token: token, body: Data("{}".utf8))
            #expect(put.status == .methodNotAllowed)
            #expect(put.headers[.allow] == "GET, POST")
            #expect(put.errorBody?.error.code == "method_not_allowed")
            let pushByGet = try await client.send(.get, "/v1/sync/push", token: token)
            #expect(pushByGet.status == .methodNotAllowed)
            #expect(pushByGet.headers[.allow] == "POST")
            let detail = try await client.send(.post, "/v1/sessions/abc", token: token, body: Data("{}".utf8))
            #expect(detail.headers[.allow] == "DELETE, GET, PATCH")
            #expect(try await client.send(.get, "/v1/nothing-here", token: token).status == .notFound)
        }
    }

    static func sequence(of userID: Int64, _ database: PostgresClient) async throws -> Int64 {
        var seq: Int64 = -1
        for try await value in try await database.query("SELECT sync_seq FROM users WHERE id = \(userID)", logger: TestDatabase.logger)
            .decode(Int64.self)
        {
            seq = value
        }
        return seq
    }
}

extension TestClientProtocol {
    func list(token: String, query: String = "") async throws -> (ids: [String], total: Int64, next: String?) {
        let response = try await send(.get, "/v1/sessions" + (query.isEmpty ? "" : "?\(query)"), token: token)
        guard response.status == .ok else { throw ProcessFailure("list answered \(response.status)") }
        let page = try response.object()
        return ((page["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }, page["total"]?.intValue ?? -1,
                page["nextCursor"]?.stringValue)
    }
}

extension TestResponse {
    /// The body as a JSON object.
    func object() throws -> JSONValue {
        let value = try WireJSON.decode(JSONValue.self, from: json)
        guard value.objectValue != nil else { throw ProcessFailure("the body is not a JSON object") }
        return value
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? { if case .array(let items) = self { items } else { nil } }
}
