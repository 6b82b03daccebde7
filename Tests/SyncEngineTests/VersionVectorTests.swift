import Foundation
import Testing
import TestSupport
@testable import SyncEngine

@Suite("VersionVector")
struct VersionVectorTests {
    /// The causal order computed entry by entry, independently of `dominates`.
    static func expectedOrder(_ a: VersionVector, _ b: VersionVector) -> VersionVector.Ordering {
        var less = false, greater = false
        for replica in Set(a.entries.keys).union(b.entries.keys) {
            if a[replica] < b[replica] { less = true }
            if a[replica] > b[replica] { greater = true }
        }
        switch (less, greater) {
        case (false, false): return .equal
        case (true, false): return .before
        case (false, true): return .after
        case (true, true): return .concurrent
        }
    }

    @Test func mergeIsCommutativeAssociativeAndIdempotent() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            let a = rng.versionVector(), b = rng.versionVector(), c = rng.versionVector()
            try #require(a.merging(b) == b.merging(a), "\(ctx): commutative")
            try #require(a.merging(b).merging(c) == a.merging(b.merging(c)), "\(ctx): associative")
            try #require(a.merging(a) == a, "\(ctx): idempotent")
            try #require(a.merging(.empty) == a, "\(ctx): identity")
        }
    }

    @Test func dominatesIsAPartialOrderConsistentWithMerge() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            let a = rng.versionVector(), b = rng.versionVector(), c = rng.versionVector()
            let ab = a.merging(b)
            try #require(a.dominates(a), "\(ctx): reflexive")
            if a.dominates(b) && b.dominates(a) { try #require(a == b, "\(ctx): antisymmetric") }
            if a.dominates(b) && b.dominates(c) { try #require(a.dominates(c), "\(ctx): transitive") }
            try #require(ab.dominates(a) && ab.dominates(b), "\(ctx): the merge is an upper bound")
            // The least upper bound: anything above both is above the merge.
            if c.dominates(a) && c.dominates(b) { try #require(c.dominates(ab), "\(ctx): least upper bound") }
            try #require(a.dominates(b) == (ab == a), "\(ctx): a ≥ b iff a ∨ b = a")
            try #require(VersionVector.empty.dominates(a) == a.entries.isEmpty, "\(ctx)")
        }
    }

    @Test func compareMatchesTheEntryWiseOrder() throws {
        var run = PropertyRun()
        var seen: Set<String> = []
        try run.forAll(2_000) { rng, ctx in
            let a = rng.versionVector()
            let b = rng.chance(0.2) ? a : rng.versionVector()
            let expected = Self.expectedOrder(a, b)
            seen.insert("\(expected)")
            try #require(a.compare(b) == expected, "\(ctx): \(a.entries) vs \(b.entries)")
            let mirrored: VersionVector.Ordering = switch expected {
            case .before: .after
            case .after: .before
            default: expected
            }
            try #require(b.compare(a) == mirrored, "\(ctx)")
        }
        #expect(seen.count == 4, "the generator reached every ordering: \(seen)")
    }

    @Test func compareExamples() {
        let a = ReplicaID("a"), b = ReplicaID("b")
        let x = VersionVector([a: HLC(millis: 2)])
        let y = VersionVector([a: HLC(millis: 2), b: HLC(millis: 1)])
        let z = VersionVector([a: HLC(millis: 3)])
        #expect(x.compare(x) == .equal)
        #expect(x.compare(y) == .before)
        #expect(y.compare(x) == .after)
        #expect(y.compare(z) == .concurrent)
        #expect(VersionVector.empty.compare(x) == .before)
    }

    @Test func containsAfterRecord() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            var vv = rng.versionVector()
            let before = vv
            let stamp = rng.stamp()
            vv.record(stamp)
            try #require(vv.contains(stamp), "\(ctx)")
            try #require(vv.dominates(before), "\(ctx): recording never forgets")
            try #require(vv[stamp.replica] == max(before[stamp.replica], stamp.hlc), "\(ctx)")
            // Earlier writes of that replica are included; later ones are not.
            try #require(vv.contains(Stamp(hlc: .zero, replica: stamp.replica)), "\(ctx)")
            let later = Stamp(hlc: HLC(rawValue: vv[stamp.replica].rawValue + 1), replica: stamp.replica)
            try #require(!vv.contains(later), "\(ctx)")
            try #require(vv.maxHLC == vv.entries.values.max() ?? .zero, "\(ctx)")
        }
    }

    @Test func zeroEntriesAreDropped() throws {
        let a = ReplicaID("a")
        #expect(VersionVector([a: .zero]).entries.isEmpty)
        #expect(VersionVector([a: .zero]) == .empty)
        var vv = VersionVector.empty
        vv.record(Stamp(hlc: .zero, replica: a))
        #expect(vv.entries.isEmpty)
        vv.merge(VersionVector([a: .zero]))
        #expect(vv == .empty)
        let decoded = try WireJSON.decode(VersionVector.self, from: #"{"a":"0000000000000000"}"#)
        #expect(decoded == .empty && decoded.entries.isEmpty)
        #expect(VersionVector.empty.maxHLC == .zero)
    }

    @Test func codableRoundTrip() throws {
        var run = PropertyRun()
        try run.forAll(500) { rng, ctx in
            let vv = rng.versionVector()
            let text = try WireJSON.encodeString(vv)
            try #require(try WireJSON.decode(VersionVector.self, from: text) == vv, "\(ctx): \(text)")
        }
        let vv = VersionVector([ReplicaID("dev-b"): HLC(rawValue: 1), ReplicaID("dev-a"): HLC(millis: 1_700_000_000_000, counter: 1)])
        #expect(try WireJSON.encodeString(vv) == #"{"dev-a":"018bcfe568000001","dev-b":"0000000000000001"}"#)
    }

    @Test(arguments: [
        #"{"dev a":"0000000000000001"}"#, #"{"":"0000000000000001"}"#, #"{"a":"1"}"#, #"{"a":1}"#,
        #"{"a":"000000000000000A"}"#, #"["a"]"#, #"{"a":null}"#,
    ])
    func decodingRejectsMalformedVectors(json: String) {
        #expect(throws: DecodingError.self) { try WireJSON.decode(VersionVector.self, from: json) }
    }
}

@Suite("Counter")
struct CounterTests {
    static func merged(_ x: Counter, _ y: Counter) -> Counter {
        var copy = x
        copy.merge(y)
        return copy
    }

    @Test func mergeIsCommutativeAssociativeAndIdempotent() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            let a = rng.counter(), b = rng.counter(), c = rng.counter()
            try #require(Self.merged(a, b) == Self.merged(b, a), "\(ctx)")
            try #require(Self.merged(Self.merged(a, b), c) == Self.merged(a, Self.merged(b, c)), "\(ctx)")
            try #require(Self.merged(a, a) == a, "\(ctx)")
            for replica in Pool.replicas {
                try #require(Self.merged(a, b)[replica] == max(a[replica], b[replica]), "\(ctx): per-replica max")
            }
        }
    }

    @Test func concurrentAddsAreNeverLost() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            let base = rng.counter()
            var left = base, right = base
            var added: Int64 = 0
            for _ in 0..<rng.int(1...5) {
                let amount = rng.int64(0...50)
                let replica = rng.pick([ReplicaID("a"), ReplicaID("c")])
                left.add(amount, for: replica)
                added += amount
            }
            for _ in 0..<rng.int(1...5) {
                let amount = rng.int64(0...50)
                right.add(amount, for: ReplicaID("b"))
                added += amount
            }
            // Exchanging in either order, any number of times, counts every increment once.
            let once = Self.merged(left, right)
            try #require(once.total == base.total + added, "\(ctx)")
            try #require(Self.merged(once, left) == once && Self.merged(right, once) == once, "\(ctx): redelivery")
        }
    }

    @Test func addIgnoresNonPositiveAmounts() {
        var counter = Counter()
        counter.add(0, for: ReplicaID("a"))
        counter.add(-5, for: ReplicaID("a"))
        #expect(counter == Counter())
        #expect(counter.contributions.isEmpty)
        counter.add(3, for: ReplicaID("a"))
        counter.add(-3, for: ReplicaID("a"))
        counter.add(4, for: ReplicaID("a"))
        #expect(counter[ReplicaID("a")] == 7)
        #expect(counter.total == 7)
    }

    @Test func zeroContributionsAreDropped() {
        #expect(Counter([ReplicaID("a"): 0]) == Counter())
        #expect(Counter([ReplicaID("a"): 0, ReplicaID("b"): 2]).contributions == [ReplicaID("b"): 2])
    }

    @Test func codable() throws {
        let counter = Counter([ReplicaID("a"): 2, ReplicaID("b"): 40])
        let text = try WireJSON.encodeString(counter)
        #expect(text == #"{"a":2,"b":40}"#)
        #expect(try WireJSON.decode(Counter.self, from: text) == counter)
        #expect(throws: DecodingError.self) { try WireJSON.decode(Counter.self, from: #"{"a b":2}"#) }
        #expect(throws: DecodingError.self) { try WireJSON.decode(Counter.self, from: #"{"a":"2"}"#) }
        #expect(throws: DecodingError.self) { try WireJSON.decode(Counter.self, from: #"{"a":1.5}"#) }
    }
}
