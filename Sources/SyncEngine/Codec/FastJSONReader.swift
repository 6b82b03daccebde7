import Foundation

/// A strict RFC 8259 pull parser over UTF-8 bytes, with the acceptance of Foundation's
/// `JSONDecoder` for the sync types (checked against it by `FastCodecTests`):
///
/// - whitespace is space, tab, LF and CR; a UTF-8 byte-order mark may lead; nothing may
///   trail but whitespace;
/// - one trailing comma before `]` or `}` is accepted, as Foundation does (`[1,]`), but not an
///   empty member (`[,]`, `[1,,]`);
/// - strings must be valid UTF-8 without raw control characters; escapes are the JSON ones,
///   `\u` takes upper- or lower-case hex, and a surrogate escape must be half of a pair;
/// - numbers follow the JSON grammar (no `+1`, `01`, `1.`, `.5`, `NaN`);
/// - objects and arrays nest at most 512 deep;
/// - for a key that occurs twice the first occurrence wins, and the others are not decoded.
///
/// It is stricter than Foundation in one way: Foundation never looks inside values it does
/// not decode (unknown keys, repeated keys), so it accepts, say, a bad escape there; this
/// parser rejects it, and `WireJSON` then hands the input to Foundation. Input in UTF-16 or
/// UTF-32 (which Foundation detects) goes the same way.
///
/// The reader only lives inside a `withUnsafeBytes`-style closure: it holds the buffer's
/// pointer.
struct FastJSONReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private(set) var index = 0
    private var depth = 0

    /// Foundation's limit: 512 nested arrays parse, 513 do not.
    static let maxDepth = 512

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    // MARK: Document

    /// Reads one document: `body` reads the value, after which only whitespace may follow.
    mutating func readDocument<T>(_ body: (inout FastJSONReader) throws -> T) throws -> T {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
        let value = try body(&self)
        skipWhitespace()
        guard index == bytes.count else { throw FastJSONError.syntax }
        return value
    }

    // MARK: Paths

    /// Runs `body`, adding `key` to the path of an error it throws.
    @inline(__always)
    mutating func at<T>(_ key: StaticString, _ body: (inout FastJSONReader) throws -> T) throws -> T {
        do {
            return try body(&self)
        } catch var error as FastJSONError {
            error.reversedPath.append(FastCodingKey("\(key)"))
            throw error
        }
    }

    @inline(__always)
    mutating func at<T>(_ key: String, _ body: (inout FastJSONReader) throws -> T) throws -> T {
        do {
            return try body(&self)
        } catch var error as FastJSONError {
            error.reversedPath.append(FastCodingKey(key))
            throw error
        }
    }

    @inline(__always)
    mutating func at<T>(index position: Int, _ body: (inout FastJSONReader) throws -> T) throws -> T {
        do {
            return try body(&self)
        } catch var error as FastJSONError {
            error.reversedPath.append(FastCodingKey(index: position))
            throw error
        }
    }

    // MARK: Tokens

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// The next significant byte (skipping whitespace), or nil at the end.
    @inline(__always)
    mutating func peek() -> UInt8? {
        skipWhitespace()
        return index < bytes.count ? bytes[index] : nil
    }

    @inline(__always)
    private func hasLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return memcmp(bytes.baseAddress! + index, literal.utf8Start, count) == 0
    }

    /// Consumes `null` if it comes next.
    @inline(__always)
    mutating func consumeNull() -> Bool {
        guard peek() == UInt8(ascii: "n"), hasLiteral("null") else { return false }
        index += 4
        return true
    }

    /// The error for a value that is not the `expected` kind: `null` is `valueNotFound`, any
    /// other value `typeMismatch`, anything else a syntax error.
    mutating func mismatch(_ expected: FastJSONError.Expected) -> FastJSONError {
        guard let byte = peek() else { return .syntax }
        switch byte {
        case UInt8(ascii: "n"): return hasLiteral("null") ? FastJSONError(.valueNotFound(expected)) : .syntax
        case UInt8(ascii: "t"): return hasLiteral("true") ? FastJSONError(.typeMismatch(expected)) : .syntax
        case UInt8(ascii: "f"): return hasLiteral("false") ? FastJSONError(.typeMismatch(expected)) : .syntax
        case UInt8(ascii: "\""), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return FastJSONError(.typeMismatch(expected))
        default: return .syntax
        }
    }

    // MARK: Objects and arrays

    /// Consumes the `{` of an object (or throws the mismatch for `expected`).
    @inline(__always)
    mutating func beginObject(_ expected: FastJSONError.Expected = .object) throws {
        guard peek() == UInt8(ascii: "{") else { throw mismatch(expected) }
        index += 1
        depth += 1
        guard depth <= Self.maxDepth else { throw FastJSONError.syntax }
    }

    /// Consumes the `[` of an array (or throws the mismatch for `expected`).
    @inline(__always)
    mutating func beginArray(_ expected: FastJSONError.Expected = .array) throws {
        guard peek() == UInt8(ascii: "[") else { throw mismatch(expected) }
        index += 1
        depth += 1
        guard depth <= Self.maxDepth else { throw FastJSONError.syntax }
    }

    /// Moves to the next member of the object begun with `beginObject`: returns its key with
    /// the reader at the value, or nil after consuming the closing `}`. `first` starts true.
    mutating func nextKey(_ first: inout Bool) throws -> StringToken? {
        guard var byte = peek() else { throw FastJSONError.syntax }
        if first {
            first = false
        } else if byte == UInt8(ascii: ",") {
            index += 1
            guard let next = peek() else { throw FastJSONError.syntax }
            byte = next
            if byte == UInt8(ascii: "}") { // a trailing comma, which Foundation accepts
                index += 1
                depth -= 1
                return nil
            }
            guard byte == UInt8(ascii: "\"") else { throw FastJSONError.syntax }
        } else if byte != UInt8(ascii: "}") {
            throw FastJSONError.syntax
        }
        if byte == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return nil
        }
        guard byte == UInt8(ascii: "\"") else { throw FastJSONError.syntax }
        let key = try scanString()
        guard peek() == UInt8(ascii: ":") else { throw FastJSONError.syntax }
        index += 1
        return key
    }

    /// Moves to the next element of the array begun with `beginArray`: true with the reader at
    /// the element, or false after consuming the closing `]`. `first` starts true.
    mutating func nextElement(_ first: inout Bool) throws -> Bool {
        guard let byte = peek() else { throw FastJSONError.syntax }
        if first {
            first = false
            if byte == UInt8(ascii: "]") {
                index += 1
                depth -= 1
                return false
            }
            return true
        }
        if byte == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return false
        }
        guard byte == UInt8(ascii: ",") else { throw FastJSONError.syntax }
        index += 1
        guard let next = peek() else { throw FastJSONError.syntax }
        if next == UInt8(ascii: "]") { // a trailing comma, which Foundation accepts
            index += 1
            depth -= 1
            return false
        }
        return true
    }

    /// Whether the key is exactly `name` (after unescaping).
    @inline(__always)
    func key(_ key: StringToken, is name: StaticString) -> Bool {
        if key.hasEscapes { return string(key) == "\(name)" }
        let count = name.utf8CodeUnitCount
        return key.end - key.start == count && memcmp(bytes.baseAddress! + key.start, name.utf8Start, count) == 0
    }

    // MARK: Strings

    /// A scanned (and validated) string: its bytes between the quotes.
    struct StringToken {
        var start: Int
        var end: Int
        var hasEscapes: Bool
    }

    /// Reads a string (or throws the mismatch for `expected`).
    @inline(__always)
    mutating func readString(_ expected: FastJSONError.Expected = .string) throws -> String {
        string(try readStringToken(expected))
    }

    /// Scans a string value without building it.
    @inline(__always)
    mutating func readStringToken(_ expected: FastJSONError.Expected = .string) throws -> StringToken {
        guard peek() == UInt8(ascii: "\"") else { throw mismatch(expected) }
        return try scanString()
    }

    /// The raw bytes of a token without escapes.
    func rawBytes(_ token: StringToken) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[token.start..<token.end])
    }

    /// Builds the string of a scanned token.
    func string(_ token: StringToken) -> String {
        let raw = rawBytes(token)
        guard token.hasEscapes else { return String(decoding: raw, as: UTF8.self) }
        // Unescaping never lengthens: `\n` is 2 bytes for 1, `\uXXXX` 6 for at most 3, a
        // surrogate pair 12 for 4.
        return String(unsafeUninitializedCapacity: raw.count) { out in
            var o = 0
            var i = 0
            while i < raw.count {
                let byte = raw[i]
                guard byte == UInt8(ascii: "\\") else {
                    out[o] = byte
                    o += 1
                    i += 1
                    continue
                }
                let escaped = raw[i + 1]
                i += 2
                switch escaped {
                case UInt8(ascii: "b"): out[o] = 0x08
                case UInt8(ascii: "f"): out[o] = 0x0C
                case UInt8(ascii: "n"): out[o] = 0x0A
                case UInt8(ascii: "r"): out[o] = 0x0D
                case UInt8(ascii: "t"): out[o] = 0x09
                case UInt8(ascii: "u"):
                    var scalar = UInt32(Self.hex4(raw, i)!)
                    i += 4
                    if (0xD800...0xDBFF).contains(scalar) {
                        let low = UInt32(Self.hex4(raw, i + 2)!)
                        i += 6
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    o += Self.encodeUTF8(scalar, into: out, at: o)
                    continue
                default: out[o] = escaped // `"`, `\`, `/`
                }
                o += 1
            }
            return o
        }
    }

    /// Scans a string from its opening quote, validating escapes and UTF-8.
    mutating func scanString() throws -> StringToken {
        index += 1
        let start = index
        var hasEscapes = false
        while true {
            guard index < bytes.count else { throw FastJSONError.syntax }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                defer { index += 1 }
                return StringToken(start: start, end: index, hasEscapes: hasEscapes)
            } else if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                try scanEscape()
            } else if byte < 0x20 {
                throw FastJSONError.syntax
            } else if byte < 0x80 {
                index += 1
            } else {
                try scanUTF8Sequence()
            }
        }
    }

    private mutating func scanEscape() throws {
        guard index + 1 < bytes.count else { throw FastJSONError.syntax }
        switch bytes[index + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 2
        case UInt8(ascii: "u"):
            guard let unit = Self.hex4(bytes, index + 2) else { throw FastJSONError.syntax }
            index += 6
            if (0xD800...0xDBFF).contains(unit) {
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u"),
                      let low = Self.hex4(bytes, index + 2), (0xDC00...0xDFFF).contains(low)
                else { throw FastJSONError.syntax }
                index += 6
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw FastJSONError.syntax
            }
        default:
            throw FastJSONError.syntax
        }
    }

    /// Validates one multi-byte UTF-8 sequence (no overlong forms, no surrogates, nothing past
    /// U+10FFFF) and moves past it.
    private mutating func scanUTF8Sequence() throws {
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw FastJSONError.syntax
        }
        guard index + length <= bytes.count, secondRange.contains(bytes[index + 1]) else { throw FastJSONError.syntax }
        for offset in 2..<length where !(0x80...0xBF).contains(bytes[index + offset]) {
            throw FastJSONError.syntax
        }
        index += length
    }

    private static func hex4(_ buffer: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt16? {
        guard at + 4 <= buffer.count else { return nil }
        var value: UInt16 = 0
        for offset in 0..<4 {
            let byte = buffer[at + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    private static func encodeUTF8(_ scalar: UInt32, into out: UnsafeMutableBufferPointer<UInt8>, at o: Int) -> Int {
        switch scalar {
        case 0..<0x80:
            out[o] = UInt8(scalar)
            return 1
        case 0x80..<0x800:
            out[o] = 0xC0 | UInt8(scalar >> 6)
            out[o + 1] = 0x80 | UInt8(scalar & 0x3F)
            return 2
        case 0x800..<0x10000:
            out[o] = 0xE0 | UInt8(scalar >> 12)
            out[o + 1] = 0x80 | UInt8((scalar >> 6) & 0x3F)
            out[o + 2] = 0x80 | UInt8(scalar & 0x3F)
            return 3
        default:
            out[o] = 0xF0 | UInt8(scalar >> 18)
            out[o + 1] = 0x80 | UInt8((scalar >> 12) & 0x3F)
            out[o + 2] = 0x80 | UInt8((scalar >> 6) & 0x3F)
            out[o + 3] = 0x80 | UInt8(scalar & 0x3F)
            return 4
        }
    }

    // MARK: Scalars

    /// Reads `true` or `false` (or throws the mismatch for `.bool`).
    mutating func readBool() throws -> Bool {
        switch peek() {
        case UInt8(ascii: "t") where hasLiteral("true"):
            index += 4
            return true
        case UInt8(ascii: "f") where hasLiteral("false"):
            index += 5
            return false
        default:
            throw mismatch(.bool)
        }
    }

    /// A scanned number: its bytes, and whether it is a plain integer (no fraction, no
    /// exponent).
    private struct NumberToken {
        var start: Int
        var end: Int
        var isPlainInteger: Bool
    }

    private mutating func scanNumber() throws -> NumberToken {
        let start = index
        @inline(__always) func isDigit(_ i: Int) -> Bool {
            i < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i])
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { throw FastJSONError.syntax }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while isDigit(index) { index += 1 }
        }
        var plain = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            plain = false
            index += 1
            guard isDigit(index) else { throw FastJSONError.syntax }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            plain = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw FastJSONError.syntax }
            while isDigit(index) { index += 1 }
        }
        return NumberToken(start: start, end: index, isPlainInteger: plain)
    }

    /// A plain integer's value, or nil when it does not fit in 64 bits.
    private func plainInt64(_ token: NumberToken) -> Int64? {
        var i = token.start
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var magnitude: UInt64 = 0
        while i < token.end {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[i] - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            magnitude = sum
            i += 1
        }
        if negative {
            if magnitude <= UInt64(Int64.max) { return -Int64(magnitude) }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    private func double(_ token: NumberToken) -> Double? {
        Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[token.start..<token.end]), as: UTF8.self))
    }

    /// 2^53: below it every integer is a Double, and Foundation converts a Double it parsed to an
    /// integer directly; from it on Foundation goes through `Decimal` instead.
    private static let exactIntegerLimit: Double = 9_007_199_254_740_992

    /// How Foundation reads a number as `Int64`: `.some(value)`, nil when it does not (the
    /// number is not integral or out of range); `unsupported` where Foundation's answer
    /// depends on its `Decimal` parsing.
    private func foundationInt64(_ token: NumberToken) throws -> Int64? {
        if token.isPlainInteger, let value = plainInt64(token) { return value }
        guard let double = double(token) else { throw FastJSONError.unsupported }
        guard let value = Int64(exactly: double) else { return nil }
        guard double.magnitude < Self.exactIntegerLimit else { throw FastJSONError.unsupported }
        return value
    }

    /// Reads an integer as Foundation's `decode(Int64.self)` would (or throws).
    mutating func readInt64(_ expected: FastJSONError.Expected = .int64) throws -> Int64 {
        guard let byte = peek(), byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
            throw mismatch(expected)
        }
        let token = try scanNumber()
        // Foundation reports a number that does not fit like a syntax error.
        guard let value = try foundationInt64(token) else { throw FastJSONError.syntax }
        return value
    }

    mutating func readInt() throws -> Int { Int(try readInt64(.int)) }

    // MARK: Any value

    /// Reads any value as `JSONValue.init(from:)` does through Foundation: an integral number
    /// in 64 bits is `.int`, any other finite number `.number(_:)`.
    mutating func readJSONValue() throws -> JSONValue {
        guard let byte = peek() else { throw FastJSONError.syntax }
        switch byte {
        case UInt8(ascii: "\""):
            return .string(string(try scanString()))
        case UInt8(ascii: "{"):
            try beginObject()
            var object: [String: JSONValue] = [:]
            var first = true
            while let key = try nextKey(&first) {
                let name = string(key)
                // The first of repeated keys wins, and Foundation does not decode the others.
                guard object[name] == nil else {
                    try skipValue()
                    continue
                }
                object[name] = try at(name) { try $0.readJSONValue() }
            }
            return .object(object)
        case UInt8(ascii: "["):
            try beginArray()
            var array: [JSONValue] = []
            var first = true
            while try nextElement(&first) {
                array.append(try at(index: array.count) { try $0.readJSONValue() })
            }
            return .array(array)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return .bool(try readBool())
        case UInt8(ascii: "n"):
            guard consumeNull() else { throw FastJSONError.syntax }
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let token = try scanNumber()
            if let int = try foundationInt64(token) { return .int(int) }
            // Not an Int64: Foundation's Double, which must be finite (else no case of
            // JSONValue decodes, and neither does Foundation).
            guard let double = double(token), double.isFinite else { throw FastJSONError(.typeMismatch(.json)) }
            return .number(double)
        default:
            throw FastJSONError.syntax
        }
    }

    /// Skips any value, validating it as strictly as `readJSONValue` (but numbers only by
    /// their grammar).
    mutating func skipValue() throws {
        guard let byte = peek() else { throw FastJSONError.syntax }
        switch byte {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "{"):
            try beginObject()
            var first = true
            while try nextKey(&first) != nil { try skipValue() }
        case UInt8(ascii: "["):
            try beginArray()
            var first = true
            while try nextElement(&first) { try skipValue() }
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try readBool()
        case UInt8(ascii: "n"):
            guard consumeNull() else { throw FastJSONError.syntax }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        default:
            throw FastJSONError.syntax
        }
    }
}
