import Foundation
import Testing
import TestSupport
@testable import SyncEngine

@Suite("HLC")
struct HLCTests {
    @Test func layoutPutsMillisHighAndCounterLow() {
        let hlc = HLC(millis: 1_700_000_000_000, counter: 7)
        #expect(hlc.rawValue == (1_700_000_000_000 << 16) | 7)
        #expect(hlc.millis == 1_700_000_000_000)
        #expect(hlc.counter == 7)
        #expect(hlc.description == "1700000000000.7")
    }

    @Test func constructorClampsMillisToFortyEightBits() {
        #expect(HLC(millis: -5).rawValue == 0)
        #expect(HLC(millis: Int64.max).millis == HLC.maxMillis)
        #expect(HLC(millis: HLC.maxMillis + 1, counter: 3) == HLC(millis: HLC.maxMillis, counter: 3))
    }

    @Test func textIsSixteenLowerCaseHexDigits() {
        #expect(HLC.zero.text == "0000000000000000")
        #expect(HLC(rawValue: 1).text == "0000000000000001")
        #expect(HLC(rawValue: UInt64.max).text == "ffffffffffffffff")
        #expect(HLC(millis: 1_700_000_000_000, counter: 1).text == "018bcfe568000001")
    }

    @Test func textRoundTripsAndSortsLikeTheNumber() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            let a = rng.anyHLC(), b = rng.anyHLC()
            try #require(a.text.utf8.count == 16, "\(ctx): \(a.text)")
            try #require(a.text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, "\(ctx): \(a.text)")
            try #require(HLC(text: a.text) == a, "\(ctx): \(a.text)")
            let textOrder = a.text.utf8.lexicographicallyPrecedes(b.text.utf8)
            try #require(textOrder == (a < b), "\(ctx): \(a.text) vs \(b.text)")
            try #require((a.text == b.text) == (a == b), "\(ctx)")
        }
    }

    @Test(arguments: [
        "", "0", "000000000000000", "00000000000000000", "000000000000000G", "0123456789ABCDEF",
        "+123456789abcdef", "-123456789abcdef", " 123456789abcdef", "0123456789abcde ", "0x23456789abcdef",
        "０１２３４５６７８９ａｂｃｄｅｆ", "0123456789abcdé",
    ])
    func textRejectsAnythingElse(text: String) {
        #expect(HLC(text: text) == nil)
    }

    @Test func textParsesSubstrings() {
        let text = "xx018bcfe568000001yy"
        let inner = text.dropFirst(2).dropLast(2)
        #expect(HLC(text: inner) == HLC(millis: 1_700_000_000_000, counter: 1))
    }

    @Test func codableRoundTripAndRejection() throws {
        let value = HLC(millis: 1_700_000_000_000, counter: 1)
        let json = try WireJSON.encodeString([value])
        #expect(json == #"["018bcfe568000001"]"#)
        #expect(try WireJSON.decode([HLC].self, from: json) == [value])
        for bad in [#"["018BCFE568000001"]"#, #"["18bcfe568000001"]"#, "[123]", "[null]", #"["zzzzzzzzzzzzzzzz"]"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try WireJSON.decode([HLC].self, from: bad) }
        }
    }

    // MARK: - The clock

    @Test func tickFollowsTheWallClockWhenItMovesForward() {
        var clock = HybridLogicalClock()
        #expect(clock.tick(wallMillis: 100) == HLC(millis: 100))
        #expect(clock.tick(wallMillis: 250) == HLC(millis: 250))
        #expect(clock.last == HLC(millis: 250))
    }

    @Test func tickCountsWithinAMillisecondAndWhenTheClockGoesBack() {
        var clock = HybridLogicalClock()
        #expect(clock.tick(wallMillis: 100) == HLC(millis: 100, counter: 0))
        #expect(clock.tick(wallMillis: 100) == HLC(millis: 100, counter: 1))
        #expect(clock.tick(wallMillis: 40) == HLC(millis: 100, counter: 2))
        #expect(clock.tick(wallMillis: -1) == HLC(millis: 100, counter: 3))
        #expect(clock.tick(wallMillis: 101) == HLC(millis: 101, counter: 0))
    }

    @Test func counterOverflowBorrowsTheNextMillisecond() {
        var clock = HybridLogicalClock(last: HLC(millis: 500, counter: UInt16.max - 1))
        #expect(clock.tick(wallMillis: 500) == HLC(millis: 500, counter: UInt16.max))
        #expect(clock.tick(wallMillis: 500) == HLC(millis: 501, counter: 0))
        #expect(clock.tick(wallMillis: 10) == HLC(millis: 501, counter: 1))
        // The wall clock catching up with a borrowed millisecond does not go back.
        #expect(clock.tick(wallMillis: 501) == HLC(millis: 501, counter: 2))
    }

    @Test func tickIsStrictlyIncreasingWhateverTheWallClockDoes() throws {
        var run = PropertyRun()
        try run.forAll(300) { rng, ctx in
            var clock = HybridLogicalClock(last: rng.chance(0.2) ? HLC(millis: rng.int64(0...1_000), counter: UInt16.max - 2) : .zero)
            var wall = rng.int64(0...1_000)
            var previous = clock.last
            for step in 0..<60 {
                switch rng.int(0...5) {
                case 0: wall -= rng.int64(0...5_000) // backwards
                case 1: break // equal
                case 2: wall += rng.int64(1_000...10_000_000) // jump
                default: wall += rng.int64(0...2)
                }
                let reading = clock.tick(wallMillis: wall)
                try #require(reading > previous, "\(ctx) step \(step): \(reading) after \(previous) at wall \(wall)")
                try #require(clock.last == reading, "\(ctx) step \(step)")
                try #require(reading.millis >= min(wall, HLC.maxMillis), "\(ctx) step \(step): reading behind the wall clock")
                previous = reading
            }
        }
    }

    @Test func observeThenTickExceedsTheObservedReading() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            var clock = HybridLogicalClock(last: HLC(millis: rng.int64(0...2_000), counter: UInt16(rng.int(0...Int(UInt16.max)))))
            let before = clock.last
            let remote = HLC(millis: rng.int64(0...2_000), counter: UInt16(rng.int(0...Int(UInt16.max))))
            clock.observe(remote)
            try #require(clock.last == max(before, remote), "\(ctx)")
            let reading = clock.tick(wallMillis: rng.int64(0...2_000))
            try #require(reading > remote && reading > before, "\(ctx): \(reading) vs \(remote), \(before)")
        }
    }

    /// A wall clock past what 48 bits hold (a broken device clock reading far in the future)
    /// must still give strictly increasing readings.
    @Test func tickStaysStrictlyIncreasingWhenTheWallClockIsBeyondTheEncodableRange() {
        var clock = HybridLogicalClock()
        let first = clock.tick(wallMillis: Int64.max)
        let second = clock.tick(wallMillis: Int64.max)
        #expect(second > first, "two ticks at wall clock Int64.max gave \(first) then \(second)")

        var nearTop = HybridLogicalClock(last: HLC(millis: HLC.maxMillis, counter: 5))
        let next = nearTop.tick(wallMillis: HLC.maxMillis + 1)
        #expect(next > HLC(millis: HLC.maxMillis, counter: 5), "tick after (max, 5) at wall max+1 gave \(next)")
    }
}
