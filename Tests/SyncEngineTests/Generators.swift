import Testing
import TestSupport
@testable import SyncEngine

// Random generators for property tests. Every test draws its cases from one `SeededRandom`
// seeded with `SeededRandom.runSeed()`, and every failure message carries that seed and the
// case index, so `TEST_SEED=<seed> swift test --filter <test>` replays the failing run.

/// A property run: the seed and the generator for one test.
struct PropertyRun {
    let seed: UInt64
    var rng: SeededRandom

    init() {
        seed = SeededRandom.runSeed()
        rng = SeededRandom(seed: seed)
    }

    /// The text every failure message starts with.
    func context(_ index: Int) -> String {
        "seed \(seed) case \(index) (replay with TEST_SEED=\(seed))"
    }

    /// Runs `cases` cases; the body gets the generator and the failure context. Use `#require`
    /// inside, so the first failing case stops the run with its seed and index.
    mutating func forAll(
        _ cases: Int, _ body: (inout SeededRandom, String) throws -> Void
    ) throws {
        for index in 0..<cases {
            try body(&rng, context(index))
        }
    }
}

/// Small pools, so that equal stamps, equal readings and equal values happen often.
enum Pool {
    static let replicas: [ReplicaID] = [ReplicaID("a"), ReplicaID("b"), ReplicaID("c")]
    /// Replica ids chosen to exercise byte order: digits, `-`, `_`, upper case, prefixes.
    static let orderReplicas: [ReplicaID] = ["a", "ab", "b", "A", "Z", "_", "-", "0", "9z", "a-b", "a_b", "aa"]
        .map { ReplicaID($0) }
    static let texts: [String] = ["", "x", "hello", "héllo", "a/b", "line\nbreak", "q\"uote", "日本"]
    static let counterMapKeys: [String] = ["bash", "read", "edit", "web.fetch"]
    static let rowIDs: [String] = ["p1", "p2", "p3"]
}

extension SeededRandom {
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func int64(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &self) }
    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
    mutating func pick<T>(_ values: [T]) -> T { values[int(0...(values.count - 1))] }

    /// A random subset of `values`, each kept with probability `p`.
    mutating func subset<T>(_ values: [T], _ p: Double = 0.5) -> [T] { values.filter { _ in chance(p) } }

    /// A reading from a small range (so that equal readings are common).
    mutating func smallHLC() -> HLC {
        HLC(millis: int64(1...6), counter: UInt16(int(0...2)))
    }

    /// A reading from anywhere in the encodable range, biased towards the edges.
    mutating func anyHLC() -> HLC {
        switch int(0...5) {
        case 0: HLC(rawValue: UInt64(int(0...3)))
        case 1: HLC(rawValue: UInt64.max - UInt64(int(0...3)))
        case 2: HLC(millis: int64(0...HLC.maxMillis), counter: UInt16.max)
        default: HLC(rawValue: next())
        }
    }

    mutating func replica() -> ReplicaID { pick(Pool.replicas) }

    mutating func stamp() -> Stamp { Stamp(hlc: smallHLC(), replica: replica()) }

    /// A vector over the small replica pool, sometimes with missing entries.
    mutating func versionVector() -> VersionVector {
        var entries: [ReplicaID: HLC] = [:]
        for replica in Pool.replicas where chance(0.7) {
            entries[replica] = chance(0.1) ? .zero : smallHLC()
        }
        return VersionVector(entries)
    }

    mutating func counter(max: Int64 = 1_000) -> Counter {
        var contributions: [ReplicaID: Int64] = [:]
        for replica in Pool.replicas where chance(0.6) {
            contributions[replica] = int64(1...max)
        }
        return Counter(contributions)
    }

    /// A JSON number, normalized as decoding would make it.
    mutating func jsonNumber() -> JSONValue {
        switch int(0...3) {
        case 0: .int(int64(-3...3))
        case 1: .int(int64(Int64.min...Int64.max))
        case 2: .number(Double(int(-1_000...1_000)) / 8)
        default: .number(Double(int(1...9)) * 1e-7)
        }
    }

    mutating func json(depth: Int = 2) -> JSONValue {
        let scalarOnly = depth <= 0
        switch int(0...(scalarOnly ? 4 : 6)) {
        case 0: return .null
        case 1: return .bool(chance(0.5))
        case 2, 3: return jsonNumber()
        case 4: return .string(pick(Pool.texts))
        case 5: return .array((0..<int(0...3)).map { _ in json(depth: depth - 1) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<int(0...3) { object[pick(["k", "text", "n", "é", "a b"])] = json(depth: depth - 1) }
            return .object(object)
        }
    }

    /// A value valid for `column` (type, nullability, allowed values, size).
    mutating func value(for column: ColumnSchema, parentColumn: String?) -> JSONValue {
        if column.nullable, chance(0.15) { return .null }
        switch column.type {
        case .text:
            if let allowed = column.allowed { return .string(pick(allowed.sorted())) }
            if column.name == parentColumn { return .string(pick(Pool.rowIDs)) }
            return .string(pick(Pool.texts))
        case .int32:
            return .int(chance(0.1) ? pick([Int64(Int32.min), Int64(Int32.max)]) : int64(-5...5))
        case .int64:
            return .int(chance(0.1) ? pick([Int64.min, Int64.max]) : int64(-5...5))
        case .boolean:
            return .bool(chance(0.5))
        case .timestamp:
            return .int(chance(0.05) ? HLC.maxMillis : int64(0...6))
        case .json:
            var value = json()
            while !column.nullable, value.isNull { value = json() }
            return value
        }
    }

    /// A valid state (or change) of row `id` of `schema`: fields for a random subset of the
    /// stamped columns, counters (with map keys), sometimes a tombstone, and a vector holding
    /// every stamp it carries.
    mutating func rowChange(_ schema: TableSchema, id: String = "r1", tombstoneChance: Double = 0.15) -> RowChange {
        var vv = chance(0.3) ? versionVector() : .empty
        if chance(tombstoneChance) {
            let tombstone = stamp()
            vv.record(tombstone)
            return RowChange(table: schema.name, id: id, vv: vv, tombstone: tombstone)
        }
        var fields: [String: FieldValue] = [:]
        for column in subset(schema.fieldColumns) {
            let stamp = stamp()
            vv.record(stamp)
            fields[column.name] = FieldValue(value(for: column, parentColumn: schema.parent?.column), stamp: stamp)
        }
        var counters: [String: Counter] = [:]
        for column in schema.counterColumns {
            let max: Int64 = column.type == .int32 ? 1_000 : 1_000_000
            switch column.rule {
            case .counter:
                if chance(0.5) { counters[column.name] = counter(max: max) }
            default:
                for key in subset(Pool.counterMapKeys, 0.4) {
                    counters[CounterKey.make(column: column.name, key: key)] = counter(max: max)
                }
            }
        }
        return RowChange(table: schema.name, id: id, vv: vv, fields: fields, counters: counters)
    }
}

/// The time used to validate generated changes: far enough past every generated stamp.
let generousNow: Int64 = 1_000_000
