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

@Suite("Tenancy: a user never reaches another user's rows", .timeLimit(.minutes(2)))
struct TenancyTests {
    /// Alice's history on the server, and everything Mallory could try with her ids.
    @Test("another user can neither read nor overwrite, delete or extend the first user's rows")
    func isolation() async throws {
        try await Harness.run { api, client in
            let (_, alice) = try await TestDatabase.makeUser(client, prefix: "alice")
            let (_, mallory) = try await TestDatabase.makeUser(client, prefix: "mallory")
            let store = try ChatStore.inMemory()
            let sessionID = try Replicas.chatHistory(store)
            let (request, _) = try await Replicas.pushRequest(store)
            #expect(try await api.push(request, token: alice).status == .ok)
            let aliceBefore = try await api.pullAll(token: alice)
            let partID = try #require(aliceBefore.changes.first { $0.table == "message_parts" }?.id)

            // Reading: Mallory's pulls and identity show nothing of Alice's.
            #expect(try await api.pullAll(token: mallory).changes.isEmpty)
            #expect(try await api.me(token: mallory).serverCursor == 0)

            // Writing with Alice's ids, from a replica of Mallory's own.
            let m = ReplicaID("mallory-laptop")
            let stamp = Stamp(hlc: HLC(millis: ChatStore.systemNow()), replica: m)
            let vv = VersionVector([m: stamp.hlc])
            let attempts: [(String, RowChange)] = [
                ("rename Alice's session", RowChange(table: "sessions", id: sessionID, vv: vv, fields: ["title": FieldValue("pwned", stamp: stamp)])),
                ("delete Alice's session", RowChange(table: "sessions", id: sessionID, vv: vv, tombstone: stamp)),
                ("add a message to Alice's session", RowChange(table: "messages", id: "m-evil", vv: vv, fields: [
                    "session_id": FieldValue(.string(sessionID), stamp: stamp), "role": FieldValue("user", stamp: stamp),
                    "status": FieldValue("complete", stamp: stamp), "agent": FieldValue("a", stamp: stamp),
                    "provider": FieldValue("p", stamp: stamp), "model": FieldValue("m", stamp: stamp),
                    "created_at": FieldValue(1, stamp: stamp),
                ])),
                ("attach an artifact to Alice's part", RowChange(table: "artifacts", id: "a-evil", vv: vv, fields: [
                    "message_part_id": FieldValue(.string(partID), stamp: stamp), "kind": FieldValue("file", stamp: stamp),
                ])),
                ("bump Alice's session counters", RowChange(table: "sessions", id: sessionID, vv: vv,
                                                            counters: ["total_input_tokens": Counter([m: 1_000_000])])),
            ]
            for (what, change) in attempts {
                let response = try await api.push(PushRequest(replicaID: m, changes: [change]), token: mallory)
                #expect(response.status == .forbidden, "\(what)")
                #expect(response.errorBody?.error.code == "forbidden", "\(what)")
            }
            // Nothing of Alice's moved, and nothing landed under Mallory either.
            let aliceAfter = try await api.pullAll(token: alice)
            #expect(aliceAfter.changes == aliceBefore.changes)
            #expect(aliceAfter.cursor == aliceBefore.cursor)
            #expect(try await api.pullAll(token: mallory).changes.isEmpty)
        }
    }

    @Test("requests without a valid token get 401 with a JSON error")
    func authentication() async throws {
        try await Harness.run { api, _ in
            for token in [nil, "", "cst_0000000000000000000000000000000000000000000000000000000000000000", String(repeating: "x", count: 5_000)] {
                for (method, uri) in [(HTTPRequest.Method.get, "/v1/me"), (.get, "/v1/sync/pull?cursor=0"), (.post, "/v1/sync/push"), (.get, "/v1/sync/live")] {
                    let response = try await api.send(method, uri, token: token, body: method == .post ? Data("{}".utf8) : nil)
                    #expect(response.status == .unauthorized, "\(method) \(uri)")
                    #expect(response.errorBody?.error.code == "unauthorized")
                    #expect(response.headers[.wwwAuthenticate] == "Bearer")
                }
            }
        }
    }

    /// Sync requests reuse a successful token lookup for a few seconds; a token revoked in the
    /// database stops working once that time has passed, and at once with the cache off.
    @Test("a revoked token stops working: at once without the cache, after the cache's lifetime with it")
    func revokedToken() async throws {
        try await TestDatabase.withClient { client in
            let (user, token) = try await TestDatabase.makeUser(client, prefix: "revoked")
            let uncached = UserRepository(client: client, logger: TestDatabase.logger, tokenCacheSeconds: 0)
            let cached = UserRepository(client: client, logger: TestDatabase.logger, tokenCacheSeconds: 0.5)
            #expect(try await uncached.authenticate(token: token) == user)
            #expect(try await cached.authenticate(token: token) == user)

            try await client.query("UPDATE api_tokens SET revoked_at = now() WHERE user_id = \(user.id)", logger: TestDatabase.logger)
            #expect(try await uncached.authenticate(token: token) == nil)
            #expect(try await cached.authenticate(token: token) == user, "the lookup is reused within its lifetime")
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await cached.authenticate(token: token) == nil)
            // Unknown tokens are never cached: a wrong token stays wrong.
            #expect(try await cached.authenticate(token: token + "0") == nil)
        }
    }
}
