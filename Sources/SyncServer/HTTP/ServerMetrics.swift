import Hummingbird
import Metrics
import Prometheus
import Synchronization

/// The server's metrics, through swift-metrics, exported by `GET /metrics` in the Prometheus
/// text format from one registry.
///
/// `chat-server serve` bootstraps the metrics system once per process (`bootstrap()`); code
/// that records metrics before that, or in-process tests that never call it, records into
/// swift-metrics' no-op backend. Names use `_` where swift-metrics labels use `.`, so
/// Hummingbird's `hb.requests` is exported as `hb_requests`.
public enum ServerMetrics {
    public static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    /// Makes the Prometheus registry the swift-metrics backend; later calls do nothing.
    public static func bootstrap() {
        bootstrapped.withLock { done in
            guard !done else { return }
            done = true
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.nameAndLabelSanitizer = { name, labels in
                (sanitize(name), labels.map { (sanitize($0.0), $0.1) })
            }
            factory.defaultDurationHistogramBuckets = [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
                .seconds(10), .seconds(30),
            ]
            MetricsSystem.bootstrap(factory)
        }
    }

    /// A Prometheus metric or label name: letters, digits and `_` (anything else becomes `_`).
    static func sanitize(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") ? $0 : "_" })
    }

    /// The text exposition of every metric.
    static func exposition() -> String { registry.emitToString() }

    // MARK: What the server records

    static func pushed(changes: Int, applied: Int, conflicts: Int) {
        Counter(label: "chat_sync_pushes_total").increment()
        Counter(label: "chat_sync_pushed_changes_total").increment(by: changes)
        Counter(label: "chat_sync_applied_changes_total").increment(by: applied)
        if conflicts > 0 { Counter(label: "chat_sync_conflicts_total").increment(by: conflicts) }
    }

    static func pulled(rows: Int) {
        Counter(label: "chat_sync_pulls_total").increment()
        Counter(label: "chat_sync_pulled_rows_total").increment(by: rows)
    }

    static let liveConnections = Meter(label: "chat_live_connections")
    static func liveConnected() { liveConnections.increment() }
    static func liveDisconnected() { liveConnections.decrement() }

    static func reply(status: String, model: String, usage: (prompt: Int64, completion: Int64)?) {
        Counter(label: "chat_replies_total", dimensions: [("status", status)]).increment()
        guard let usage else { return }
        Counter(label: "chat_reply_tokens_total", dimensions: [("kind", "prompt"), ("model", model)]).increment(by: Int(clamping: usage.prompt))
        Counter(label: "chat_reply_tokens_total", dimensions: [("kind", "completion"), ("model", model)]).increment(by: Int(clamping: usage.completion))
    }

    static func error(status: Int, code: String) {
        Counter(label: "chat_http_errors_total", dimensions: [("status", String(status)), ("code", code)]).increment()
    }

    /// `GET /metrics`, unauthenticated like Prometheus scrapes are; bind the server to a
    /// private address or filter the path at the proxy if the figures are sensitive.
    static func addRoute(to router: Router<AppRequestContext>) {
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: exposition())))
        }
    }
}
