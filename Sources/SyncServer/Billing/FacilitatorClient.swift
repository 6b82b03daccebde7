import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SyncEngine

/// The facilitator could not give an answer: unreachable, too slow, a 5xx, or a body that is not
/// the expected JSON. Nothing was credited; the client should retry later (502).
public struct FacilitatorUnavailable: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "the payment facilitator is unavailable: \(reason)" }
}

/// Talks to an x402 facilitator: `POST {url}/verify` and `POST {url}/settle`, each with
/// `{x402Version, paymentPayload, paymentRequirements}`. Every call has a deadline, and
/// connection attempts are not retried, so a facilitator that is down is reported at once.
public struct FacilitatorClient: Sendable {
    public let url: String
    let client: HTTPClient
    let timeout: Duration

    public init(url: String, timeout: Duration = .seconds(30), client: HTTPClient = FacilitatorClient.sharedClient) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.timeout = timeout
        self.client = client
    }

    /// A process-wide client: 2 s to connect, no connection retries (the caller retries).
    public static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(2)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public func verify(_ payment: PaymentPayload, requirements: PaymentRequirements) async throws(FacilitatorUnavailable) -> VerifyResponse {
        try await post("verify", FacilitatorRequest(paymentPayload: payment, paymentRequirements: requirements))
    }

    public func settle(_ payment: PaymentPayload, requirements: PaymentRequirements) async throws(FacilitatorUnavailable) -> SettleResponse {
        try await post("settle", FacilitatorRequest(paymentPayload: payment, paymentRequirements: requirements))
    }

    /// Posts `body`; decodes the answer whatever the status below 500 (facilitators answer an
    /// invalid payment with 200 or 400 and a reason). A 5xx, or an answer that does not decode,
    /// is `FacilitatorUnavailable`.
    func post<Answer: Decodable>(_ path: String, _ body: FacilitatorRequest) async throws(FacilitatorUnavailable) -> Answer {
        var request = HTTPClientRequest(url: "\(url)/\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        let status: UInt
        let bytes: ByteBuffer
        do {
            request.body = .bytes(ByteBuffer(bytes: try WireJSON.encode(body)))
            let (seconds, attoseconds) = timeout.components
            let response = try await client.execute(request, timeout: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
            status = response.status.code
            bytes = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw FacilitatorUnavailable("/\(path) did not answer (\(Self.describe(error)))")
        }
        guard status < 500 else { throw FacilitatorUnavailable("/\(path) answered HTTP \(status)") }
        do {
            return try WireJSON.decode(Answer.self, from: Data(bytes.readableBytesView))
        } catch {
            throw FacilitatorUnavailable("/\(path) answered HTTP \(status) with a body that is not a \(path) response")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            default: return "\(error)"
            }
        }
        return String(describing: type(of: error))
    }
}
