import Foundation
import Testing
import TestSupport
@testable import SyncEngine

@Suite("Stamp and ReplicaID")
struct StampTests {
    @Test func textForm() {
        let stamp = Stamp(hlc: HLC(millis: 1_700_000_000_000, counter: 1), replica: ReplicaID("dev-a"))
        #expect(stamp.text == "018bcfe568000001@dev-a")
        #expect(stamp.description == stamp.text)
        #expect(Stamp(text: "018bcfe568000001@dev-a") == stamp)
    }

    @Test func textRoundTripsAndSortsLikeStamps() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            func draw(_ rng: inout SeededRandom) -> Stamp {
                Stamp(hlc: rng.chance(0.5) ? rng.smallHLC() : rng.anyHLC(), replica: rng.pick(Pool.orderReplicas))
            }
            let a = draw(&rng), b = draw(&rng)
            try #require(Stamp(text: a.text) == a, "\(ctx): \(a.text)")
            let textOrder = a.text.utf8.lexicographicallyPrecedes(b.text.utf8)
            try #require(textOrder == (a < b), "\(ctx): \(a.text) vs \(b.text)")
            try #require((a.text == b.text) == (a == b), "\(ctx): \(a.text) vs \(b.text)")
            // A total order: exactly one of <, ==, > holds.
            try #require([a < b, a == b, b < a].filter { $0 }.count == 1, "\(ctx): \(a.text) vs \(b.text)")
        }
    }

    @Test func ordersByHLCThenReplicaBytes() {
        let h1 = HLC(millis: 1), h2 = HLC(millis: 2)
        #expect(Stamp(hlc: h1, replica: ReplicaID("z")) < Stamp(hlc: h2, replica: ReplicaID("a")))
        #expect(Stamp(hlc: h1, replica: ReplicaID("B")) < Stamp(hlc: h1, replica: ReplicaID("a")))
        #expect(Stamp(hlc: h1, replica: ReplicaID("a")) < Stamp(hlc: h1, replica: ReplicaID("ab")))
        #expect(Stamp(hlc: h1, replica: ReplicaID("-")) < Stamp(hlc: h1, replica: ReplicaID("0")))
        #expect(Stamp(hlc: h1, replica: ReplicaID("Z")) < Stamp(hlc: h1, replica: ReplicaID("_")))
    }

    @Test(arguments: [
        "", "018bcfe568000001", "018bcfe568000001@", "@dev-a", "018bcfe56800001@dev-a",
        "018BCFE568000001@dev-a", "018bcfe568000001@dev a", "018bcfe568000001@dev@a", "018bcfe568000001#dev-a",
        "018bcfe568000001@dév", "018bcfe568000001@" + String(repeating: "x", count: 65), "x018bcfe568000001@a",
    ])
    func badTextIsRejected(text: String) {
        #expect(Stamp(text: text) == nil)
    }

    @Test func longestReplicaIsAccepted() {
        let replica = String(repeating: "x", count: 64)
        #expect(Stamp(text: "018bcfe568000001@" + replica)?.replica.rawValue == replica)
    }

    @Test func codable() throws {
        let stamp = Stamp(hlc: HLC(millis: 1_700_000_000_000, counter: 1), replica: ReplicaID("dev-a"))
        let json = try WireJSON.encodeString([stamp])
        #expect(json == #"["018bcfe568000001@dev-a"]"#)
        #expect(try WireJSON.decode([Stamp].self, from: json) == [stamp])
        for bad in [#"["018bcfe568000001"]"#, #"["018bcfe568000001@"]"#, "[1]", #"["018BCFE568000001@dev-a"]"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try WireJSON.decode([Stamp].self, from: bad) }
        }
    }

    // MARK: - ReplicaID

    @Test(arguments: ["a", "Z", "0", "_", "-", "dev-a_01", String(repeating: "x", count: 64),
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"])
    func validReplicaIDs(text: String) {
        #expect(ReplicaID.isValid(text))
        #expect(ReplicaID(rawValue: text)?.rawValue == text)
    }

    @Test(arguments: ["", String(repeating: "x", count: 65), "dev a", "dev@a", "dev.a", "dev/a", "é", "dev\u{0}",
                      "a\n", "ａ", "dev:a"])
    func invalidReplicaIDs(text: String) {
        #expect(!ReplicaID.isValid(text))
        #expect(ReplicaID(rawValue: text) == nil)
    }

    @Test func replicaIDCodable() throws {
        #expect(try WireJSON.encodeString([ReplicaID("dev-a")]) == #"["dev-a"]"#)
        #expect(try WireJSON.decode([ReplicaID].self, from: #"["dev-a"]"#) == [ReplicaID("dev-a")])
        #expect(throws: DecodingError.self) { try WireJSON.decode([ReplicaID].self, from: #"["dev a"]"#) }
        #expect(throws: DecodingError.self) { try WireJSON.decode([ReplicaID].self, from: #"[""]"#) }
    }

    @Test func replicaIDOrderIsByteWise() {
        let sorted = Pool.orderReplicas.sorted().map(\.rawValue)
        #expect(sorted == ["-", "0", "9z", "A", "Z", "_", "a", "a-b", "a_b", "aa", "ab", "b"])
    }
}
