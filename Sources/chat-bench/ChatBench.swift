import ArgumentParser
import ChatModel
import Foundation
import GRDB
import LocalStore
import SyncEngine

@main
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Measures the replica and the sync server against raw SQLite and raw PostgreSQL in the same run (issue 5).",
        discussion: "Run scripts/bench.sh [--quick] (release build, private PostgreSQL, chat-server). docs/BENCHMARKS.md explains each figure.")

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

    @Option(help: "Messages in the searched replica for figure 8 (default 100000; 10000 with --quick).")
    var searchMessages: Int?

    @Option(help: "Queries of each kind measured for figure 8.")
    var searchQueries = 200

    @Option(help: "Rows per pull page in the bootstrap figure.")
    var pageSize = 500

    @Option(help: "Where to write the JSON results.")
    var json = ".build/chat-bench-results.json"

    @Flag(help: "Keep the temporary database files.")
    var keepFiles = false

    @Option(help: "PostgreSQL for the server figures (2, 3 end to end, 4, 5, 7); without it they are skipped. scripts/bench.sh starts a private one.")
    var databaseURL: String?

    @Option(help: "The chat-server executable (default: the one next to chat-bench).")
    var serverBinary: String?

    @Flag(help: "Only the server figures.")
    var serverOnly = false

    @Flag(help: "Only the local figures (1, 6, 8 and the local half of 3).")
    var localOnly = false

    @Option(help: "Messages pushed for figure 2 and pulled back for figure 3 end to end (default 100000; 5000 with --quick).")
    var pushMessages: Int?

    @Option(help: "Changes per push for figure 2.")
    var pushBatch = 500

    @Option(help: "Rows of history for the small incremental-pull figure.")
    var historySmall = 10_000

    @Option(help: "Rows of history for the large incremental-pull figure (default 1000000; 100000 with --quick).")
    var historyLarge: Int?

    @Option(help: "Pulls measured per history size (default 500; 200 with --quick).")
    var pulls: Int?

    @Option(help: "Writes measured for live propagation, per device count (default 1000; 200 with --quick).")
    var liveWrites: Int?

    @Option(help: "Devices online in the larger live-propagation figure.")
    var devices = 100

    @Option(help: "Devices pushing at once for figure 7.")
    var concurrentDevices = 50

    @Option(help: "Messages each concurrent device pushes (default 200; 40 with --quick).")
    var concurrentMessages: Int?

    @Option(help: "Changes per push in figure 7.")
    var concurrentBatch = 100

    @Option(help: "Only these server figures, comma-separated (default 2,3,4,5,7).")
    var figures = "2,3,4,5,7"

    func run() async throws {
        let messages = self.messages ?? (quick ? 2_000 : 20_000)
        let writes = self.writes ?? (quick ? 1_000 : 5_000)
        let directory = try makeTempDirectory()
        defer { if !keepFiles { try? FileManager.default.removeItem(at: directory) } }
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

        let probe = try DatabaseQueue()
        let sqliteVersion = try await probe.read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") } ?? "?"
        let machine = Machine.current(sqliteVersion: sqliteVersion)
        #if DEBUG
        log("warning: a debug build; the figures mean little. Use swift run -c release chat-bench.")
        #endif
        log("chat-bench in \(directory.path)")

        let started = nowNanos()
        var figures: [Figure] = []
        var details: [String: Double] = [:]
        var notMeasured: [String] = ["1: batched writes through ChatStore (no batch API)"]
        if !serverOnly {
            try await runLocal(messages: messages, writes: writes, directory: directory, figures: &figures, details: &details, log: log)
        }
        var postgresVersion: String?
        if !localOnly {
            if let databaseURL {
                let options = ServerBenchOptions(
                    pushMessages: pushMessages ?? (quick ? 5_000 : 100_000), pushBatch: pushBatch, pageSize: pageSize,
                    historySmall: historySmall, historyLarge: historyLarge ?? (quick ? 100_000 : 1_000_000),
                    pulls: pulls ?? (quick ? 200 : 500), liveWrites: liveWrites ?? (quick ? 200 : 1_000), devices: devices,
                    concurrentDevices: concurrentDevices, concurrentMessages: concurrentMessages ?? (quick ? 40 : 200),
                    concurrentBatch: concurrentBatch, figures: Set(self.figures.split(separator: ",").compactMap { Int($0) }))
                let binary = serverBinary.map { URL(fileURLWithPath: $0) } ?? BenchServer.defaultBinary()
                let server = try await ServerBench.run(
                    options: options, databaseURL: databaseURL, serverBinary: binary, directory: directory, log: log)
                figures += server.figures
                details.merge(server.details) { $1 }
                postgresVersion = server.postgresVersion
            } else {
                log("no --database-url: the server figures (2, 3 end to end, 4, 5, 7) are skipped; scripts/bench.sh runs them")
                notMeasured += ["2, 3 (end to end), 4, 5, 7: no --database-url given"]
            }
        }
        let elapsed = Double(nowNanos() - started) / 1e9
        details["elapsedSeconds"] = elapsed
        figures = figures.enumerated().sorted { ($0.element.figure, $0.offset) < ($1.element.figure, $1.offset) }.map(\.element)
        var machineReport = machine
        machineReport.postgresVersion = postgresVersion

        let table = renderTable(figures)
        print(table)
        print("")
        print("Machine: \(machine.cores) cores\(machine.cpuModel.map { " (\($0))" } ?? ""), "
              + "\(machine.memoryTotalBytes.map { String(format: "%.1f GB", Double($0) / 1_073_741_824) } ?? "?") RAM, "
              + "SQLite \(machine.sqliteVersion), PostgreSQL \(postgresVersion ?? "not used"), \(machine.swiftVersion)")
        print(String(format: "Ran in %.1f s.", elapsed))

        let report = Report(
            generatedAt: ISO8601DateFormatter().string(from: Date()),
            command: CommandLine.arguments.joined(separator: " "),
            quick: quick,
            parameters: ["messages": messages, "writes": writes, "batch": batch, "deltas": deltas,
                         "throttleEvery": throttleEvery, "pageSize": pageSize],
            machine: machineReport, figures: figures, details: details, notMeasured: notMeasured)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let output = URL(fileURLWithPath: json)
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try encoder.encode(report).write(to: output)
        print("Wrote \(json)")
    }

    func runLocal(
        messages: Int, writes: Int, directory: URL, figures: inout [Figure], details: inout [String: Double], log: (String) -> Void
    ) async throws {
        log("figure 1: local write (\(writes) appends each side)")
        let write = try LocalWriteBench.run(writes: writes, batchSize: batch, directory: directory, log: log)
        log("figure 6: streaming reply (\(deltas) deltas)")
        let stream = try await StreamingReplyBench.run(deltaCount: deltas, throttleEvery: throttleEvery, directory: directory, log: log)
        log("figure 3: bootstrap apply (\(messages) messages)")
        let boot = try await BootstrapBench.run(
            messages: messages, messagesPerSession: 40, pageSize: pageSize, directory: directory, log: log)
        let searched = searchMessages ?? (quick ? 10_000 : 100_000)
        log("figure 8: search (\(searched) messages, \(searchQueries) queries of each kind)")
        let search = try await SearchBench.run(messages: searched, queries: searchQueries, directory: directory, log: log)
        for (kind, samples, hits) in [("rare word", search.rare, search.rareHits), ("common word", search.common, search.commonHits)] {
            for p in [50.0, 99.0] {
                let ours = samples.ours.percentile(p) * 1e3, raw = samples.raw.percentile(p) * 1e3
                figures.append(.cost(8, "Search", "\(search.messages) messages, \(kind), p\(Int(p))", unit: "ms", ours: ours, raw: raw,
                                     target: p == 99 ? "≤ 50 ms" : nil, met: p == 99 ? ours <= 50 : nil,
                                     note: p == 50 ? String(format: "%.1f parts returned per query (limit 20), ranked (BM25) with snippets", Double(hits) / Double(samples.ours.count)) : nil))
            }
        }
        details["search.textParts"] = Double(search.textParts)
        details["search.indexSeconds"] = search.indexSeconds

        let p50 = write.ours.percentile(50) * 1e6, rawP50 = write.raw.percentile(50) * 1e6
        let p99 = write.ours.percentile(99) * 1e6, rawP99 = write.raw.percentile(99) * 1e6
        figures.append(.cost(1, "Local write", "append p50", unit: "µs", ours: p50, raw: rawP50,
                             target: "≤ 1.5×", met: p50 / rawP50 <= 1.5))
        figures.append(.cost(1, "Local write", "append p99", unit: "µs", ours: p99, raw: rawP99,
                             target: "≤ 1.5×", met: p99 / rawP99 <= 1.5))
        figures.append(.rate(1, "Local write", "1 append/txn", unit: "writes/s", ours: write.oursThroughput, raw: write.rawThroughput))
        figures.append(.cost(1, "Local write", "WAL pages written per append", unit: "pages", ours: write.oursPagesPerWrite,
                             raw: write.rawPagesPerWrite, note: "4 KiB pages appended to the WAL; counted over 50 appends"))
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

        print(String(format: "Bootstrap (local): %d messages in %d sessions, %d rows, %d pages of %d (%.1f MB of JSON; decoding took %.2f s of %.2f s)",
                     boot.messages, boot.sessions, boot.rows, boot.pages, boot.pageSize, Double(boot.encodedBytes) / 1_048_576,
                     boot.decodeSeconds, boot.oursSeconds))
        print(String(format: "Streaming: %d deltas, %d bytes of text; %d rewrites every delta, %d throttled", stream.deltas,
                     stream.finalBytes, stream.everyDelta.rewrites, stream.throttled.rewrites))
        var local: [String: Double] = [:]
        local["write.ours.meanMicros"] = write.ours.mean * 1e6
        local["write.raw.meanMicros"] = write.raw.mean * 1e6
        local["stream.everyDelta.rewrites"] = Double(stream.everyDelta.rewrites)
        local["stream.throttled.rewrites"] = Double(stream.throttled.rewrites)
        local["stream.finalTextBytes"] = Double(stream.finalBytes)
        local["stream.throttled.perDeltaMicros"] = stream.throttled.seconds / Double(stream.deltas) * 1e6
        local["bootstrap.sessions"] = Double(boot.sessions)
        local["bootstrap.rows"] = Double(boot.rows)
        local["bootstrap.rowsChanged"] = Double(boot.applied)
        local["bootstrap.jsonBytes"] = Double(boot.encodedBytes)
        local["bootstrap.decodeSeconds"] = boot.decodeSeconds
        local["bootstrap.oursSeconds"] = boot.oursSeconds
        local["bootstrap.rawSeconds"] = boot.rawSeconds
        local["bootstrap.generateSeconds"] = boot.generateSeconds
        local["bootstrap.rssBeforeMB"] = boot.rssBeforeBytes.map { Double($0) / 1_048_576 } ?? -1
        local["bootstrap.peakWasReset"] = boot.peakWasReset ? 1 : 0
        details.merge(local) { $1 }
    }
}
