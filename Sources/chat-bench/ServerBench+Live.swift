import AsyncHTTPClient
import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import Logging
import PostgresNIO
import SyncEngine
import SyncServer

/// Figure 5, live propagation, in a file of its own.
extension ServerBench {
    /// Figure 5: a write on replica A until it is readable on replica B, which receives it over
    /// the live channel (a `changes` message, applied as it comes; a pull only after a gap). A
    /// writes, pushes, and waits for B before the next write. With 100 devices, 98 more live
    /// connections of the same user receive every message (they count it, and do not decode
    /// it). The raw baseline: INSERT + NOTIFY in PostgreSQL, LISTEN, then SELECT the row on
    /// another connection.
    static func liveFigure(
        _ options: ServerBenchOptions, _ context: Context, _ figures: inout [Figure], _ details: inout [String: Double]
    ) async throws {
        let raw = try await rawNotify(writes: options.liveWrites, context: context)
        context.log(String(format: "figure 5: raw INSERT+NOTIFY → LISTEN → SELECT p50 %.0f µs, p99 %.0f µs",
                           raw.percentile(50) * 1e6, raw.percentile(99) * 1e6))
        for devices in [1, options.devices] {
            let (ours, lost, messages) = try await livePropagation(writes: options.liveWrites, others: devices - 1, context: context)
            context.log(String(format: "  %d device(s): p50 %.2f ms, p99 %.2f ms, %d lost, %d messages to the other devices",
                               devices, ours.percentile(50) * 1e3, ours.percentile(99) * 1e3, lost, messages))
            figures.append(.cost(5, "Live propagation", "\(devices) device\(devices == 1 ? "" : "s") online, p50", unit: "ms",
                                 ours: ours.percentile(50) * 1e3, raw: raw.percentile(50) * 1e3))
            figures.append(.cost(5, "Live propagation", "\(devices) device\(devices == 1 ? "" : "s") online, p99", unit: "ms",
                                 ours: ours.percentile(99) * 1e3, raw: raw.percentile(99) * 1e3, target: "≤ 10 ms",
                                 met: ours.percentile(99) * 1e3 <= 10,
                                 note: "\(ours.count) writes; raw: INSERT + NOTIFY → LISTEN → SELECT in PostgreSQL"
                                     + (lost > 0 ? "; \(lost) not seen within 5 s" : "")
                                     + (devices > 1 ? "; \(messages) messages reached the \(devices - 1) other connections" : "")))
            details["live.\(devices).meanMillis"] = ours.mean * 1e3
            details["live.\(devices).lost"] = Double(lost)
        }
    }

    static func rawNotify(writes: Int, context: Context) async throws -> Samples {
        let arrivals = Arrivals()
        let client = context.client, logger = context.logger
        let channel = "bench_raw_live"
        let ready = Tally()
        // Unstructured on purpose: it ends on the "stop" payload, and nothing waits for it.
        let listener = Task {
            try await client.withConnection { connection in
                try await connection.listen(on: channel) { notifications in
                    ready.add()
                    for try await notification in notifications {
                        let id = notification.payload
                        if id == "stop" { return }
                        var found = false
                        for try await _ in try await client.query("SELECT body FROM raw_live WHERE id = \(id)", logger: logger)
                            .decode(String.self) { found = true }
                        if found { await arrivals.mark(id, at: nowNanos()) }
                    }
                }
            }
        }
        defer { listener.cancel() }
        let deadline = nowNanos() + 10_000_000_000
        while ready.value == 0 {
            guard nowNanos() < deadline else { throw BenchFailure("LISTEN did not start") }
            try await Task.sleep(for: .milliseconds(5))
        }
        try await Task.sleep(for: .milliseconds(50))
        var samples = Samples()
        let warmup = min(50, writes / 10)
        for index in 0..<(writes + warmup) {
            let id = "raw-\(index)-\(UUID().uuidString.prefix(8))"
            let t0 = nowNanos()
            try await client.query("""
                WITH row AS (INSERT INTO raw_live (id, owner_id, body) VALUES (\(id), 1, \("a user message of a few words")) RETURNING id)
                SELECT pg_notify(\(channel), id) FROM row
                """, logger: logger)
            guard let arrived = await arrivals.wait(id, timeout: .seconds(5)), arrived > 0 else { continue }
            if index >= warmup { samples.add(Double(arrived - t0) / 1e9) }
        }
        try await client.query("SELECT pg_notify(\(channel), 'stop')", logger: logger)
        return samples
    }

    static func livePropagation(writes: Int, others: Int, context: Context) async throws -> (Samples, Int, Int) {
        let (_, token) = try await context.user("bench-live")
        let a = try ChatStore.open(path: context.directory.appendingPathComponent("live-a-\(others).sqlite").path)
        let b = try ChatStore.open(path: context.directory.appendingPathComponent("live-b-\(others).sqlite").path)
        let transport = context.transport(token)
        let syncA = Synchronizer(storage: a, transport: transport)
        let syncB = Synchronizer(storage: b, transport: transport)
        let session = try a.createSession(title: "live", agent: "bench", provider: "openai", model: "gpt-bench", projectPath: "/p")
        _ = try await syncA.pushAll()
        _ = try await syncB.pullAll()
        let arrivals = Arrivals()
        let pullTimes = SampleBox()
        let connected = Tally(), messages = Tally(), pulls = Tally()
        let baseURL = context.server.baseURL
        var liveLogger = Logger(label: "live")
        liveLogger.logLevel = .critical
        let quietLogger = liveLogger
        // Unstructured on purpose: a WebSocket ends when the server closes it, and nothing
        // waits for that; they are cancelled at the end.
        var tasks: [Task<Void, Never>] = []
        defer { for task in tasks { task.cancel() } }
        // The other devices: connected, sent the changes, idle.
        for _ in 0..<others {
            tasks.append(Task {
                let channel = LiveChannel(baseURL: baseURL, token: token, logger: quietLogger)
                try? await channel.run(onConnected: { connected.add() }, onText: { _ in messages.add() })
            })
        }
        // Replica B: applies each message that continues from its cursor, pulls after any other
        // (as `LiveSyncDriver` does), then checks whether the awaited row is readable.
        let (events, continuation) = AsyncStream.makeStream(of: LiveMessage?.self, bufferingPolicy: .bufferingNewest(16))
        defer { continuation.finish() }
        tasks.append(Task {
            let channel = LiveChannel(baseURL: baseURL, token: token, logger: quietLogger)
            try? await channel.run(onConnected: { connected.add() }, onMessage: { continuation.yield($0) })
        })
        tasks.append(Task {
            for await message in events {
                do {
                    let t0 = nowNanos()
                    var outcome = Synchronizer<ChatStore, HTTPSyncTransport>.LiveOutcome.needsPull
                    if let message { outcome = try await syncB.applyLive(message) }
                    if outcome == .needsPull {
                        _ = try await syncB.pullAll()
                        pulls.add()
                    }
                    await pullTimes.add(Double(nowNanos() - t0) / 1e9)
                    if let id = await arrivals.expected, try b.message(id: id) != nil {
                        await arrivals.mark(id, at: nowNanos())
                    }
                } catch {
                    context.log("  replica B failed to apply or pull: \(error)")
                }
            }
        })
        let deadline = nowNanos() + 30_000_000_000
        while connected.value < others + 1 {
            guard nowNanos() < deadline else { throw BenchFailure("only \(connected.value) of \(others + 1) live connections opened") }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))
        let (messagesBefore, pullsBefore) = (messages.value, pulls.value)
        var samples = Samples(), writeTimes = Samples(), pushTimes = Samples()
        var lost = 0
        let warmup = min(50, writes / 10)
        for index in 0..<(writes + warmup) {
            let id = "live-\(others)-\(index)-\(UUID().uuidString.prefix(8).lowercased())"
            await arrivals.expect(id)
            let t0 = nowNanos()
            try a.appendUserMessage(sessionID: session.id, text: "live message \(index): a user message of a few words", id: id)
            let written = nowNanos()
            _ = try await syncA.pushAll()
            let pushed = nowNanos()
            if index >= warmup {
                writeTimes.add(Double(written - t0) / 1e9)
                pushTimes.add(Double(pushed - written) / 1e9)
            }
            guard let arrived = await arrivals.wait(id, timeout: .seconds(5)), arrived > 0 else {
                lost += 1
                continuation.yield(nil)
                continue
            }
            if index >= warmup { samples.add(Double(arrived - t0) / 1e9) }
        }
        context.log(String(format: "    of which: local write p50 %.2f ms, push (A's pushAll) p50 %.2f ms; B's apply (or pull) p50 %.2f ms, %d pulls",
                           writeTimes.percentile(50) * 1e3, pushTimes.percentile(50) * 1e3, await pullTimes.p50 * 1e3,
                           pulls.value - pullsBefore))
        return (samples, lost, messages.value - messagesBefore)
    }
}
