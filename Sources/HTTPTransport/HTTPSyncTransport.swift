import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SyncEngine

/// The sync protocol over HTTP with AsyncHTTPClient: one request per call, a deadline on each,
/// errors mapped to `SyncError` so callers can tell "offline" from "refused".
public struct HTTPSyncTransport: SyncTransport {
    public let baseURL: String
    let token: String
    let client: HTTPClient
    let timeout: TimeAmount

    /// - Parameters:
    ///   - baseURL: the server, for example `http://127.0.0.1:8787`.
    ///   - token: the bearer token `chat-server create-user` printed.
    public init(baseURL: String, token: String, client: HTTPClient = HTTPSyncTransport.sharedClient, timeout: Duration = .seconds(30)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.client = client
        let (seconds, attoseconds) = timeout.components
        self.timeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    public func push(_ request: PushRequest) async throws -> PushResponse {
        try await send("POST", "/v1/sync/push", body: try WireJSON.encode(request), as: PushResponse.self)
    }

    public func pull(cursor: Int64, limit: Int) async throws -> PullResponse {
        try await send(
            "GET", "/v1/sync/pull?protocolVersion=\(SyncProtocol.version)&cursor=\(cursor)&limit=\(limit)", body: nil,
            as: PullResponse.self)
    }

    /// Who the token belongs to; also the cheapest way to check the server is reachable.
    public func whoAmI() async throws -> WhoAmI {
        try await send("GET", "/v1/me", body: nil, as: WhoAmI.self)
    }

    /// The digest of every session of the user on the server (`chat-cli doctor`).
    public func digests() async throws -> DigestsResponse {
        try await send("GET", "/v1/sync/digests", body: nil, as: DigestsResponse.self)
    }

    /// A process-wide client that fails fast when the server is down: connection attempts are
    /// not retried until the request deadline (AsyncHTTPClient's default), so an offline
    /// `chat-cli sync` answers in well under a second instead of waiting out the timeout.
    public static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// The most bytes a response may have.
    static let maxResponseBytes = 256 << 20

    func send<Response: Decodable>(_ method: String, _ path: String, body: Data?, as type: Response.Type) async throws -> Response {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = HTTPMethod(rawValue: method)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(request, timeout: timeout)
            bytes = try await response.body.collect(upTo: Self.maxResponseBytes)
        } catch let error as HTTPClientError {
            throw SyncError.unreachable(String(describing: error))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw SyncError.unreachable(String(describing: error))
        }
        let data = Data(bytes.readableBytesView)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let body = try? WireJSON.decode(ErrorBody.self, from: data)
            let message = body?.error.message ?? response.status.reasonPhrase
            switch status {
            case 401: throw SyncError.unauthorized(message)
            case 400..<500: throw SyncError.rejected(status: status, code: body?.error.code ?? "http_\(status)", message: message)
            default: throw SyncError.server("\(status) \(message)")
            }
        }
        do {
            return try WireJSON.decode(Response.self, from: data)
        } catch {
            throw SyncError.server("the response to \(method) \(path.split(separator: "?")[0]) is not the sync protocol")
        }
    }
}
