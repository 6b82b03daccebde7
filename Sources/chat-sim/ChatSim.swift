import ArgumentParser
import Foundation
import Simulation

/// `chat-sim`: runs the deterministic sync simulation over many seeds, or replays one.
@main
struct ChatSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-sim",
        abstract: "Deterministic simulation of replicas syncing through the server, with faults.",
        discussion: "Replay a failure with --seed N. Run the long soak with: swift run -c release chat-sim --seeds 100000")

    @Option(help: "Replay this one seed, printing its report.") var seed: UInt64?
    @Option(help: "How many seeds to run, starting at --first.") var seeds = 1_000
    @Option(help: "The first seed.") var first: UInt64 = 1
    @Option(help: "Schedule steps per seed.") var steps = 120
    @Flag(help: "Keep replicas in files and reopen them on crashes.") var onDisk = false
    @Flag(help: "No live-channel messages: replays a seed as it ran before the channel carried changes.") var noLiveMessages = false

    func run() async throws {
        if let seed {
            // Same storage choice as the batch run, so a printed seed replays exactly.
            let report = await Simulation.run(seed: seed, options: .init(steps: steps, onDisk: onDisk || seed % 10 == 0, liveMessages: !noLiveMessages))
            print(report.summary)
            if !report.passed { throw ExitCode(1) }
            return
        }
        let start = Date()
        var failed: [UInt64] = []
        for seed in first..<(first + UInt64(seeds)) {
            let report = await Simulation.run(seed: seed, options: .init(steps: steps, onDisk: onDisk || seed % 10 == 0, liveMessages: !noLiveMessages))
            if !report.passed {
                failed.append(seed)
                print(report.summary)
            }
            if seed % 1_000 == 0 { print("… \(seed - first + 1) seeds, \(failed.count) failed, \(Int(Date().timeIntervalSince(start))) s") }
        }
        let elapsed = Date().timeIntervalSince(start)
        print("\(seeds) seeds from \(first) in \(String(format: "%.1f", elapsed)) s: \(seeds - failed.count) passed, \(failed.count) failed")
        if !failed.isEmpty {
            print("Replay with: swift run chat-sim --seed \(failed[0])")
            throw ExitCode(1)
        }
    }
}
