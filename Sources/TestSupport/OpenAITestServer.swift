import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A real OpenAI-compatible chat-completions server on 127.0.0.1 and a free port, for tests of
/// streaming clients. `POST /v1/chat/completions` answers with a scripted scenario chosen by the
/// request's `model`:
///
/// - `text`: content deltas "Hello", ", ", "world", "!", finish `stop`, a usage chunk
///   (12 prompt, 6 completion, 18 total, 8 cached, 2 reasoning tokens), `[DONE]`.
/// - `reasoning`: `reasoning_content` deltas "Let me", " think", an Ollama-style `reasoning` delta
///   " briefly.", then content "The answer", " is 42.", finish `stop`, usage (20, 30, 50, 0 cached,
///   12 reasoning), `[DONE]`.
/// - `tools`: two interleaved tool calls, `call_weather`/`get_weather` `{"city":"Oslo"}` (index 0) and
///   `call_time`/`get_time` `{"tz":"Europe/Oslo"}` (index 1), finish `tool_calls`, usage (30, 15, 45).
/// - `error`: HTTP 401 with an OpenAI error body whose message quotes the bearer key it got.
/// - `cut`: two deltas ("Partial", " reply"), then the connection closes without `[DONE]`.
/// - `truncated`: two deltas, then the body ends cleanly, without a finish reason or `[DONE]`.
/// - `no-done`: "Done." with finish `stop`, then the body ends without `[DONE]`.
/// - `in-stream-error`: one delta, then `data: {"error": {...}}` (the status stays 200).
/// - `unavailable`: HTTP 503 with a plain-text body.
/// - `slow`: one delta ("tick ") every 100 ms for 60 s, for cancellation tests.
/// - `workspace`: text "Let me look.", then calls `read_file` `{"path":"notes.txt"}` (`call_read`) and
///   `write_file` `{"path":"out/hello.txt","content":"hello\nworld\n"}` (`call_write`), finish
///   `tool_calls`, usage (30, 10, 40). Once the request carries `tool` messages: "Wrote the file.",
///   finish `stop`, usage (50, 5, 55, 10 cached).
/// - `paced`: 20 deltas ("word0 " … "word19 ") 100 ms apart, finish `stop`, usage (40, 20, 60):
///   a reply that takes about 2 s, for watching it arrive elsewhere.
/// - `split`: `\r\n` line endings, comments, `event:`/`id:`/`retry:` fields, a two-line `data:`
///   field, written in pieces cut inside `data:`, between `\r` and `\n` and inside UTF-8
///   characters, several events in some pieces; text "Grüße, 世界 🌍!", finish `stop`, usage
///   (5, 4, 9).
///
/// Any other model gets HTTP 404 with an OpenAI error body.
public final class OpenAITestServer: Sendable {
    /// What the server saw of one request.
    public struct RecordedRequest: Sendable {
        public var body: Data
        public var authorization: String?

        /// The body as a JSON object.
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    /// How a streamed body ended on the server's side.
    public enum StreamOutcome: Sendable, Equatable {
        /// Every write succeeded and the body was finished.
        case completed(writes: Int)
        /// The script closed the connection on purpose (`cut`).
        case cut(writes: Int)
        /// A write failed or the handler was cancelled: the client went away.
        case interrupted(writes: Int)
    }

    public let port: Int
    /// The API root to configure a client with: `http://127.0.0.1:<port>/v1`.
    public var baseURL: String { "http://127.0.0.1:\(port)/v1" }
    let recorder: Recorder

    init(port: Int, recorder: Recorder) {
        self.port = port
        self.recorder = recorder
    }

    /// The last request's body and `Authorization` header.
    public var lastRequest: RecordedRequest? { recorder.state.withLock { $0.lastRequest } }

    /// Waits until the stream of the first request for `model` has ended, and says how.
    public func streamOutcome(model: String) async -> StreamOutcome {
        await withCheckedContinuation { continuation in
            let outcome = recorder.state.withLock { state -> StreamOutcome? in
                if let outcome = state.outcomes[model] { return outcome }
                state.waiters.append((model, continuation))
                return nil
            }
            if let outcome { continuation.resume(returning: outcome) }
        }
    }

    /// Runs the server for the duration of `body`, then stops it by cancellation.
    @discardableResult
    public static func withServer<T: Sendable>(_ body: (OpenAITestServer) async throws -> T) async throws -> T {
        let recorder = Recorder()
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let router = Router()
        router.post("v1/chat/completions") { request, _ -> Response in
            var request = request
            let bytes = try await request.collectBody(upTo: 4 << 20)
            let data = Data(bytes.readableBytesView)
            let authorization = request.headers[.authorization]
            recorder.state.withLock { $0.lastRequest = RecordedRequest(body: data, authorization: authorization) }
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            var model = json?["model"] as? String ?? ""
            if model == "workspace", let messages = json?["messages"] as? [[String: Any]], messages.contains(where: { $0["role"] as? String == "tool" }) {
                model = "workspace-final"
            }
            return Script.response(model: model, authorization: authorization, recorder: recorder)
        }
        var logger = Logger(label: "openai-test-server")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "openai-test-server"),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { portContinuation.finish() }
                try await app.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else {
                group.cancelAll()
                try await group.waitForAll()
                throw ProcessFailure("the OpenAI test server did not start")
            }
            let server = OpenAITestServer(port: port, recorder: recorder)
            defer {
                recorder.state.withLock { $0.stopping = true }
                group.cancelAll()
            }
            return try await body(server)
        }
    }
}

/// The server's shared state.
final class Recorder: Sendable {
    struct State {
        var lastRequest: OpenAITestServer.RecordedRequest?
        var outcomes: [String: OpenAITestServer.StreamOutcome] = [:]
        var waiters: [(String, CheckedContinuation<OpenAITestServer.StreamOutcome, Never>)] = []
        var stopping = false
    }

    let state = Mutex(State())

    func ended(model: String, _ outcome: OpenAITestServer.StreamOutcome) {
        let ready = state.withLock { state -> [CheckedContinuation<OpenAITestServer.StreamOutcome, Never>] in
            guard state.outcomes[model] == nil else { return [] }
            state.outcomes[model] = outcome
            let ready = state.waiters.filter { $0.0 == model }.map(\.1)
            state.waiters.removeAll { $0.0 == model }
            return ready
        }
        for continuation in ready { continuation.resume(returning: outcome) }
    }

    var isStopping: Bool { state.withLock { $0.stopping } }
}

/// The scripted answers.
enum Script {
    enum Step: Sendable {
        case write([UInt8])
        case pause(Duration)
        /// Close the connection without ending the body.
        case cut
    }

    struct Cut: Error {}

    static func response(model: String, authorization: String?, recorder: Recorder) -> Response {
        switch model {
        case "error":
            let key = authorization.map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : $0 } ?? ""
            return jsonError(
                .unauthorized,
                message: "Incorrect API key provided: \(key). You can find your API key at https://platform.openai.com/account/api-keys.",
                type: "invalid_request_error", code: "invalid_api_key")
        case "unavailable":
            return Response(
                status: .serviceUnavailable, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: "upstream overloaded")))
        case "text", "reasoning", "tools", "cut", "truncated", "no-done", "in-stream-error", "slow", "paced", "split", "workspace",
             "workspace-final":
            return stream(model: model, steps: steps(model), recorder: recorder)
        default:
            return jsonError(.notFound, message: "The model `\(model)` does not exist.", type: "invalid_request_error", code: "model_not_found")
        }
    }

    static func jsonError(_ status: HTTPResponse.Status, message: String, type: String, code: String) -> Response {
        let body = json(["error": ["message": message, "type": type, "param": NSNull(), "code": code]])
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func stream(model: String, steps: [Step], recorder: Recorder) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                var writes = 0
                do {
                    for step in steps {
                        switch step {
                        case .write(let bytes):
                            try await writer.write(ByteBuffer(bytes: bytes))
                            writes += 1
                        case .pause(let duration):
                            if recorder.isStopping { throw CancellationError() }
                            try await Task.sleep(for: duration)
                        case .cut:
                            recorder.ended(model: model, .cut(writes: writes))
                            throw Cut()
                        }
                    }
                    try await writer.finish(nil)
                    recorder.ended(model: model, .completed(writes: writes))
                } catch {
                    recorder.ended(model: model, .interrupted(writes: writes))
                    throw error
                }
            })
    }

    static func steps(_ model: String) -> [Step] {
        switch model {
        case "text":
            return events([
                chunk(model, ["role": "assistant", "content": ""]),
                chunk(model, ["content": "Hello"]), chunk(model, ["content": ", "]),
                chunk(model, ["content": "world"]), chunk(model, ["content": "!"]),
                chunk(model, [:], finish: "stop"),
                usage(model, prompt: 12, completion: 6, cached: 8, reasoning: 2),
                "[DONE]",
            ])
        case "reasoning":
            return events([
                chunk(model, ["role": "assistant", "content": NSNull(), "reasoning_content": "Let me"]),
                chunk(model, ["reasoning_content": " think"]), chunk(model, ["reasoning": " briefly."]),
                chunk(model, ["content": "The answer"]), chunk(model, ["content": " is 42."]),
                chunk(model, [:], finish: "stop"),
                usage(model, prompt: 20, completion: 30, cached: 0, reasoning: 12),
                "[DONE]",
            ])
        case "tools":
            func call(_ index: Int, id: String? = nil, name: String? = nil, _ arguments: String) -> [String: Any] {
                var function: [String: Any] = ["arguments": arguments]
                if let name { function["name"] = name }
                var call: [String: Any] = ["index": index, "function": function]
                if let id {
                    call["id"] = id
                    call["type"] = "function"
                }
                return ["tool_calls": [call]]
            }
            return events([
                chunk(model, ["role": "assistant", "content": NSNull()].merging(call(0, id: "call_weather", name: "get_weather", "")) { $1 }),
                chunk(model, call(0, "{\"city\":")),
                chunk(model, call(1, id: "call_time", name: "get_time", "{\"tz\"")),
                chunk(model, call(0, "\"Oslo\"}")),
                chunk(model, call(1, ":\"Europe/Oslo\"}")),
                chunk(model, [:], finish: "tool_calls"),
                usage(model, prompt: 30, completion: 15, cached: 0, reasoning: 0),
                "[DONE]",
            ])
        case "cut":
            return events([chunk(model, ["content": "Partial"]), chunk(model, ["content": " reply"])]) + [.pause(.milliseconds(20)), .cut]
        case "truncated":
            return events([chunk(model, ["content": "Partial"]), chunk(model, ["content": " reply"])])
        case "no-done":
            return events([chunk(model, ["content": "Done."]), chunk(model, [:], finish: "stop")])
        case "in-stream-error":
            return events([
                chunk(model, ["content": "Hel"]),
                json(["error": ["message": "The server had an error while processing your request.", "type": "server_error", "code": NSNull()]]),
            ])
        case "slow":
            return (0..<600).flatMap { _ in [Step.pause(.milliseconds(100)), .write(Array(event(chunk(model, ["content": "tick "])).utf8))] }
        case "workspace":
            func call(_ index: Int, _ id: String, _ name: String, _ arguments: String) -> [String: Any] {
                ["tool_calls": [["index": index, "id": id, "type": "function", "function": ["name": name, "arguments": arguments]]]]
            }
            return events([
                chunk(model, ["role": "assistant", "content": "Let me look."]),
                chunk(model, call(0, "call_read", "read_file", #"{"path":"notes.txt"}"#)),
                chunk(model, call(1, "call_write", "write_file", #"{"path":"out/hello.txt","content":"hello\nworld\n"}"#)),
                chunk(model, [:], finish: "tool_calls"),
                usage(model, prompt: 30, completion: 10, cached: 0, reasoning: 0),
                "[DONE]",
            ])
        case "workspace-final":
            return events([
                chunk(model, ["role": "assistant", "content": "Wrote the file."]),
                chunk(model, [:], finish: "stop"),
                usage(model, prompt: 50, completion: 5, cached: 10, reasoning: 0),
                "[DONE]",
            ])
        case "paced":
            var steps = (0..<20).flatMap { index in
                [Step.pause(.milliseconds(100)), .write(Array(event(chunk(model, ["content": "word\(index) "])).utf8))]
            }
            steps += events([chunk(model, [:], finish: "stop"), usage(model, prompt: 40, completion: 20, cached: 0, reasoning: 0), "[DONE]"])
            return steps
        case "split":
            return splitSteps(model)
        default:
            return []
        }
    }

    /// The `split` stream: its bytes, cut at awkward places.
    static func splitSteps(_ model: String) -> [Step] {
        let crlf = "\r\n"
        var text = ": this stream uses CRLF and comments" + crlf + "retry: 1000" + crlf + crlf
        text += "event: message" + crlf + "id: 1" + crlf + "data: " + chunk(model, ["role": "assistant", "content": "Grüße"]) + crlf + crlf
        text += "data: " + chunk(model, ["content": ", 世界"]) + crlf + crlf
        text += ": keep-alive" + crlf
        text += "data: " + chunk(model, ["content": " 🌍"]) + crlf + crlf
        // One JSON chunk over two `data:` lines; they join with "\n", which JSON allows.
        text += "data: {\"choices\":[{\"index\":0," + crlf + "data:\"delta\":{\"content\":\"!\"},\"finish_reason\":null}]}" + crlf + crlf
        text += "data: " + chunk(model, [:], finish: "stop") + crlf + crlf
        text += "data: " + usage(model, prompt: 5, completion: 4, cached: 0, reasoning: 0) + crlf + crlf
        text += "data: [DONE]" + crlf + crlf
        let bytes = Array(text.utf8)
        var cuts: Set<Int> = []
        func offsets(of needle: String) -> [Int] {
            let pattern = Array(needle.utf8)
            return (0...(bytes.count - pattern.count)).filter { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) }
        }
        for character in ["ü", "ß", "世", "界", "🌍"] { for offset in offsets(of: character) { cuts.insert(offset + 1) } }
        for offset in offsets(of: "🌍") { cuts.insert(offset + 3) }
        for offset in offsets(of: crlf).prefix(12) { cuts.insert(offset + 1) }  // between \r and \n
        for offset in offsets(of: "data:").dropFirst().prefix(4) { cuts.insert(offset + 2) }  // "da|ta:"
        var steps: [Step] = []
        var start = 0
        for cut in cuts.sorted() where cut > start && cut < bytes.count {
            steps += [.write(Array(bytes[start..<cut])), .pause(.milliseconds(3))]
            start = cut
        }
        steps.append(.write(Array(bytes[start...])))
        return steps
    }

    static func events(_ datas: [String]) -> [Step] {
        datas.map { .write(Array(event($0).utf8)) }
    }

    static func event(_ data: String) -> String { "data: \(data)\n\n" }

    static func chunk(_ model: String, _ delta: [String: Any], finish: String? = nil) -> String {
        json([
            "id": "chatcmpl-\(model)", "object": "chat.completion.chunk", "created": 1_750_000_000, "model": model,
            "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { $0 as Any } ?? NSNull()]], "usage": NSNull(),
        ])
    }

    static func usage(_ model: String, prompt: Int, completion: Int, cached: Int, reasoning: Int) -> String {
        json([
            "id": "chatcmpl-\(model)", "object": "chat.completion.chunk", "created": 1_750_000_000, "model": model, "choices": [],
            "usage": [
                "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": ["cached_tokens": cached], "completion_tokens_details": ["reasoning_tokens": reasoning],
            ],
        ])
    }

    static func json(_ object: Any) -> String {
        // The objects are literals above; serialising them cannot fail.
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
