import Simulation
import Testing
import TestSupport

/// The deterministic simulation, as CI runs it: 1,000 seeds split in slices that run in
/// parallel. A failing seed is printed; `swift run chat-sim --seed N` replays it.
@Suite("Deterministic sync simulation")
struct SimulationTests {
    static let slices = 10
    static let seedsPerSlice = 100

    @Test("every seed converges, loses no write without a reason, and counts every increment once", arguments: 0..<slices)
    func seeds(slice: Int) async {
        let first = UInt64(slice * Self.seedsPerSlice + 1)
        for seed in first..<(first + UInt64(Self.seedsPerSlice)) {
            // One seed in ten keeps its replicas in files and reopens them on crashes.
            let report = await Simulation.run(seed: seed, options: .init(onDisk: seed % 10 == 0))
            #expect(report.passed, "\(report.summary)\nReplay: swift run chat-sim --seed \(seed)")
        }
    }

    @Test("a random seed, different on every run (printed, so a failure can be replayed)")
    func randomSeed() async {
        let seed = SeededRandom.runSeed()
        // The same storage rule as chat-sim, so the printed replay command reproduces it exactly.
        let report = await Simulation.run(seed: seed, options: .init(steps: 300, onDisk: seed % 10 == 0))
        print("simulation random seed: \(report.summary)")
        #expect(report.passed, "\(report.summary)\nReplay: swift run chat-sim --seed \(seed) --steps 300")
    }

    @Test("the same seed gives the same run")
    func deterministic() async {
        let first = await Simulation.run(seed: 42)
        let second = await Simulation.run(seed: 42)
        #expect(first.operations == second.operations)
        #expect(first.network == second.network)
        #expect(first.conflicts == second.conflicts)
        #expect(first.operations > 20)
    }
}
