import AsyncHTTPClient
import ChatProvider
import Foundation
import NIOCore
import NIOHTTP1
import SyncEngine

/// What went wrong talking to the REST chat API. Descriptions are sentences for a person.
public enum ChatClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The token is missing, wrong or revoked (401).
    case unauthorized(String)
    /// Metering is on and the balance is too low (402), with the x402 top-up offers.
    case paymentRequired(PaymentRequired)
    /// The server refused the request (another 4xx): never retried.
    case rejected(status: Int, code: String, message: String)
    /// The server failed, or stayed unavailable through every retry (5xx, 429).
    case server(status: Int, code: String, message: String)
    /// The server could not be reached, through every retry.
    case unreachable(String)
    /// The answer is not what docs/openapi.json describes.
    case unexpectedResponse(String)

    public var description: String {
        switch self {
        case .unauthorized(let message): "the server refused the token: \(message)"
        case .paymentRequired(let body): "payment required: \(body.error)"
        case .rejected(let status, let code, let message): "the server refused the request (\(status) \(code)): \(message)"
        case .server(let status, let code, let message): "the server failed (\(status) \(code)): \(message)"
        case .unreachable(let reason): "cannot reach the server: \(reason)"
        case .unexpectedResponse(let what): "unexpected response: \(what)"
        }
    }
}

/// When the client tries a request again: on 429 and 503 (honouring `Retry-After`), and on a
/// lost connection, with exponential backoff and jitter, never on any other 4xx. A request
/// that changes data and may have reached the server (`POST` after its bytes were sent) is
/// not repeated on a lost connection, so a message is never sent twice.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var initialDelay: Duration
    public var maximumDelay: Duration

    public init(maxAttempts: Int = 4, initialDelay: Duration = .milliseconds(250), maximumDelay: Duration = .seconds(8)) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait before attempt `attempt + 1` (1-based `attempt` just failed), in [d/2, d).
    func delay(after attempt: Int, retryAfter: Duration?) -> Duration {
        if let retryAfter { return min(retryAfter, maximumDelay) }
        let exponent = min(attempt - 1, 20)
        let ceiling = min(maximumDelay, initialDelay * (1 << exponent))
        return ceiling * Double.random(in: 0.5..<1)
    }
}

/// A typed client for the REST chat API (`/v1/sessions`, `/v1/messages`, `/v1/billing`,
/// `/v1/me`), as docs/openapi.json describes it: the bearer token on every request, retries
/// by `RetryPolicy`, replies as JSON or streamed as an `AsyncSequence` of `ReplyEvent`s.
public struct ChatClient: Sendable {
    public let baseURL: String
    let token: String
    let client: HTTPClient
    let retry: RetryPolicy
    let timeout: TimeAmount

    public init(baseURL: String, token: String, retry: RetryPolicy = RetryPolicy(), timeout: Duration = .seconds(120),
                client: HTTPClient = ChatClient.sharedClient) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.retry = retry
        self.client = client
        let (seconds, attoseconds) = timeout.components
        self.timeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// A process-wide HTTP client that fails fast when the server is down.
    public static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    // MARK: The API

    public func me() async throws -> WhoAmI {
        try await send(.GET, "/v1/me")
    }

    /// Sessions, most recently active first. `archived`: `false` (the default: active ones), `true` or `all`.
    public func sessions(limit: Int = 50, cursor: String? = nil, archived: String? = nil) async throws -> Page<RemoteSession> {
        try await send(.GET, "/v1/sessions" + query(["limit": String(limit), "cursor": cursor, "archived": archived]))
    }

    public func createSession(_ session: NewSession = NewSession()) async throws -> RemoteSession {
        try await send(.POST, "/v1/sessions", body: session)
    }

    public func session(_ id: String, messageLimit: Int = 50) async throws -> SessionDetail {
        try await send(.GET, "/v1/sessions/\(escape(id))" + query(["limit": String(messageLimit)]))
    }

    /// Renames (a title, or `.some(nil)` to clear it) and/or archives or restores a session.
    public func updateSession(_ id: String, title: String?? = nil, archived: Bool? = nil) async throws -> RemoteSession {
        var body: [String: JSONValue] = [:]
        if let title { body["title"] = title.map(JSONValue.string) ?? .null }
        if let archived { body["archived"] = .bool(archived) }
        return try await send(.PATCH, "/v1/sessions/\(escape(id))", body: JSONValue.object(body))
    }

    public func deleteSession(_ id: String) async throws {
        let _: Empty = try await send(.DELETE, "/v1/sessions/\(escape(id))")
    }

    public func messages(in sessionID: String, limit: Int = 50, cursor: String? = nil, role: String? = nil,
                         status: String? = nil) async throws -> Page<RemoteMessage> {
        try await send(.GET, "/v1/sessions/\(escape(sessionID))/messages"
                       + query(["limit": String(limit), "cursor": cursor, "role": role, "status": status]))
    }

    public func message(_ id: String) async throws -> RemoteMessage {
        try await send(.GET, "/v1/messages/\(escape(id))")
    }

    /// Sends a message and waits for the whole reply.
    public func send(_ content: String, in sessionID: String, model: String? = nil) async throws -> Reply {
        try await send(.POST, "/v1/sessions/\(escape(sessionID))/messages", body: SendBody(content: content, model: model, stream: false))
    }

    /// Sends a message and streams the reply as it is written. The sequence ends after `.done`
    /// or `.failed`; it throws `ChatClientError` if the request is refused or the stream breaks.
    public func streamReply(_ content: String, in sessionID: String, model: String? = nil) -> ReplyStream {
        ReplyStream(client: self, path: "/v1/sessions/\(escape(sessionID))/messages",
                    body: SendBody(content: content, model: model, stream: true))
    }

    public func billing() async throws -> BillingSummary {
        try await send(.GET, "/v1/billing")
    }

    // MARK: Requests

    struct SendBody: Encodable, Sendable {
        var content: String
        var model: String?
        var stream: Bool
    }

    struct Empty: Decodable {}

    func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }

    func query(_ items: [String: String?]) -> String {
        let pairs = items.compactMap { key, value in value.map { (key, $0) } }.sorted { $0.0 < $1.0 }
        guard !pairs.isEmpty else { return "" }
        return "?" + pairs.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? $0.1)" }
            .joined(separator: "&")
    }

    func request(_ method: HTTPMethod, _ path: String, body: Data?, accept: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: "chat-store-ChatClient/1")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    func send<Response: Decodable>(_ method: HTTPMethod, _ path: String) async throws -> Response {
        try await send(method, path, bodyData: nil)
    }

    func send<Response: Decodable>(_ method: HTTPMethod, _ path: String, body: some Encodable) async throws -> Response {
        try await send(method, path, bodyData: try JSONEncoder().encode(body))
    }

    private func send<Response: Decodable>(_ method: HTTPMethod, _ path: String, bodyData: Data?) async throws -> Response {
        let response = try await execute(method, path, body: bodyData, accept: "application/json")
        let bytes: ByteBuffer
        do {
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw ChatClientError.unreachable("the connection broke while reading the answer (\(error))")
        }
        if Response.self == Empty.self, let empty = Empty() as? Response { return empty }
        do {
            return try JSONDecoder().decode(Response.self, from: Data(bytes.readableBytesView))
        } catch {
            throw ChatClientError.unexpectedResponse("the answer to \(method.rawValue) \(path.split(separator: "?")[0]) is not a \(Response.self)")
        }
    }

    /// Runs a request under the retry policy; returns the first successful (2xx) response with
    /// its body unread, or throws the mapped error of the last attempt.
    func execute(_ method: HTTPMethod, _ path: String, body: Data?, accept: String) async throws -> HTTPClientResponse {
        let idempotent = method != .POST
        var attempt = 0
        while true {
            attempt += 1
            let outcome: Result<HTTPClientResponse, ChatClientError>
            var retryable = false
            var retryAfter: Duration?
            do {
                let response = try await client.execute(request(method, path, body: body, accept: accept), timeout: timeout)
                if (200..<300).contains(response.status.code) { return response }
                let error = await Self.mapError(response)
                retryable = [429, 503].contains(response.status.code)
                retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds($0) }
                outcome = .failure(error)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // A POST is repeated only if it certainly never reached the server.
                retryable = idempotent || Self.neverSent(error)
                outcome = .failure(.unreachable(String(describing: error)))
            }
            guard case .failure(let error) = outcome else { continue }
            guard retryable, attempt < retry.maxAttempts else { throw error }
            try await Task.sleep(for: retry.delay(after: attempt, retryAfter: retryAfter))
        }
    }

    /// Whether a failed request certainly never reached the server (the connection was not made).
    static func neverSent(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .connectTimeout || error == .getConnectionFromPoolTimeout
        }
        // NIO's connect errors (refused, unreachable host) are not HTTPClientErrors.
        let text = String(describing: error)
        return text.contains("connect") || text.contains("Connection refused")
    }

    static func mapError(_ response: HTTPClientResponse) async -> ChatClientError {
        let status = Int(response.status.code)
        let data = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
        if status == 402, let body = try? JSONDecoder().decode(PaymentRequired.self, from: data) {
            return .paymentRequired(body)
        }
        struct ErrorBody: Decodable {
            struct Detail: Decodable { var code: String; var message: String }
            var error: Detail
        }
        let body = try? JSONDecoder().decode(ErrorBody.self, from: data)
        let code = body?.error.code ?? "http_\(status)"
        let message = body?.error.message ?? response.status.reasonPhrase
        switch status {
        case 401: return .unauthorized(message)
        case 429: return .server(status: status, code: code, message: message)
        case 400..<500: return .rejected(status: status, code: code, message: message)
        default: return .server(status: status, code: code, message: message)
        }
    }
}
