import Foundation

/// A JSON value, used for field values on the wire and for the JSON columns of the schema.
///
/// Numbers that are integral and fit in 64 bits are always `.int`, so a value read back from
/// PostgreSQL `jsonb` (which may print `1.0` as `1.0` or `1`) compares equal to what was written.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Normalizing constructor for numbers.
    public static func number(_ value: Double) -> JSONValue {
        if value.rounded() == value, value >= -9.2e18, value <= 9.2e18 { return .int(Int64(value)) }
        return .double(value)
    }

    public var isNull: Bool { if case .null = self { true } else { false } }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var intValue: Int64? { if case .int(let i) = self { i } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // The most frequent kinds first: every failed attempt throws, and building the error
        // (with its coding path) cost more than the decoding itself. The decoder is strict
        // (no string reads as a number, no number as a Bool), so the order does not change the
        // result.
        if container.decodeNil() {
            self = .null
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let int = try? container.decode(Int64.self) {
            self = .int(int)
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let double = try? container.decode(Double.self) {
            self = .number(double)
        } else if let object = try? container.decode([String: JSONValue].self) {
            self = .object(object)
        } else {
            self = .array(try container.decode([JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .int(let i): try container.encode(i)
        case .double(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByNilLiteral, ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

/// The one JSON configuration the project uses for stored and wire text: sorted keys make the
/// text of equal values identical, which keeps stored rows and golden fixtures stable.
///
/// `encode`, `encodeString` and `decode` take a hand-written codec (`FastJSON`) for the sync
/// types (`JSONValue`, stamps, vectors, `RowChange`, `RowMeta`, the protocol messages,
/// `[String]`), which writes the same bytes as `encoder()` and reads what `decoder()` reads.
/// Every other type, and any input the fast codec does not accept, goes through Foundation, so
/// errors are Foundation's, word for word.
public enum WireJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder { JSONDecoder() }

    public static func encode(_ value: some Encodable) throws -> Data {
        if let bytes = FastJSON.encodeIfFast(value) { return Data(bytes) }
        return try encoder().encode(value)
    }

    public static func encodeString(_ value: some Encodable) throws -> String {
        if let bytes = FastJSON.encodeIfFast(value) { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: try encoder().encode(value), as: UTF8.self)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let value = data.withUnsafeBytes({ FastJSON.decodeIfFast(type, from: $0) }) { return value }
        return try decoder().decode(type, from: data)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        var text = text
        if let value = text.withUTF8({ FastJSON.decodeIfFast(type, from: UnsafeRawBufferPointer($0)) }) { return value }
        return try decoder().decode(type, from: Data(text.utf8))
    }

    /// Decodes UTF-8 bytes held in any collection (a request body), without copying them when
    /// the collection is contiguous.
    public static func decode<T: Decodable>(_ type: T.Type, utf8 bytes: some Collection<UInt8>) throws -> T {
        let fast: T?? = bytes.withContiguousStorageIfAvailable { FastJSON.decodeIfFast(type, from: UnsafeRawBufferPointer($0)) }
        guard let fast else { return try decode(type, from: Data(bytes)) }
        if let value = fast { return value }
        return try decoder().decode(type, from: Data(bytes))
    }
}
