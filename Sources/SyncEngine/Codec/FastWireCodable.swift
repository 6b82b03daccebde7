/// A sync type with a hand-written JSON mapping, which `WireJSON` uses instead of
/// Foundation's `JSONEncoder`/`JSONDecoder`. The mapping writes the same bytes as the
/// `Codable` conformance does through `WireJSON.encoder()`, and reads what `WireJSON.decoder()`
/// reads, to the same value; `FastCodecTests` holds the two side by side.
protocol FastWireCodable: Codable {
    init(fastJSON reader: inout FastJSONReader) throws
    func encode(fastJSON writer: inout FastJSONWriter) throws
}

/// Entry points of the fast codec. They throw `FastJSONError` and never fall back: `WireJSON`
/// does the falling back.
enum FastJSON {
    static func decode<T: FastWireCodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        var reader = FastJSONReader(bytes.bindMemory(to: UInt8.self))
        return try reader.readDocument { try T(fastJSON: &$0) }
    }

    static func decode<T: FastWireCodable>(_ type: T.Type, from text: String) throws -> T {
        var text = text
        return try text.withUTF8 { try decode(type, from: UnsafeRawBufferPointer($0)) }
    }

    static func encode(_ value: some FastWireCodable) throws -> [UInt8] {
        var writer = FastJSONWriter()
        try value.encode(fastJSON: &writer)
        return writer.bytes
    }

    /// Decodes `T` if it has a fast mapping and the fast codec reads `bytes`; nil otherwise.
    static func decodeIfFast<T>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) -> T? {
        guard let fastType = type as? any FastWireCodable.Type else { return nil }
        func open<F: FastWireCodable>(_: F.Type) -> T? {
            (try? decode(F.self, from: bytes)) as? T
        }
        return open(fastType)
    }

    /// Encodes `value` if it has a fast mapping the fast codec can write; nil otherwise.
    static func encodeIfFast(_ value: some Encodable) -> [UInt8]? {
        guard let fast = value as? any FastWireCodable else { return nil }
        return try? encode(fast)
    }
}

// MARK: - Decoding helpers

extension FastJSONReader {
    /// A `decodeIfPresent`: nil for `null`.
    @inline(__always)
    mutating func optional<T>(_ read: (inout FastJSONReader) throws -> T) throws -> T? {
        consumeNull() ? nil : try read(&self)
    }

    /// An object with arbitrary keys (a `[String: Value]`): the first of repeated keys wins.
    mutating func dictionary<Value>(_ read: (inout FastJSONReader) throws -> Value) throws -> [String: Value] {
        try beginObject()
        var result: [String: Value] = [:]
        var first = true
        while let key = try nextKey(&first) {
            let name = string(key)
            guard result[name] == nil else {
                try skipValue()
                continue
            }
            result[name] = try at(name) { try read(&$0) }
        }
        return result
    }

    mutating func array<Element>(_ read: (inout FastJSONReader) throws -> Element) throws -> [Element] {
        try beginArray()
        var result: [Element] = []
        var first = true
        while try nextElement(&first) {
            result.append(try at(index: result.count) { try read(&$0) })
        }
        return result
    }

    /// An object keyed by replica id (a version vector, a counter): decoded as Foundation
    /// decodes the `[String: Value]` it is made from, then every key checked, failing with
    /// `invalidKey`. The first of repeated keys wins (the others are not decoded).
    mutating func replicaDictionary<Value>(
        invalidKey: String, _ read: (inout FastJSONReader) throws -> Value
    ) throws -> [ReplicaID: Value] {
        try beginObject()
        var result: [ReplicaID: Value] = [:]
        var first = true
        var badKey = false
        while let key = try nextKey(&first) {
            let name = string(key)
            guard let replica = ReplicaID(rawValue: name) else {
                // Foundation decodes every value before it checks a key; a repeated invalid key
                // (`"\u212A"` after `"K"`, equal as Swift strings) is left to Foundation.
                _ = try at(name) { try read(&$0) }
                badKey = true
                continue
            }
            guard result[replica] == nil else {
                try skipValue()
                continue
            }
            result[replica] = try at(name) { try read(&$0) }
        }
        if badKey { throw FastJSONError(.corrupted(invalidKey)) }
        return result
    }

    /// A `WireText` value: a string, then its parser; `expectation` when it does not parse.
    mutating func wireText<T: WireText>(_ type: T.Type) throws -> T {
        guard let value = T(wireText: try readString()) else { throw FastJSONError(.corrupted(T.expectation)) }
        return value
    }

    /// An HLC without building a string: exactly 16 lower-case hex digits.
    mutating func hlc() throws -> HLC {
        let token = try readStringToken()
        if !token.hasEscapes, let value = Self.hlcValue(rawBytes(token)) { return HLC(rawValue: value) }
        guard let value = HLC(wireText: string(token)) else { throw FastJSONError(.corrupted(HLC.expectation)) }
        return value
    }

    /// A stamp, `<16 hex digits>@<replica id>`, parsed from the bytes.
    mutating func stamp() throws -> Stamp {
        let token = try readStringToken()
        let raw = rawBytes(token)
        if !token.hasEscapes, raw.count > 17, raw[16] == UInt8(ascii: "@"),
           let hlc = Self.hlcValue(UnsafeBufferPointer(rebasing: raw[0..<16])),
           let replica = ReplicaID(rawValue: String(decoding: UnsafeBufferPointer(rebasing: raw[17...]), as: UTF8.self)) {
            return Stamp(hlc: HLC(rawValue: hlc), replica: replica)
        }
        // Escaped text, or malformed: the string parser decides (and it rejects what the byte
        // parser did).
        guard let value = Stamp(wireText: string(token)) else { throw FastJSONError(.corrupted(Stamp.expectation)) }
        return value
    }

    private static func hlcValue(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard bytes.count == 16 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value
    }
}

/// A required key: `keyNotFound` when absent.
@inline(__always)
func required<T>(_ value: T?, _ key: String) throws -> T {
    guard let value else { throw FastJSONError(.keyNotFound(key)) }
    return value
}

// MARK: - Writing helpers

extension FastJSONWriter {
    /// `"counters":{…},` when there are any: the first member of `RowChange` and `RowMeta`,
    /// both of which leave empty counters out.
    mutating func countersMember(_ counters: [String: Counter]) throws {
        guard !counters.isEmpty else { return }
        raw("\"counters\":")
        try object(counters) { try $1.encode(fastJSON: &$0) }
        byte(UInt8(ascii: ","))
    }

    mutating func hlc(_ hlc: HLC) {
        byte(UInt8(ascii: "\""))
        hexDigits(hlc.rawValue)
        byte(UInt8(ascii: "\""))
    }

    mutating func stamp(_ stamp: Stamp) {
        byte(UInt8(ascii: "\""))
        hexDigits(stamp.hlc.rawValue)
        byte(UInt8(ascii: "@"))
        bytes.append(contentsOf: stamp.replica.rawValue.utf8)
        byte(UInt8(ascii: "\""))
    }

    /// An object keyed by replica id; ids need no escaping and sort byte-wise like `ReplicaID`.
    mutating func replicaObject<Value>(_ object: [ReplicaID: Value], _ write: (inout FastJSONWriter, Value) -> Void) {
        byte(UInt8(ascii: "{"))
        var first = true
        for (replica, value) in object.count < 2 ? Array(object) : object.sorted(by: { $0.key < $1.key }) {
            if !first { byte(UInt8(ascii: ",")) }
            first = false
            plainString(replica.rawValue)
            byte(UInt8(ascii: ":"))
            write(&self, value)
        }
        byte(UInt8(ascii: "}"))
    }
}

// MARK: - Conformances

extension JSONValue: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws { self = try reader.readJSONValue() }
    func encode(fastJSON writer: inout FastJSONWriter) throws { try writer.json(self) }
}

extension HLC: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws { self = try reader.hlc() }
    func encode(fastJSON writer: inout FastJSONWriter) throws { writer.hlc(self) }
}

extension Stamp: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws { self = try reader.stamp() }
    func encode(fastJSON writer: inout FastJSONWriter) throws { writer.stamp(self) }
}

extension ReplicaID: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws { self = try reader.wireText(ReplicaID.self) }
    func encode(fastJSON writer: inout FastJSONWriter) throws { writer.string(rawValue) }
}

extension VersionVector: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        self.init(try reader.replicaDictionary(invalidKey: "version vector key is not a valid replica id") { try $0.hlc() })
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.replicaObject(entries) { $0.hlc($1) }
    }
}

extension Counter: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        self.init(try reader.replicaDictionary(invalidKey: "counter key is not a replica id") { try $0.readInt64() })
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.replicaObject(contributions) { $0.int($1) }
    }
}

extension FieldValue: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var value: JSONValue?
        var stamp: Stamp?
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "v"), value == nil {
                value = try reader.at("v") { try $0.readJSONValue() }
            } else if reader.key(key, is: "t"), stamp == nil {
                stamp = try reader.at("t") { try $0.stamp() }
            } else {
                try reader.skipValue()
            }
        }
        self.init(try required(value, "v"), stamp: try required(stamp, "t"))
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.raw("{\"t\":")
        writer.stamp(stamp)
        writer.raw(",\"v\":")
        try writer.json(value)
        writer.byte(UInt8(ascii: "}"))
    }
}

extension RowChange: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var table: String?, id: String?
        var vv: VersionVector??, tombstone: Stamp??
        var fields: [String: FieldValue]??, counters: [String: Counter]??
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "table"), table == nil {
                table = try reader.at("table") { try $0.readString() }
            } else if reader.key(key, is: "id"), id == nil {
                id = try reader.at("id") { try $0.readString() }
            } else if reader.key(key, is: "vv"), vv == nil {
                vv = .some(try reader.at("vv") { try $0.optional { try VersionVector(fastJSON: &$0) } })
            } else if reader.key(key, is: "tombstone"), tombstone == nil {
                tombstone = .some(try reader.at("tombstone") { try $0.optional { try $0.stamp() } })
            } else if reader.key(key, is: "fields"), fields == nil {
                fields = .some(try reader.at("fields") { try $0.optional { try $0.dictionary { try FieldValue(fastJSON: &$0) } } })
            } else if reader.key(key, is: "counters"), counters == nil {
                counters = .some(try reader.at("counters") { try $0.optional { try $0.dictionary { try Counter(fastJSON: &$0) } } })
            } else {
                try reader.skipValue()
            }
        }
        self.init(
            table: try required(table, "table"), id: try required(id, "id"), vv: (vv ?? nil) ?? .empty,
            tombstone: tombstone ?? nil, fields: (fields ?? nil) ?? [:], counters: (counters ?? nil) ?? [:])
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.byte(UInt8(ascii: "{"))
        try writer.countersMember(counters)
        if !fields.isEmpty {
            writer.raw("\"fields\":")
            try writer.object(fields) { try $1.encode(fastJSON: &$0) }
            writer.byte(UInt8(ascii: ","))
        }
        writer.raw("\"id\":")
        writer.string(id)
        writer.raw(",\"table\":")
        writer.string(table)
        if let tombstone {
            writer.raw(",\"tombstone\":")
            writer.stamp(tombstone)
        }
        writer.raw(",\"vv\":")
        try vv.encode(fastJSON: &writer)
        writer.byte(UInt8(ascii: "}"))
    }
}

extension RowMeta: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var vv: VersionVector?, seenVV = false
        var stamps: [String: Stamp]??, stamped: [String: Stamp]??, counters: [String: Counter]??, tombstone: Stamp??
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "vv"), !seenVV {
                seenVV = true
                vv = try reader.at("vv") { try VersionVector(fastJSON: &$0) }
            } else if reader.key(key, is: "stamped"), stamped == nil {
                stamped = .some(try reader.at("stamped") { reader in
                    try reader.optional { reader in
                        var expanded: [String: Stamp] = [:]
                        guard RowMeta.expand(try reader.dictionary { try $0.array { try $0.readString() } }, into: &expanded) else {
                            throw FastJSONError(.corrupted(RowMeta.stampedExpectation))
                        }
                        return expanded
                    }
                })
            } else if reader.key(key, is: "stamps"), stamps == nil {
                stamps = .some(try reader.at("stamps") { try $0.optional { try $0.dictionary { try $0.stamp() } } })
            } else if reader.key(key, is: "counters"), counters == nil {
                counters = .some(try reader.at("counters") { try $0.optional { try $0.dictionary { try Counter(fastJSON: &$0) } } })
            } else if reader.key(key, is: "tombstone"), tombstone == nil {
                tombstone = .some(try reader.at("tombstone") { try $0.optional { try $0.stamp() } })
            } else {
                try reader.skipValue()
            }
        }
        let vector = try required(vv, "vv")
        var all = (stamps ?? nil) ?? [:]
        if let expanded = stamped ?? nil {
            if all.isEmpty {
                all = expanded
            } else {
                // Both forms in one document: each column still has one stamp.
                for (column, stamp) in expanded where all.updateValue(stamp, forKey: column) != nil {
                    var error = FastJSONError(.corrupted(RowMeta.stampedExpectation))
                    error.reversedPath.append(FastCodingKey("stamped"))
                    throw error
                }
            }
        }
        self.init(vv: vector, stamps: all, counters: (counters ?? nil) ?? [:], tombstone: tombstone ?? nil)
    }

    /// `encode(to:)`'s keys and order (see `RowMeta`'s stored form).
    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.byte(UInt8(ascii: "{"))
        try writer.countersMember(counters)
        if !stamps.isEmpty {
            writer.raw("\"stamped\":{")
            for (position, group) in stampGroups.enumerated() {
                if position > 0 { writer.byte(UInt8(ascii: ",")) }
                writer.stamp(group.stamp)
                writer.byte(UInt8(ascii: ":"))
                writer.array(group.columns) { $0.string($1) }
            }
            writer.raw("},")
        }
        if let tombstone {
            writer.raw("\"tombstone\":")
            writer.stamp(tombstone)
            writer.byte(UInt8(ascii: ","))
        }
        writer.raw("\"vv\":")
        try vv.encode(fastJSON: &writer)
        writer.byte(UInt8(ascii: "}"))
    }
}
