import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A real HTTP server on loopback that answers every request with the next scripted response
/// (the last one repeats), and counts requests: for testing a client's retry rules.
public final class ScriptedHTTPServer: Sendable {
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: String

        public init(_ status: Int, headers: [String: String] = [:], body: String = "") {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    public let port: Int
    private let state: Shared
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// Requests answered so far.
    public var requestCount: Int { state.count.withLock { $0 } }

    init(port: Int, state: Shared) {
        self.port = port
        self.state = state
    }

    public static func withServer<T: Sendable>(_ answers: [Answer], _ body: (ScriptedHTTPServer) async throws -> T) async throws -> T {
        let state = Shared(answers: answers)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let router = Router()
        router.on("**", method: .get) { _, _ in state.next() }
        router.on("**", method: .post) { _, _ in state.next() }
        router.on("**", method: .patch) { _, _ in state.next() }
        router.on("**", method: .delete) { _, _ in state.next() }
        var logger = Logger(label: "scripted-http")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "scripted"),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            }, logger: logger)
        let task = Task { try await app.run() }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw ProcessFailure("the scripted server did not start") }
        return try await body(ScriptedHTTPServer(port: port, state: state))
    }

    final class Shared: Sendable {
        let answers: [Answer]
        let count = Mutex(0)

        init(answers: [Answer]) { self.answers = answers }

        func next() -> Response {
            let index = count.withLock { count in
                defer { count += 1 }
                return count
            }
            let answer = answers[min(index, answers.count - 1)]
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            for (name, value) in answer.headers { if let field = HTTPField.Name(name) { headers[field] = value } }
            return Response(status: .init(code: answer.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
    }
}
