import Foundation

/// Row ids and the wall clock the chat domain stamps its times with.
public enum ChatID {
    /// A new row id: a version 7 UUID (RFC 9562) in lower case, 48 bits of Unix milliseconds
    /// followed by 74 random bits. Ids made later sort after ids made earlier (to the
    /// millisecond), so new rows land at the right edge of every B-tree keyed by id, in SQLite
    /// and in PostgreSQL, instead of on a random page each (figure 1 in `docs/BENCHMARKS.md`).
    /// The random bits come from `getrandom` (`SystemRandomNumberGenerator`), not Foundation's
    /// `UUID()`, which on Linux opens, reads and closes `/dev/urandom` for every id.
    public static func make(atMillis millis: Millis = ChatClock.nowMillis()) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = (generator.next() as UInt64, generator.next() as UInt64)
        // time_high+time_mid (48 bits) | version 7 | rand_a (12 bits)
        let high = UInt64(UInt64(max(0, millis)) & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | random.0 & 0x0FFF
        // variant 0b10 | rand_b (62 bits)
        let low = random.1 & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            func put(_ word: UInt64, nibbles: ClosedRange<Int>) {
                for index in nibbles.reversed() {
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        buffer[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    buffer[position] = digits[Int((word >> UInt64(index * 4)) & 0xF)]
                    position += 1
                }
            }
            put(high, nibbles: 0...15)
            put(low, nibbles: 0...15)
            return position
        }
    }
}

/// The wall clock in the chat domain's unit.
public enum ChatClock {
    /// Milliseconds since 1970, rounded down.
    public static func nowMillis() -> Millis { Millis((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
}
