import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// An OpenAI-compatible chat-completions client that streams replies.
///
/// ```swift
/// let client = ProviderClient(configuration: ProviderConfiguration(model: "llama3.2"))
/// var reply = ReplyAccumulator()
/// for try await event in client.streamChat(ChatCompletionRequest(messages: [.init(role: .user, content: "Hi")])) {
///     reply.apply(event)
/// }
/// ```
///
/// Errors are always `ProviderError`. Cancelling the task that iterates the stream stops the
/// HTTP request and makes the iteration throw `ProviderError.cancelled`.
public struct ProviderClient: Sendable {
    public let configuration: ProviderConfiguration
    let client: HTTPClient

    public init(configuration: ProviderConfiguration, client: HTTPClient = ProviderClient.sharedClient) {
        self.configuration = configuration
        self.client = client
    }

    /// A process-wide client that fails fast when the provider is down: connection attempts are
    /// not retried until the request deadline (AsyncHTTPClient's default), so an unreachable
    /// provider is reported at once instead of after the timeout.
    public static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// The reply to `request`, event by event. Nothing is sent until iteration starts; each
    /// iteration sends the request again.
    public func streamChat(_ request: ChatCompletionRequest) -> ChatCompletionStream {
        ChatCompletionStream(client: client, configuration: configuration, request: request)
    }

    /// Streams `request` to the end and returns the whole reply.
    public func complete(_ request: ChatCompletionRequest) async throws -> ReplyAccumulator {
        var reply = ReplyAccumulator()
        for try await event in streamChat(request) { reply.apply(event) }
        return reply
    }
}

/// The events of one streamed completion; ends with `.done` or throws a `ProviderError`.
public struct ChatCompletionStream: AsyncSequence, Sendable {
    public typealias Element = StreamEvent

    let client: HTTPClient
    let configuration: ProviderConfiguration
    let request: ChatCompletionRequest

    /// The most bytes a line of the stream, or an error body, may have.
    static let maxLineBytes = 16 << 20
    static let maxErrorBodyBytes = 1 << 20

    public func makeAsyncIterator() -> Iterator {
        Iterator(stream: self)
    }

    public struct Iterator: AsyncIteratorProtocol {
        enum State {
            case initial
            case streaming(HTTPClientResponse.Body.AsyncIterator)
            case finished
        }

        let stream: ChatCompletionStream
        var state = State.initial
        var parser = SSEParser()
        var decoder: ChunkDecoder
        /// Events parsed but not yet returned, from `pendingStart` on.
        var pending: [StreamEvent] = []
        var pendingStart = 0

        init(stream: ChatCompletionStream) {
            self.stream = stream
            self.decoder = ChunkDecoder(redactedKey: stream.configuration.redactableKey)
        }

        public mutating func next() async throws -> StreamEvent? {
            while true {
                if case .finished = state, pendingStart == pending.count { return nil }
                if Task.isCancelled {
                    finish()
                    throw ProviderError.cancelled
                }
                if pendingStart < pending.count {
                    let event = pending[pendingStart]
                    pendingStart += 1
                    if event == .done { finish() }
                    return event
                }
                pending.removeAll(keepingCapacity: true)
                pendingStart = 0
                switch state {
                case .finished:
                    return nil
                case .initial:
                    do {
                        let (status, body) = try await stream.start()
                        decoder.status = status
                        state = .streaming(body)
                    } catch {
                        finish()
                        throw error
                    }
                case .streaming(var body):
                    state = .finished  // hold the only reference while reading
                    let chunk: ByteBuffer?
                    do {
                        chunk = try await body.next()
                    } catch {
                        try endOfBody(error: error)
                        continue
                    }
                    guard let chunk else {
                        try endOfBody(error: nil)
                        continue
                    }
                    state = .streaming(body)
                    do {
                        try consume(chunk)
                    } catch {
                        finish()
                        throw error
                    }
                }
            }
        }

        /// Stops reading; dropping the body iterator closes the connection if the body is not over.
        mutating func finish() {
            state = .finished
            pending.removeAll()
            pendingStart = 0
        }

        mutating func consume(_ chunk: ByteBuffer) throws(ProviderError) {
            for event in parser.feed(chunk.readableBytesView) {
                pending += try decoder.events(for: event.data)
                if decoder.sawDone {
                    state = .finished
                    return
                }
            }
            if parser.bufferedLineBytes > ChatCompletionStream.maxLineBytes {
                throw .malformed("a line is longer than \(ChatCompletionStream.maxLineBytes) bytes")
            }
        }

        /// The body ended, cleanly (`error == nil`) or not: a reply that reached its finish
        /// reason is complete even without `[DONE]`.
        mutating func endOfBody(error: (any Error)?) throws(ProviderError) {
            state = .finished
            if Task.isCancelled || error is CancellationError {
                finish()
                throw .cancelled
            }
            if decoder.finishReason != nil {
                pending.append(.done)
            } else {
                finish()
                throw .streamEndedEarly
            }
        }
    }

    /// Sends the request and returns the streaming body of a 2xx response.
    func start() async throws(ProviderError) -> (status: Int, body: HTTPClientResponse.Body.AsyncIterator) {
        let key = configuration.redactableKey
        var httpRequest = HTTPClientRequest(url: configuration.chatCompletionsURL)
        httpRequest.method = .POST
        httpRequest.headers.add(name: "Content-Type", value: "application/json")
        httpRequest.headers.add(name: "Accept", value: "text/event-stream")
        if let key { httpRequest.headers.add(name: "Authorization", value: "Bearer \(key)") }
        do {
            httpRequest.body = .bytes(ByteBuffer(bytes: try request.body(defaultModel: configuration.model)))
        } catch {
            throw .malformed("the request could not be encoded (\(error))")
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(httpRequest, timeout: Self.timeAmount(configuration.timeout))
        } catch {
            throw Self.requestError(error, configuration: configuration)
        }
        let status = Int(response.status.code)
        let contentType = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        if (200..<300).contains(status) && !contentType.hasPrefix("application/json") {
            return (status, response.body.makeAsyncIterator())
        }
        let data: Data
        do {
            data = Data(try await response.body.collect(upTo: Self.maxErrorBodyBytes).readableBytesView)
        } catch {
            throw Self.requestError(error, configuration: configuration)
        }
        if let body = try? JSONDecoder().decode(WireErrorBody.self, from: data) {
            throw body.error.providerError(status: status, fallback: response.status.reasonPhrase, redacting: key)
        }
        if (200..<300).contains(status) {
            throw .malformed("the provider answered with JSON instead of an event stream")
        }
        throw .http(status: status, message: response.status.reasonPhrase, type: nil, code: nil)
    }

    static func requestError(_ error: any Error, configuration: ProviderConfiguration) -> ProviderError {
        if Task.isCancelled || error is CancellationError { return .cancelled }
        if let error = error as? HTTPClientError {
            switch error {
            case .cancelled: return .cancelled
            case .deadlineExceeded, .readTimeout:
                return .unreachable("\(configuration.baseURL) did not answer within \(configuration.timeout)")
            case .connectTimeout:
                return .unreachable("\(configuration.baseURL) did not accept a connection in time")
            default: break
            }
        }
        let detail: String
        if let error = error as? IOError {
            // "connection reset (error set): Connection refused (errno: 111)" becomes "connection refused".
            detail = String(cString: strerror(error.errnoCode)).lowercased()
        } else {
            detail = String(describing: error)
        }
        return .unreachable("\(configuration.baseURL) (\(redact(detail, configuration.redactableKey)))")
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
