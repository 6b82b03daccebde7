import ChatAgent
import ChatModel
import ChatProvider
import Foundation
import LocalStore
import SyncEngine
import Testing
import TestSupport

/// A turn whose model calls workspace tools: every seed table is filled the way the reference
/// describes (steps, tool calls, tool results with durations, file and diff artifacts, tool
/// aggregates on the session).
@Suite("A chat turn runs tools and records their results and artifacts", .timeLimit(.minutes(1)))
struct ToolTurnTests {
    @Test("read_file and write_file: tool_call and tool_result parts per step, a file and a file_diff artifact, cumulative usage")
    func workspaceTools() async throws {
        let workspace = FileManager.default.temporaryDirectory.appendingPathComponent("ws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: workspace) }
        try Data("remember the milk\n".utf8).write(to: workspace.appendingPathComponent("notes.txt"))

        try await OpenAITestServer.withServer { server in
            let store = try ChatStore.inMemory()
            let session = try store.createSession(title: "t", agent: "chat-cli", provider: "test", model: "workspace", projectPath: workspace.path)
            let turn = ChatTurn(replies: LocalReplyStore(store: store), provider: ProviderClient(configuration: .init(baseURL: server.baseURL, model: "workspace")),
                                toolbox: WorkspaceTools(root: workspace))
            let outcome = try await turn.send(sessionID: session.id, text: "Write hello")
            #expect(outcome.error == nil)
            #expect(outcome.text == "Let me look.Wrote the file.")

            // The tool really ran.
            let written = try String(contentsOf: workspace.appendingPathComponent("out/hello.txt"), encoding: .utf8)
            #expect(written == "hello\nworld\n")
            // The second request carried the tool results back to the model.
            let request = try #require(server.lastRequest?.json)
            let sent = try #require(request["messages"] as? [[String: Any]])
            #expect(sent.compactMap { $0["role"] as? String } == ["user", "assistant", "tool", "tool"])
            #expect(sent[2]["content"] as? String == "remember the milk\n")
            #expect(sent[2]["tool_call_id"] as? String == "call_read")

            let reply = try #require(try store.messages(in: session.id).messages.last)
            #expect(reply.status == .complete)
            #expect(reply.parts.map(\.type) == [.text, .toolCall, .toolCall, .toolResult, .toolResult, .text])
            #expect(reply.parts.map(\.stepIndex) == [0, 0, 0, 0, 0, 1])
            #expect(reply.parts.map(\.index) == Array(0..<6))
            let results = reply.parts.filter { $0.type == .toolResult }
            #expect(results.map(\.toolName) == ["read_file", "write_file"])
            #expect(results.map(\.toolCallID) == ["call_read", "call_write"])
            #expect(results.allSatisfy { $0.toolDurationMs != nil && $0.startedAt != nil && $0.completedAt != nil })
            #expect(results[0].content["result"] == "remember the milk\n")
            #expect(results[1].content["args"]?["path"] == "out/hello.txt")

            let file = try #require(try store.artifact(partID: results[0].id))
            #expect(file.kind == "file")
            #expect(file.path == "notes.txt")
            #expect(file.size == 18)
            #expect(file.sha256?.count == 64)
            let diff = try #require(try store.artifact(partID: results[1].id))
            #expect(diff.kind == "file_diff")
            #expect(diff.mime == "text/x-diff")
            let patch = try #require(results[1].content["artifact"]?["patch"]?.stringValue)
            #expect(patch == "--- /dev/null\n+++ b/out/hello.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n")
            #expect(results[1].content["artifact"]?["summary"] == ["files": 1, "additions": 2, "deletions": 0])

            // Usage is the reply's cumulative usage over both steps; the session aggregates grew.
            #expect(reply.promptTokens == 80 && reply.completionTokens == 15 && reply.totalTokens == 95 && reply.cachedInputTokens == 10)
            let totals = try #require(try store.session(id: session.id))
            #expect(totals.totalInputTokens == 80)
            #expect(totals.toolCounts == ["read_file": 1, "write_file": 1])
            #expect(totals.totalToolTimeMs >= 0)
        }
    }

    @Test("a changed file gets a diff of its lines; paths outside the workspace are refused")
    func diffsAndSandbox() async throws {
        let workspace = FileManager.default.temporaryDirectory.appendingPathComponent("ws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: workspace) }
        let tools = WorkspaceTools(root: workspace)
        _ = await tools.run(name: "write_file", arguments: ["path": "a.txt", "content": "one\ntwo\nthree\n"])
        let changed = await tools.run(name: "write_file", arguments: ["path": "a.txt", "content": "one\n2\nthree\nfour\n"])
        #expect(changed.artifact?.content["patch"] == "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,4 @@\n one\n-two\n+2\n three\n+four\n")
        #expect(changed.artifact?.content["summary"] == ["files": 1, "additions": 2, "deletions": 1])

        for path in ["../escape.txt", "/etc/passwd", "sub/../../escape.txt"] {
            let refused = await tools.run(name: "write_file", arguments: ["path": .string(path), "content": "x"])
            #expect(refused.result["error"] != nil, "\(path) must be refused")
            #expect(refused.artifact == nil)
        }
        #expect(!FileManager.default.fileExists(atPath: workspace.deletingLastPathComponent().appendingPathComponent("escape.txt").path))
        let unknown = await tools.run(name: "rm", arguments: ["path": "a.txt"])
        #expect(unknown.result["error"] != nil)
    }
}
