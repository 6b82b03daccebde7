import ChatModel
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTransport
import LocalStore
import SyncEngine
import Testing
import TestSupport

/// `GET /metrics` of a real `chat-server` process, after real traffic.
@Suite("End to end: Prometheus metrics", .timeLimit(.minutes(2)))
struct MetricsTests {
    /// The value of the sample `name{labels}` (labels as Prometheus prints them, in any order).
    static func sample(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2 else { continue }
            let series = parts[0]
            let seriesName = series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? ""
            guard seriesName == name else { continue }
            let labelText = series.contains("{") ? String(series.drop { $0 != "{" }.dropFirst().dropLast()) : ""
            let present = Set(labelText.split(separator: ",").map(String.init))
            guard labels.allSatisfy({ present.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            return Double(parts[1])
        }
        return nil
    }

    static func metrics(_ server: ServerProcess) async throws -> (String, String?) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "\(server.baseURL)/metrics")!)
        return (String(decoding: data, as: UTF8.self), (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Type"))
    }

    @Test("pushes, pulled rows, live connections, errors and per-route request counts and latencies are exported")
    func afterTraffic() async throws {
        try await withServer { server, client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "metrics")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = try ChatStore.open(path: directory.appendingPathComponent("a.sqlite").path)
            let session = try store.createSession(title: "m", agent: "a", provider: "p", model: "m", projectPath: "/")
            try store.appendUserMessage(sessionID: session.id, text: "one")
            try store.appendUserMessage(sessionID: session.id, text: "two")
            let sync = Synchronizer(storage: store, transport: HTTPSyncTransport(baseURL: server.baseURL, token: token))
            _ = try await sync.syncOnce(nowMillis: ChatStore.systemNow)
            let fresh = try ChatStore.open(path: directory.appendingPathComponent("b.sqlite").path)
            _ = try await Synchronizer(storage: fresh, transport: HTTPSyncTransport(baseURL: server.baseURL, token: token))
                .syncOnce(nowMillis: ChatStore.systemNow)
            var wrongToken = URLRequest(url: URL(string: "\(server.baseURL)/v1/me")!)
            wrongToken.setValue("Bearer cst_wrong", forHTTPHeaderField: "Authorization")
            let (_, refused) = try await URLSession.shared.data(for: wrongToken)
            #expect((refused as? HTTPURLResponse)?.statusCode == 401)

            let connected = Counter()
            let driver = LiveSyncDriver(storage: fresh, baseURL: server.baseURL, token: token, fallbackPull: .seconds(3_600)) {
                if case .connected = $0 { connected.increment() }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await driver.run() }
                try await waitUntil("the device is live") { connected.value >= 1 }
                let (text, contentType) = try await Self.metrics(server)
                #expect(contentType?.hasPrefix("text/plain; version=0.0.4") == true)
                #expect(Self.sample(text, "chat_live_connections") == 1)
                // 1 session + 2 messages + 2 parts pushed; the fresh device pulled them (and A its own).
                #expect(Self.sample(text, "chat_sync_pushed_changes_total") == 5)
                #expect(Self.sample(text, "chat_sync_applied_changes_total") == 5)
                #expect((Self.sample(text, "chat_sync_pulled_rows_total") ?? 0) >= 10)
                #expect(Self.sample(text, "chat_http_errors_total", ["status": "401", "code": "unauthorized"]) == 1)
                #expect(Self.sample(text, "hb_requests", ["http_route": "/v1/sync/push", "http_request_method": "POST",
                                                          "http_response_status_code": "200"]) == 1)
                #expect(Self.sample(text, "http_server_request_duration_count", ["http_route": "/v1/sync/pull"]) ?? 0 >= 2)
                #expect(Self.sample(text, "http_server_request_duration_bucket", ["http_route": "/v1/sync/push", "le": "+Inf"]) == 1)
                group.cancelAll()
            }
            var gone = false
            for _ in 0..<100 where !gone {
                gone = Self.sample(try await Self.metrics(server).0, "chat_live_connections") == 0
                if !gone { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(gone, "the live connection is counted until it closes")
        }
    }
}
