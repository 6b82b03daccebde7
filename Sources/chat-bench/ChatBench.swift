import ArgumentParser
import Foundation
import GRDB
import LocalStore
import SyncEngine

@main
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Measures the replica against raw SQLite in the same run (local figures 1, 6 and the local half of 3).",
        discussion: "Run it in release: swift run -c release chat-bench [--quick]. docs/BENCHMARKS.md explains each figure.")

    @Flag(help: "Small sizes, so the run finishes in about a minute.")
    var quick = false

    @Option(help: "Messages in the bootstrap data set (default 20000; 2000 with --quick).")
    var messages: Int?

    @Option(help: "Single-write appends measured for figure 1, each side (default 5000; 1000 with --quick).")
    var writes: Int?

    @Option(help: "Appends per transaction for the batched raw figure.")
    var batch = 500

    @Option(help: "Deltas in the streamed reply (figure 6).")
    var deltas = 2_000

    @Option(help: "With throttled rewrites, rewrite the part every this many deltas (20 ≈ 100 ms at 200 deltas/s).")
    var throttleEvery = 20

    @Option(help: "Rows per pull page in the bootstrap figure.")
    var pageSize = 500

    @Option(help: "Where to write the JSON results.")
    var json = ".build/chat-bench-results.json"

    @Flag(help: "Keep the temporary database files.")
    var keepFiles = false

    func run() async throws {
        let messages = self.messages ?? (quick ? 2_000 : 20_000)
        let writes = self.writes ?? (quick ? 1_000 : 5_000)
        let directory = try makeTempDirectory()
        defer { if !keepFiles { try? FileManager.default.removeItem(at: directory) } }
        let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

        let probe = try DatabaseQueue()
        let sqliteVersion = try await probe.read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") } ?? "?"
        let machine = Machine.current(sqliteVersion: sqliteVersion)
        #if DEBUG
        log("warning: a debug build; the figures mean little. Use swift run -c release chat-bench.")
        #endif
        log("chat-bench in \(directory.path)")

        let started = nowNanos()
        log("figure 1: local write (\(writes) appends each side)")
        let write = try LocalWriteBench.run(writes: writes, batchSize: batch, directory: directory, log: log)
        log("figure 6: streaming reply (\(deltas) deltas)")
        let stream = try await StreamingReplyBench.run(deltaCount: deltas, throttleEvery: throttleEvery, directory: directory, log: log)
        log("figure 3: bootstrap apply (\(messages) messages)")
        let boot = try await BootstrapBench.run(
            messages: messages, messagesPerSession: 40, pageSize: pageSize, directory: directory, log: log)
        let elapsed = Double(nowNanos() - started) / 1e9

        var figures: [Figure] = []
        let p50 = write.ours.percentile(50) * 1e6, rawP50 = write.raw.percentile(50) * 1e6
        let p99 = write.ours.percentile(99) * 1e6, rawP99 = write.raw.percentile(99) * 1e6
        figures.append(.cost(1, "Local write", "append p50", unit: "µs", ours: p50, raw: rawP50,
                             target: "≤ 1.5×", met: p50 / rawP50 <= 1.5))
        figures.append(.cost(1, "Local write", "append p99", unit: "µs", ours: p99, raw: rawP99,
                             target: "≤ 1.5×", met: p99 / rawP99 <= 1.5))
        figures.append(.rate(1, "Local write", "1 append/txn", unit: "writes/s", ours: write.oursThroughput, raw: write.rawThroughput))
        figures.append(.rate(1, "Local write", "batched (\(write.batchSize)/txn)", unit: "writes/s", ours: nil, raw: write.rawBatchedThroughput,
                             note: "ChatStore exposes no batch API; each write method is one transaction"))

        let perDelta = stream.everyDelta.seconds / Double(stream.deltas) * 1e6
        let rawPerDelta = stream.rawSeconds / Double(stream.deltas - 1) * 1e6
        figures.append(.cost(6, "Streaming reply", "total, every delta", unit: "ms", ours: stream.everyDelta.seconds * 1e3,
                             raw: stream.rawSeconds * 1e3))
        figures.append(.cost(6, "Streaming reply", "per delta, every delta", unit: "µs", ours: perDelta, raw: rawPerDelta))
        figures.append(.cost(6, "Streaming reply", "total, every \(stream.throttleEvery) deltas", unit: "ms",
                             ours: stream.throttled.seconds * 1e3, raw: stream.rawSeconds * 1e3,
                             note: "raw baseline still rewrites on every delta"))
        figures.append(.cost(6, "Streaming reply", "changes pushed, every delta", unit: "changes",
                             ours: Double(stream.everyDelta.replyChanges), raw: nil, target: "≤ 3",
                             met: stream.everyDelta.replyChanges <= 3,
                             note: "\(stream.everyDelta.totalChanges) in the push including the session row"))
        figures.append(.cost(6, "Streaming reply", "changes pushed, every \(stream.throttleEvery) deltas", unit: "changes",
                             ours: Double(stream.throttled.replyChanges), raw: nil, target: "≤ 3",
                             met: stream.throttled.replyChanges <= 3,
                             note: "\(stream.throttled.totalChanges) in the push including the session row"))

        let oursRate = Double(boot.rows) / boot.oursSeconds, rawRate = Double(boot.rows) / boot.rawSeconds
        figures.append(.rate(3, "Bootstrap (local)", "apply \(boot.rows) rows", unit: "rows/s", ours: oursRate, raw: rawRate,
                             target: "≥ 50 % of raw (≤ 2×)", met: oursRate >= rawRate / 2))
        let peakMB = boot.peakBytes.map { Double($0) / 1_048_576 }
        let growthMB: Double? = if let peak = boot.peakBytes, let before = boot.rssBeforeBytes { Double(peak - before) / 1_048_576 } else { nil }
        figures.append(.cost(3, "Bootstrap (local)", "peak RSS growth while applying", unit: "MB", ours: growthMB, raw: nil,
                             target: "< 200 MB at 1M rows",
                             note: peakMB.map { String(format: "process peak %.1f MB, including the generated data set and its encoded pages held by the benchmark", $0) }
                                 .map { $0 + (boot.peakWasReset ? "" : "; VmHWM could not be reset, so the growth is peak minus RSS before") }))

        let table = renderTable(figures)
        print(table)
        print("")
        print("Machine: \(machine.cores) cores\(machine.cpuModel.map { " (\($0))" } ?? ""), "
              + "\(machine.memoryTotalBytes.map { String(format: "%.1f GB", Double($0) / 1_073_741_824) } ?? "?") RAM, "
              + "SQLite \(machine.sqliteVersion), \(machine.swiftVersion)")
        print(String(format: "Bootstrap: %d messages in %d sessions, %d rows, %d pages of %d (%.1f MB of JSON; decoding took %.2f s of %.2f s)",
                     boot.messages, boot.sessions, boot.rows, boot.pages, boot.pageSize, Double(boot.encodedBytes) / 1_048_576,
                     boot.decodeSeconds, boot.oursSeconds))
        print(String(format: "Streaming: %d deltas, %d bytes of text; %d rewrites every delta, %d throttled", stream.deltas,
                     stream.finalBytes, stream.everyDelta.rewrites, stream.throttled.rewrites))
        print(String(format: "Ran in %.1f s.", elapsed))

        let report = Report(
            generatedAt: ISO8601DateFormatter().string(from: Date()),
            command: CommandLine.arguments.joined(separator: " "),
            quick: quick,
            parameters: ["messages": messages, "writes": writes, "batch": batch, "deltas": deltas,
                         "throttleEvery": throttleEvery, "pageSize": pageSize],
            machine: machine, figures: figures,
            details: [
                "write.ours.meanMicros": write.ours.mean * 1e6, "write.raw.meanMicros": write.raw.mean * 1e6,
                "stream.everyDelta.rewrites": Double(stream.everyDelta.rewrites),
                "stream.throttled.rewrites": Double(stream.throttled.rewrites),
                "stream.finalTextBytes": Double(stream.finalBytes),
                "stream.throttled.perDeltaMicros": stream.throttled.seconds / Double(stream.deltas) * 1e6,
                "bootstrap.sessions": Double(boot.sessions), "bootstrap.rows": Double(boot.rows),
                "bootstrap.rowsChanged": Double(boot.applied),
                "bootstrap.jsonBytes": Double(boot.encodedBytes), "bootstrap.decodeSeconds": boot.decodeSeconds,
                "bootstrap.oursSeconds": boot.oursSeconds, "bootstrap.rawSeconds": boot.rawSeconds,
                "bootstrap.generateSeconds": boot.generateSeconds,
                "bootstrap.rssBeforeMB": boot.rssBeforeBytes.map { Double($0) / 1_048_576 } ?? -1,
                "bootstrap.peakWasReset": boot.peakWasReset ? 1 : 0,
                "elapsedSeconds": elapsed,
            ],
            notMeasured: [
                "2: push ingest (needs the server and Postgres)",
                "3: the server-side half of bootstrap (pulling pages over HTTP from Postgres)",
                "4: incremental pull at 10k and 1M rows of history",
                "5: live propagation over the WebSocket channel",
                "7: concurrent pushes from 50 devices",
                "1: batched writes through ChatStore (no batch API)",
            ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let output = URL(fileURLWithPath: json)
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try encoder.encode(report).write(to: output)
        print("Wrote \(json)")
    }
}
