import Foundation

/// Writes JSON byte for byte as `WireJSON.encoder()` (Foundation, `.sortedKeys`,
/// `.withoutEscapingSlashes`) does, checked against it by `FastCodecTests`:
///
/// - object keys sorted by their UTF-8 bytes (Foundation's `.sortedKeys` order: code point
///   order, no normalization, upper case before lower case, `10` before `9`);
/// - strings escape `"`, `\`, and control characters: `\b \t \n \f \r` short, the others as
///   `\u00xx` with lower-case hex; `/`, DEL and everything non-ASCII are written as they are;
/// - integers in plain decimal; doubles as Swift's `description` without a trailing `.0`
///   (`0.1`, `1e-07`, `1.5e+300`, `-2.5`); a non-finite double is `unsupported` (Foundation
///   throws for it, so `WireJSON` lets Foundation report it).
struct FastJSONWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Appends ASCII text written in the source (punctuation and known keys).
    @inline(__always)
    mutating func raw(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func byte(_ byte: UInt8) { bytes.append(byte) }

    // MARK: Strings

    mutating func string(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                runStart = i + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                default:
                    let hex: StaticString = "0123456789abcdef"
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              hex.utf8Start[Int(byte >> 4)], hex.utf8Start[Int(byte & 0xF)]])
                }
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
            bytes.append(UInt8(ascii: "\""))
        }
    }

    /// Writes an `HLC` as its 16 lower-case hex digits, without quotes.
    mutating func hexDigits(_ value: UInt64) {
        let hex: StaticString = "0123456789abcdef"
        var shift = 60
        while shift >= 0 {
            bytes.append(hex.utf8Start[Int((value >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }

    /// Writes a string known to need no escaping (replica ids), with quotes.
    mutating func plainString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: string.utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    // MARK: Numbers

    mutating func int(_ value: Int64) {
        if (0..<10).contains(value) {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 bytes: room for 20 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var i = buffer.count
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i...]))
        }
    }

    mutating func double(_ value: Double) throws {
        guard value.isFinite else { throw FastJSONError.unsupported }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    // MARK: Objects

    /// Foundation's `.sortedKeys` order: the keys' UTF-8 bytes, compared lexicographically.
    static func keyPrecedes(_ lhs: String, _ rhs: String) -> Bool {
        var lhs = lhs, rhs = rhs
        return lhs.withUTF8 { l in
            rhs.withUTF8 { r in
                let common = min(l.count, r.count)
                let order = common == 0 ? 0 : memcmp(l.baseAddress!, r.baseAddress!, common)
                return order != 0 ? order < 0 : l.count < r.count
            }
        }
    }

    /// Writes `{"key":value,…}` with the keys in Foundation's order.
    mutating func object<Value>(_ object: [String: Value], _ write: (inout FastJSONWriter, Value) throws -> Void) rethrows {
        bytes.append(UInt8(ascii: "{"))
        switch object.count {
        case 0:
            break
        case 1:
            let (key, value) = object.first!
            string(key)
            bytes.append(UInt8(ascii: ":"))
            try write(&self, value)
        default:
            var first = true
            for (key, value) in object.sorted(by: { Self.keyPrecedes($0.key, $1.key) }) {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                string(key)
                bytes.append(UInt8(ascii: ":"))
                try write(&self, value)
            }
        }
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func array<Element>(_ array: [Element], _ write: (inout FastJSONWriter, Element) throws -> Void) rethrows {
        bytes.append(UInt8(ascii: "["))
        for (position, element) in array.enumerated() {
            if position > 0 { bytes.append(UInt8(ascii: ",")) }
            try write(&self, element)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    // MARK: Any value

    mutating func json(_ value: JSONValue) throws {
        switch value {
        case .null: raw("null")
        case .bool(let bool): bool ? raw("true") : raw("false")
        case .int(let int): self.int(int)
        case .double(let double): try self.double(double)
        case .string(let string): self.string(string)
        case .array(let array): try self.array(array) { try $0.json($1) }
        case .object(let object): try self.object(object) { try $0.json($1) }
        }
    }
}

extension JSONValue {
    /// How many bytes `WireJSON.encode(self)` writes, counted without writing them; nil for a
    /// non-finite number, which cannot be encoded. Validation checks every JSON column against
    /// its byte limit, on every change, so encoding just to count was a cost of its own.
    public var encodedByteCount: Int? { byteCount(refusingNUL: false) }

    /// `encodedByteCount`, in the same pass as the check for U+0000 (which PostgreSQL cannot
    /// store): also nil when a string or a key holds it. Validation needs both for every JSON
    /// column of every change.
    public var encodedByteCountWithoutNUL: Int? { byteCount(refusingNUL: true) }

    private func byteCount(refusingNUL: Bool) -> Int? {
        switch self {
        case .null: return 4
        case .bool(let bool): return bool ? 4 : 5
        case .int(let int):
            var count = int < 0 ? 2 : 1
            var magnitude = int.magnitude
            while magnitude >= 10 {
                magnitude /= 10
                count += 1
            }
            return count
        case .double(let double):
            guard double.isFinite else { return nil }
            let text = double.description
            return text.hasSuffix(".0") ? text.utf8.count - 2 : text.utf8.count
        case .string(let string): return Self.byteCount(string, refusingNUL: refusingNUL)
        case .array(let items):
            var count = 2 + max(items.count - 1, 0)
            for item in items {
                guard let itemCount = item.byteCount(refusingNUL: refusingNUL) else { return nil }
                count += itemCount
            }
            return count
        case .object(let members):
            var count = 2 + max(members.count - 1, 0)
            for (key, value) in members {
                guard let keyCount = Self.byteCount(key, refusingNUL: refusingNUL),
                      let valueCount = value.byteCount(refusingNUL: refusingNUL)
                else { return nil }
                count += keyCount + 1 + valueCount
            }
            return count
        }
    }

    /// A string's bytes with quotes and escapes, as `FastJSONWriter.string` writes them; nil
    /// when `refusingNUL` and the string holds U+0000.
    private static func byteCount(_ string: String, refusingNUL: Bool) -> Int? {
        var count = 2
        for byte in string.utf8 {
            switch byte {
            case 0 where refusingNUL: return nil
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x09, 0x0A, 0x0C, 0x0D: count += 2
            case ..<0x20: count += 6
            default: count += 1
            }
        }
        return count
    }
}
