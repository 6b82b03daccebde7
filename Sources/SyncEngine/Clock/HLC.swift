/// A hybrid logical clock reading: wall-clock milliseconds in the high 48 bits and a logical
/// counter in the low 16 bits, so that readings compare as plain integers.
///
/// On the wire an `HLC` is 16 lower-case hex digits. Fixed width makes the text form sort
/// exactly like the number, in Swift, in SQLite and in PostgreSQL (`COLLATE "C"`).
public struct HLC: RawRepresentable, Hashable, Comparable, Sendable {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Builds a reading; `millis` is clamped to the 48 bits the encoding has room for.
    public init(millis: Int64, counter: UInt16 = 0) {
        let clamped = UInt64(max(0, min(millis, HLC.maxMillis)))
        self.rawValue = clamped << 16 | UInt64(counter)
    }

    public static let zero = HLC(rawValue: 0)
    /// The largest wall-clock time the encoding can hold (year 10889).
    public static let maxMillis: Int64 = (1 << 48) - 1

    public var millis: Int64 { Int64(rawValue >> 16) }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (lhs: HLC, rhs: HLC) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The 16-hex-digit wire form.
    public var text: String {
        let hex = String(rawValue, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Parses the 16-hex-digit wire form; anything else is `nil`.
    public init?(text: some StringProtocol) {
        guard text.utf8.count == 16,
              text.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }),
              let value = UInt64(text, radix: 16)
        else { return nil }
        self.rawValue = value
    }
}

extension HLC: WireText {
    public init?(wireText: String) { self.init(text: wireText) }
    public var wireText: String { text }
    public static let expectation = "an HLC is 16 lower-case hex digits"

    public init(from decoder: any Decoder) throws { self = try Self.decodeWireText(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try encodeWireText(to: encoder) }
}

extension HLC: CustomStringConvertible {
    public var description: String { "\(millis).\(counter)" }
}

/// The clock a replica stamps its writes with (Kulkarni et al., "Logical Physical Clocks").
///
/// Time is passed in: `tick(wallMillis:)` takes the current wall clock, so tests and the
/// simulation drive it deterministically. Every reading is strictly greater than every reading
/// this clock produced or observed before, whatever the wall clock does.
public struct HybridLogicalClock: Sendable, Equatable {
    public private(set) var last: HLC

    public init(last: HLC = .zero) { self.last = last }

    /// A new reading for a local event.
    public mutating func tick(wallMillis: Int64) -> HLC {
        // A wall clock beyond what the encoding holds reads as its maximum.
        let wall = min(wallMillis, HLC.maxMillis)
        let next: HLC
        if wall > last.millis {
            next = HLC(millis: wall)
        } else if last.counter == UInt16.max, last.millis < HLC.maxMillis {
            // Counter exhausted within one millisecond: borrow the next millisecond.
            next = HLC(millis: last.millis + 1)
        } else {
            // At the very end of the range (year 10889) the counter saturates.
            next = HLC(millis: last.millis, counter: last.counter == UInt16.max ? last.counter : last.counter + 1)
        }
        last = next
        return next
    }

    /// Takes note of a reading received from another replica, so that every later local
    /// reading orders after it.
    public mutating func observe(_ remote: HLC) {
        if remote > last { last = remote }
    }
}
