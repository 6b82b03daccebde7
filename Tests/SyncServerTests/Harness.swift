import ChatModel
import ChatProvider
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LocalStore
import NIOCore
import PostgresNIO
import SyncEngine
import SyncServer
import TestSupport

/// Runs a test against the real router and a real PostgreSQL, in process.
enum Harness {
    /// `provider` is where the REST API's replies come from (nothing listens there by default).
    static func run(
        maxPushBytes: Int = 16 << 20,
        provider: ProviderConfiguration = ProviderConfiguration(baseURL: "http://127.0.0.1:9/v1", model: "text"),
        metering: MeteringConfiguration = .disabled,
        _ body: @escaping @Sendable (any TestClientProtocol, PostgresClient) async throws -> Void
    ) async throws {
        try await TestDatabase.withClient { client in
            let logger = TestDatabase.logger
            let configuration = ServerConfiguration(
                database: try TestDatabase.url(), maxPushBytes: maxPushBytes, provider: provider, maxRequestBytes: 64 << 10)
            let router = ChatServer.buildRouter(
                configuration: configuration, repository: PostgresSyncRepository(client: client, logger: logger),
                users: UserRepository(client: client, logger: logger),
                chat: ChatAPI(client: client, logger: logger),
                metering: Metering(configuration: metering, client: client, logger: logger), health: { true })
            try await Application(router: router, logger: logger).test(.router) { testClient in
                try await body(testClient, client)
            }
        }
    }
}

extension TestClientProtocol {
    func send(
        _ method: HTTPRequest.Method, _ uri: String, token: String?, body: Data? = nil, headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = "application/json" }
        return try await executeRequest(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
    }

    func push(_ request: PushRequest, token: String) async throws -> TestResponse {
        try await send(.post, "/v1/sync/push", token: token, body: try WireJSON.encode(request))
    }

    func pullAll(token: String, from cursor: Int64 = 0, limit: Int = 500) async throws -> (changes: [RowChange], cursor: Int64) {
        var cursor = cursor
        var changes: [RowChange] = []
        while true {
            let response = try await send(.get, "/v1/sync/pull?protocolVersion=1&cursor=\(cursor)&limit=\(limit)", token: token)
            guard response.status == .ok else { throw ProcessFailure("pull answered \(response.status)") }
            let page = try WireJSON.decode(PullResponse.self, from: Data(response.body.readableBytesView))
            changes += page.changes
            cursor = page.cursor
            if !page.hasMore { return (changes, cursor) }
        }
    }

    func pullPage(token: String, from cursor: Int64, limit: Int = 1_000) async throws -> PullResponse {
        let response = try await send(.get, "/v1/sync/pull?cursor=\(cursor)&limit=\(limit)", token: token)
        return try WireJSON.decode(PullResponse.self, from: Data(response.body.readableBytesView))
    }

    func me(token: String) async throws -> WhoAmI {
        let response = try await send(.get, "/v1/me", token: token)
        return try WireJSON.decode(WhoAmI.self, from: Data(response.body.readableBytesView))
    }
}

extension TestResponse {
    var json: Data { Data(body.readableBytesView) }
    var errorBody: ErrorBody? { try? WireJSON.decode(ErrorBody.self, from: json) }
}

/// Realistic changes: written through a real (in-memory) replica and read from its outbox.
enum Replicas {
    static func chatHistory(_ store: ChatStore, title: String = "Trip planning") throws -> String {
        let session = try store.createSession(title: title, agent: "build", provider: "ollama", model: "llama3.2", projectPath: "/home/me/trip")
        try store.appendUserMessage(sessionID: session.id, text: "Where should we go?")
        let reply = try store.startAssistantMessage(sessionID: session.id)
        let text = try store.addPart(messageID: reply.id, type: .text, content: ["text": "Let me check"], stepIndex: 0)
        try store.updatePart(id: text.id, content: ["text": "Let me check the weather."])
        try store.addPart(messageID: reply.id, type: .toolCall, content: ["name": "weather", "args": ["city": "Oslo"], "callId": "c1"],
                          stepIndex: 0, toolName: "weather", toolCallID: "c1")
        let result = try store.addPart(messageID: reply.id, type: .toolResult,
                                       content: ["name": "weather", "result": "sunny", "callId": "c1"], stepIndex: 0,
                                       toolName: "weather", toolCallID: "c1", completedAt: 1_800_000_000_000, toolDurationMs: 120)
        try store.addArtifact(partID: result.id, kind: "file", path: "/tmp/weather.json", mime: "application/json", size: 42, sha256: String(repeating: "a", count: 64))
        try store.completeMessage(id: reply.id, usage: Usage(promptTokens: 100, completionTokens: 20, cachedInputTokens: 30, reasoningTokens: 5), latencyMs: 850)
        return session.id
    }

    static func pushRequest(_ store: ChatStore) async throws -> (PushRequest, OutboxBatch) {
        let batch = try require(try await store.nextOutboxBatch(limit: 1_000), "outbox batch")
        return (PushRequest(replicaID: store.replicaID, changes: batch.changes), batch)
    }

    /// Live rows with their materialized column values, for comparing replicas.
    static func liveRows(_ states: [RowChange]) -> [RowKey: [String: JSONValue]] {
        var rows: [RowKey: [String: JSONValue]] = [:]
        for state in states where !state.isDeleted {
            guard let schema = ChatSchema.table(state.table) else { continue }
            rows[state.key] = state.materialized(schema: schema)
        }
        return rows
    }
}

func require<T>(_ value: T?, _ message: String = "") throws -> T {
    guard let value else { throw ProcessFailure("required value missing \(message)") }
    return value
}

