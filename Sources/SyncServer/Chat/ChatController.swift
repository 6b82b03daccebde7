import ChatAgent
import ChatModel
import ChatProvider
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SyncEngine

/// The REST chat API for thin clients: `/v1/sessions…` and `/v1/messages/{id}`. Reads come
/// from the canonical tables; every write goes through the server's replica, so it syncs to the
/// user's devices like a write from a laptop.
struct ChatController {
    let replica: ServerReplica
    let queries: ChatQueries
    let provider: ProviderConfiguration
    /// The 402 gate before the provider is called, and the debit in the completing transaction.
    let metering: Metering
    /// The largest JSON body accepted (413 beyond).
    let maxBodyBytes: Int
    /// Where running replies are tracked for a graceful shutdown.
    let replies: ReplyTasks

    static let maxTitle = 500
    static let maxMessage = 100_000
    static let maxPage = 200

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("sessions", use: listSessions)
        group.post("sessions", use: createSession)
        group.get("sessions/{id}", use: sessionDetail)
        group.patch("sessions/{id}", use: updateSession)
        group.delete("sessions/{id}", use: deleteSession)
        group.get("sessions/{id}/messages", use: listMessages)
        group.post("sessions/{id}/messages", use: sendMessage)
        group.get("messages/{id}", use: message)
    }

    // MARK: Sessions

    @Sendable func listSessions(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let input = RequestInput(request: request, context: context)
        try input.onlyQuery(["limit", "cursor", "archived"])
        let filter = try input.choice("archived", from: ChatQueries.ArchiveFilter.allCases.map(\.rawValue))
            .flatMap(ChatQueries.ArchiveFilter.init(rawValue:)) ?? .active
        let (page, total) = try await queries.sessions(
            userID: user.id, filter: filter, limit: try input.limit(default: 50, max: Self.maxPage), after: try input.cursor())
        return try json(ChatViews.page(page.items.map(ChatViews.session), next: page.next, extra: ["total": .int(total)]))
    }

    @Sendable func createSession(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let body = try await JSONBody.read(
            request, limit: maxBodyBytes, allowed: ["id", "title", "agent", "provider", "model", "projectPath"])
        let id = try body.id("id") ?? ChatID.make()
        let title = try body.string("title", length: 0...Self.maxTitle)
        let agent = try body.string("agent", length: 1...200) ?? "chat-server"
        let providerName = try body.string("provider", length: 1...200) ?? "openai-compatible"
        let model = try body.string("model", length: 1...200) ?? provider.model
        let projectPath = try body.string("projectPath", length: 0...4096) ?? ""
        try await Self.writing {
            try await ServerChatWrites(replica: replica, userID: user.id).createSession(
                id: id, title: title, agent: agent, provider: providerName, model: model, projectPath: projectPath)
        }
        guard let row = try await queries.row(ChatSchema.sessions, id: id, userID: user.id) else {
            throw APIError.notFound("no session \(id)")
        }
        return try json(ChatViews.session(row), status: .created)
    }

    @Sendable func sessionDetail(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let input = RequestInput(request: request, context: context)
        try input.onlyQuery(["limit", "cursor", "role", "status"])
        let id = try input.pathID(noun: "session")
        guard let session = try await queries.row(ChatSchema.sessions, id: id, userID: user.id) else {
            throw APIError.notFound("no session \(id)")
        }
        let page = try await messagesPage(input, sessionID: id, userID: user.id)
        guard case .object(var object) = ChatViews.session(session) else { throw APIError.notFound("no session \(id)") }
        object["messages"] = page
        return try json(JSONValue.object(object))
    }

    @Sendable func updateSession(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let id = try RequestInput(request: request, context: context).pathID(noun: "session")
        let body = try await JSONBody.read(request, limit: maxBodyBytes, allowed: ["title", "archived"])
        let title = try body.nullableString("title", length: 0...Self.maxTitle)
        let archived = try body.bool("archived")
        guard title != nil || archived != nil else {
            throw APIError.invalid("send \"title\" (a string, or null to clear it) and/or \"archived\" (true or false)")
        }
        try await Self.writing {
            try await ServerChatWrites(replica: replica, userID: user.id).updateSession(
                id: id, ChatEdits.SessionUpdate(title: title.map { $0.stringValue }, archived: archived))
        }
        guard let row = try await queries.row(ChatSchema.sessions, id: id, userID: user.id) else {
            throw APIError.notFound("no session \(id)")
        }
        return try json(ChatViews.session(row))
    }

    @Sendable func deleteSession(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let id = try RequestInput(request: request, context: context).pathID(noun: "session")
        try await Self.writing { try await ServerChatWrites(replica: replica, userID: user.id).deleteSession(id: id) }
        return Response(status: .noContent)
    }

    // MARK: Messages

    @Sendable func listMessages(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let input = RequestInput(request: request, context: context)
        try input.onlyQuery(["limit", "cursor", "role", "status"])
        let id = try input.pathID(noun: "session")
        guard try await queries.row(ChatSchema.sessions, id: id, userID: user.id) != nil else {
            throw APIError.notFound("no session \(id)")
        }
        return try json(try await messagesPage(input, sessionID: id, userID: user.id))
    }

    @Sendable func message(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let input = RequestInput(request: request, context: context)
        try input.onlyQuery([])
        let id = try input.pathID(noun: "message")
        guard let rows = try await queries.message(id: id, userID: user.id) else { throw APIError.notFound("no message \(id)") }
        return try json(ChatViews.message(rows))
    }

    private func messagesPage(_ input: RequestInput, sessionID: String, userID: Int64) async throws -> JSONValue {
        let page = try await queries.messages(
            sessionID: sessionID, userID: userID, limit: try input.limit(default: 50, max: Self.maxPage), after: try input.cursor(),
            role: try input.choice("role", from: ChatSchema.roles.sorted()),
            status: try input.choice("status", from: ChatSchema.messageStatuses.sorted()))
        return ChatViews.page(page.items.map(ChatViews.message), next: page.next)
    }

    /// Stores the user's message, asks the provider, and writes the reply as it streams. With
    /// `Accept: text/event-stream` (or `"stream": true`) the answer is a stream of server-sent
    /// events; otherwise the completed exchange as JSON once the reply is done. The reply is
    /// written to the end even if the client goes away: it is the user's data, and their
    /// devices are watching it arrive.
    @Sendable func sendMessage(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let sessionID = try RequestInput(request: request, context: context).pathID(noun: "session")
        let body = try await JSONBody.read(request, limit: maxBodyBytes, allowed: ["content", "model", "stream"])
        guard let content = try body.string("content", required: true, length: 1...Self.maxMessage),
              !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        else { throw APIError.invalid("\"content\" must not be blank") }
        let model = try body.string("model", length: 1...200)
        let streaming = try body.bool("stream") ?? (request.headers[.accept]?.contains("text/event-stream") == true)
        guard let session = try await queries.row(ChatSchema.sessions, id: sessionID, userID: user.id) else {
            throw APIError.notFound("no session \(sessionID)")
        }
        // The request's model, else the session's (what the user chose when creating it).
        let replyModel = model ?? session["model"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        try await metering.gate(userID: user.id, resource: "/v1/sessions/\(sessionID)/messages")

        let userID = user.id
        let metering = metering
        let store = ServerReplyStore(
            writes: ServerChatWrites(replica: replica, userID: userID), queries: queries,
            onComplete: { tx, messageID, model, usage in
                // Last in the transaction that completes the reply, after the user's row lock.
                try await metering.charge(
                    userID: userID, messageID: messageID, model: model,
                    usage: MeteredUsage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                                        cachedTokens: usage.cachedInputTokens, reasoningTokens: usage.reasoningTokens),
                    on: tx.connection)
            })
        let turn = ChatTurn(replies: store, provider: ProviderClient(configuration: provider))
        let (events, continuation) = AsyncStream<ServerSentEvent>.makeStream()
        let queries = queries
        let logger = context.logger
        // Not a child of the request: the reply completes even when the client disconnects, and
        // a graceful shutdown waits for it (`ReplyTasks`).
        let reply = replies.start { () throws -> ReplyResult in
            defer { continuation.finish() }
            let outcome: ChatTurn.Outcome
            do {
                outcome = try await turn.send(sessionID: sessionID, text: content, model: replyModel) { event in
                    if let sse = ServerSentEvent(event, sessionID: sessionID) { continuation.yield(sse) }
                }
            } catch {
                let apiError = Self.apiError(for: error)
                continuation.yield(ServerSentEvent(name: "error", data: [
                    "error": ["code": .string(apiError.code), "message": .string(apiError.message)],
                ]))
                throw apiError
            }
            let rows = try await queries.message(id: outcome.assistantMessageID, userID: userID)
            let message = rows.map(ChatViews.message) ?? .null
            let result = ReplyResult(outcome: outcome, message: message, charge: store.completionCharge)
            Self.log(result, sessionID: sessionID, logger: logger)
            continuation.yield(result.finalEvent)
            return result
        }

        if streaming {
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
                body: ResponseBody { writer in
                    for await event in events {
                        try await writer.write(ByteBuffer(string: event.text))
                    }
                    try await writer.finish(nil)
                })
        }
        let result = try await reply.value
        if let error = result.outcome.error {
            throw APIError(.badGateway, code: error == .cancelled ? "aborted" : "provider_error",
                           "the model provider failed (\(error)); the reply is recorded with status error as message \(result.outcome.assistantMessageID)")
        }
        var response = try json(JSONValue.object([
            "userMessageId": .string(result.outcome.userMessageID), "message": result.message, "usage": result.usageJSON,
            "charge": result.chargeJSON,
        ]))
        response.headers.append(contentsOf: result.headers)
        return response
    }

    // MARK: Helpers

    /// Runs a server write and turns its refusal into the matching HTTP error.
    static func writing<Result: Sendable>(_ body: () async throws -> sending Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as ServerWriteError {
            throw apiError(for: error)
        }
    }

    static func apiError(for error: any Error) -> APIError {
        switch error {
        case let error as APIError: error
        case ServerWriteError.notFound(let table, let id): .notFound("no \(ServerReplica.Transaction.noun(table)) \(id)")
        case ServerWriteError.conflict(let message): APIError(.conflict, code: "conflict", message)
        case ServerWriteError.invalid(let message): .invalid(message)
        default: APIError(.internalServerError, code: "internal", "the reply could not be stored; see the server log")
        }
    }

    static func log(_ result: ReplyResult, sessionID: String, logger: Logger) {
        let usage = result.outcome.usage
        var metadata: Logger.Metadata = [
            "session": "\(sessionID)", "message": "\(result.outcome.assistantMessageID)",
            "model": "\(result.message["model"]?.stringValue ?? "")",
            "status": "\(result.outcome.error == nil ? "complete" : "error")",
            "latency_ms": "\(result.outcome.latencyMs)",
            "prompt_tokens": "\(usage?.promptTokens ?? 0)", "completion_tokens": "\(usage?.completionTokens ?? 0)",
            "cached_tokens": "\(usage?.cachedTokens ?? 0)", "reasoning_tokens": "\(usage?.reasoningTokens ?? 0)",
        ]
        if let charge = result.charge {
            metadata["cost_micros"] = "\(charge.costMicros)"
            metadata["balance_micros"] = "\(charge.balanceMicros)"
        }
        logger.info("reply", metadata: metadata)
    }
}

/// A finished reply as the API reports it.
struct ReplyResult: Sendable {
    var outcome: ChatTurn.Outcome
    var message: JSONValue
    var charge: Charge?

    var usageJSON: JSONValue {
        guard let usage = outcome.usage else { return .null }
        return .object([
            "promptTokens": .int(Int64(usage.promptTokens)), "completionTokens": .int(Int64(usage.completionTokens)),
            "totalTokens": .int(Int64(usage.totalTokens)), "cachedInputTokens": .int(Int64(usage.cachedTokens)),
            "reasoningTokens": .int(Int64(usage.reasoningTokens)), "latencyMs": .int(outcome.latencyMs),
        ])
    }

    var chargeJSON: JSONValue {
        guard let charge, let text = try? WireJSON.encodeString(charge) else { return .null }
        return (try? WireJSON.decode(JSONValue.self, from: text)) ?? .null
    }

    /// Usage on a JSON response: `x-usage-*`, `x-latency-ms`, and with metering `x-cost-usd`
    /// and `x-balance-remaining`.
    var headers: HTTPFields {
        var fields = HTTPFields()
        let usage = outcome.usage
        fields[HTTPField.Name("x-usage-prompt-tokens")!] = "\(usage?.promptTokens ?? 0)"
        fields[HTTPField.Name("x-usage-completion-tokens")!] = "\(usage?.completionTokens ?? 0)"
        fields[HTTPField.Name("x-usage-total-tokens")!] = "\(usage?.totalTokens ?? 0)"
        fields[HTTPField.Name("x-usage-cached-tokens")!] = "\(usage?.cachedTokens ?? 0)"
        fields[HTTPField.Name("x-usage-reasoning-tokens")!] = "\(usage?.reasoningTokens ?? 0)"
        fields[HTTPField.Name("x-latency-ms")!] = "\(outcome.latencyMs)"
        if let charge { fields.append(contentsOf: Metering.headers(for: charge)) }
        return fields
    }

    /// The stream's last event: `done` with the completed message, its usage and charge, or
    /// `error` with the message as recorded (status error, what arrived before the failure).
    var finalEvent: ServerSentEvent {
        if let error = outcome.error {
            return ServerSentEvent(name: "error", data: [
                "message": message, "usage": usageJSON,
                "error": ["code": .string(error == .cancelled ? "aborted" : "provider_error"), "message": .string(error.description)],
            ])
        }
        return ServerSentEvent(name: "done", data: ["message": message, "usage": usageJSON, "charge": chargeJSON])
    }
}

/// One server-sent event: `event: name` and one `data:` line of JSON.
struct ServerSentEvent: Sendable {
    var name: String
    var data: JSONValue

    init(name: String, data: [String: JSONValue]) {
        self.name = name
        self.data = .object(data)
    }

    /// The event a turn step becomes on the stream.
    init?(_ event: ChatTurn.Event, sessionID: String) {
        switch event {
        case .userMessageStored(let id):
            self.init(name: "user_message", data: ["id": .string(id), "sessionId": .string(sessionID), "role": "user", "status": "complete"])
        case .assistantMessageStarted(let id):
            self.init(name: "assistant_message", data: [
                "id": .string(id), "sessionId": .string(sessionID), "role": "assistant", "status": "pending",
            ])
        case .textDelta(let text):
            self.init(name: "delta", data: ["type": "text", "text": .string(text)])
        case .reasoningDelta(let text):
            self.init(name: "delta", data: ["type": "reasoning", "text": .string(text)])
        case .toolCall(let partID, let callID, let name, let arguments):
            self.init(name: "tool_call", data: [
                "partId": .string(partID), "callId": callID.map(JSONValue.string) ?? .null,
                "name": name.map(JSONValue.string) ?? .null, "arguments": .string(arguments),
            ])
        case .toolResult(let partID, let callID, let name, let result):
            self.init(name: "tool_result", data: [
                "partId": .string(partID), "callId": callID.map(JSONValue.string) ?? .null, "name": .string(name), "result": result,
            ])
        }
    }

    var text: String {
        let json = (try? WireJSON.encodeString(data)) ?? "{}"
        return "event: \(name)\ndata: \(json)\n\n"
    }
}
