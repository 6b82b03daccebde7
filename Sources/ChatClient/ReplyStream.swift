import AsyncHTTPClient
import ChatProvider
import Foundation
import NIOCore
import NIOHTTP1
import SyncEngine

/// A streamed reply: iterate it for `ReplyEvent`s as the server writes them. The request is
/// made when iteration starts (retried by the client's policy until the stream opens, never
/// after). Breaking out of the loop closes the connection; the server still finishes and
/// stores the reply, which reaches every device of the user.
public struct ReplyStream: AsyncSequence, Sendable {
    public typealias Element = ReplyEvent

    let client: ChatClient
    let path: String
    let body: ChatClient.SendBody

    public func makeAsyncIterator() -> Iterator {
        Iterator(stream: AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await run(continuation)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }.makeAsyncIterator())
    }

    public struct Iterator: AsyncIteratorProtocol {
        var stream: AsyncThrowingStream<ReplyEvent, any Error>.AsyncIterator

        public mutating func next() async throws -> ReplyEvent? { try await stream.next() }
    }

    private func run(_ continuation: AsyncThrowingStream<ReplyEvent, any Error>.Continuation) async throws {
        let response = try await client.execute(.POST, path, body: try JSONEncoder().encode(body), accept: "text/event-stream")
        var parser = SSEParser()
        var finished = false
        do {
            for try await buffer in response.body {
                for event in parser.feed(buffer.readableBytesView) {
                    let decoded = try Self.decode(event)
                    guard let decoded else { continue }
                    continuation.yield(decoded)
                    if case .done = decoded { finished = true }
                    if case .failed = decoded { finished = true }
                }
                if parser.bufferedLineBytes > 8 << 20 {
                    throw ChatClientError.unexpectedResponse("a server-sent event line longer than 8 MiB")
                }
            }
        } catch let error as ChatClientError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ChatClientError.unreachable("the reply stream broke (\(error)); the server keeps writing the reply, read it with message(_:)")
        }
        if !finished {
            throw ChatClientError.unreachable("the reply stream ended before its last event; the server keeps writing the reply, read it with message(_:)")
        }
    }

    /// One `event:`/`data:` block as a `ReplyEvent`; `nil` for events this client does not know.
    static func decode(_ event: ServerSentEvent) throws -> ReplyEvent? {
        let data: JSONValue
        do {
            data = try WireJSON.decode(JSONValue.self, from: event.data)
        } catch {
            throw ChatClientError.unexpectedResponse("a \(event.event ?? "message") event whose data is not JSON")
        }
        func string(_ key: String) -> String? { data[key]?.stringValue }
        func model<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
            guard let value = data[key], !value.isNull else { return nil }
            do {
                return try JSONDecoder().decode(T.self, from: Data(WireJSON.encode(value)))
            } catch {
                throw ChatClientError.unexpectedResponse("the \(key) of a \(event.event ?? "") event")
            }
        }
        switch event.event {
        case "user_message": return string("id").map { .userMessage(id: $0) }
        case "assistant_message": return string("id").map { .assistantMessage(id: $0) }
        case "delta":
            guard let text = string("text") else { return nil }
            return string("type") == "reasoning" ? .reasoningDelta(text) : .textDelta(text)
        case "tool_call":
            return .toolCall(partID: string("partId") ?? "", callID: string("callId"), name: string("name"),
                             arguments: string("arguments") ?? "")
        case "tool_result":
            return .toolResult(partID: string("partId") ?? "", callID: string("callId"), name: string("name") ?? "",
                               result: data["result"] ?? .null)
        case "done":
            guard let message = try model(RemoteMessage.self, "message") else {
                throw ChatClientError.unexpectedResponse("a done event without its message")
            }
            return .done(message: message, usage: try model(RemoteUsage.self, "usage"), charge: try model(Charge.self, "charge"))
        case "error":
            let error = data["error"]
            return .failed(code: error?["code"]?.stringValue ?? "error", message: error?["message"]?.stringValue ?? "the reply failed",
                           reply: try model(RemoteMessage.self, "message"))
        default:
            return nil
        }
    }
}
