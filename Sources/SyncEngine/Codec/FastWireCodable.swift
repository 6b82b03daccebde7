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
private func required<T>(_ value: T?, _ key: String) throws -> T {
    guard let value else { throw FastJSONError(.keyNotFound(key)) }
    return value
}

// MARK: - Writing helpers

extension FastJSONWriter {
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
        if !counters.isEmpty {
            writer.raw("\"counters\":")
            try writer.object(counters) { try $1.encode(fastJSON: &$0) }
            writer.byte(UInt8(ascii: ","))
        }
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
        if !counters.isEmpty {
            writer.raw("\"counters\":")
            try writer.object(counters) { try $1.encode(fastJSON: &$0) }
            writer.byte(UInt8(ascii: ","))
        }
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

extension Conflict: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var kind: Kind?, table: String?, rowID: String?
        var column: String??, winner: JSONValue??, winnerStamp: Stamp??, loser: JSONValue??, loserStamp: Stamp??
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "kind"), kind == nil {
                kind = try reader.at("kind") { try $0.rawEnum(Kind.self) }
            } else if reader.key(key, is: "table"), table == nil {
                table = try reader.at("table") { try $0.readString() }
            } else if reader.key(key, is: "rowID"), rowID == nil {
                rowID = try reader.at("rowID") { try $0.readString() }
            } else if reader.key(key, is: "column"), column == nil {
                column = .some(try reader.at("column") { try $0.optional { try $0.readString() } })
            } else if reader.key(key, is: "winner"), winner == nil {
                winner = .some(try reader.at("winner") { try $0.optional { try $0.readJSONValue() } })
            } else if reader.key(key, is: "winnerStamp"), winnerStamp == nil {
                winnerStamp = .some(try reader.at("winnerStamp") { try $0.optional { try $0.stamp() } })
            } else if reader.key(key, is: "loser"), loser == nil {
                loser = .some(try reader.at("loser") { try $0.optional { try $0.readJSONValue() } })
            } else if reader.key(key, is: "loserStamp"), loserStamp == nil {
                loserStamp = .some(try reader.at("loserStamp") { try $0.optional { try $0.stamp() } })
            } else {
                try reader.skipValue()
            }
        }
        self.init(
            kind: try required(kind, "kind"), table: try required(table, "table"), rowID: try required(rowID, "rowID"),
            column: column ?? nil, winner: winner ?? nil, winnerStamp: winnerStamp ?? nil, loser: loser ?? nil,
            loserStamp: loserStamp ?? nil)
    }

    /// The synthesized `Encodable`: optionals left out when nil.
    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.byte(UInt8(ascii: "{"))
        if let column {
            writer.raw("\"column\":")
            writer.string(column)
            writer.byte(UInt8(ascii: ","))
        }
        writer.raw("\"kind\":")
        writer.string(kind.rawValue)
        if let loser {
            writer.raw(",\"loser\":")
            try writer.json(loser)
        }
        if let loserStamp {
            writer.raw(",\"loserStamp\":")
            writer.stamp(loserStamp)
        }
        writer.raw(",\"rowID\":")
        writer.string(rowID)
        writer.raw(",\"table\":")
        writer.string(table)
        if let winner {
            writer.raw(",\"winner\":")
            try writer.json(winner)
        }
        if let winnerStamp {
            writer.raw(",\"winnerStamp\":")
            writer.stamp(winnerStamp)
        }
        writer.byte(UInt8(ascii: "}"))
    }
}

extension FastJSONReader {
    /// A `String`-backed enum; an unknown value fails as the synthesized `Decodable` does.
    mutating func rawEnum<T: RawRepresentable>(_ type: T.Type) throws -> T where T.RawValue == String {
        let text = try readString()
        guard let value = T(rawValue: text) else {
            throw FastJSONError(.corrupted("Cannot initialize \(T.self) from invalid String value \(text)"))
        }
        return value
    }
}

extension PushRequest: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var protocolVersion: Int?, replicaID: ReplicaID?, changes: [RowChange]?
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "protocolVersion"), protocolVersion == nil {
                protocolVersion = try reader.at("protocolVersion") { try $0.readInt() }
            } else if reader.key(key, is: "replicaID"), replicaID == nil {
                replicaID = try reader.at("replicaID") { try $0.wireText(ReplicaID.self) }
            } else if reader.key(key, is: "changes"), changes == nil {
                changes = try reader.at("changes") { try $0.array { try RowChange(fastJSON: &$0) } }
            } else {
                try reader.skipValue()
            }
        }
        self.init(
            protocolVersion: try required(protocolVersion, "protocolVersion"), replicaID: try required(replicaID, "replicaID"),
            changes: try required(changes, "changes"))
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.raw("{\"changes\":")
        try writer.array(changes) { try $1.encode(fastJSON: &$0) }
        writer.raw(",\"protocolVersion\":")
        writer.int(Int64(protocolVersion))
        writer.raw(",\"replicaID\":")
        writer.string(replicaID.rawValue)
        writer.byte(UInt8(ascii: "}"))
    }
}

extension PushResult: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var table: String?, id: String?, outcome: PushOutcome?
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "table"), table == nil {
                table = try reader.at("table") { try $0.readString() }
            } else if reader.key(key, is: "id"), id == nil {
                id = try reader.at("id") { try $0.readString() }
            } else if reader.key(key, is: "outcome"), outcome == nil {
                outcome = try reader.at("outcome") { try $0.rawEnum(PushOutcome.self) }
            } else {
                try reader.skipValue()
            }
        }
        self.init(table: try required(table, "table"), id: try required(id, "id"), outcome: try required(outcome, "outcome"))
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.raw("{\"id\":")
        writer.string(id)
        writer.raw(",\"outcome\":")
        writer.string(outcome.rawValue)
        writer.raw(",\"table\":")
        writer.string(table)
        writer.byte(UInt8(ascii: "}"))
    }
}

extension PushResponse: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var protocolVersion: Int?, results: [PushResult]?, conflicts: Int?
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "protocolVersion"), protocolVersion == nil {
                protocolVersion = try reader.at("protocolVersion") { try $0.readInt() }
            } else if reader.key(key, is: "results"), results == nil {
                results = try reader.at("results") { try $0.array { try PushResult(fastJSON: &$0) } }
            } else if reader.key(key, is: "conflicts"), conflicts == nil {
                conflicts = try reader.at("conflicts") { try $0.readInt() }
            } else {
                try reader.skipValue()
            }
        }
        self.init(
            protocolVersion: try required(protocolVersion, "protocolVersion"), results: try required(results, "results"),
            conflicts: try required(conflicts, "conflicts"))
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.raw("{\"conflicts\":")
        writer.int(Int64(conflicts))
        writer.raw(",\"protocolVersion\":")
        writer.int(Int64(protocolVersion))
        writer.raw(",\"results\":")
        try writer.array(results) { try $1.encode(fastJSON: &$0) }
        writer.byte(UInt8(ascii: "}"))
    }
}

extension PullResponse: FastWireCodable {
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var protocolVersion: Int?, changes: [RowChange]?, cursor: Int64?, hasMore: Bool?
        var conflicts: [Conflict]??
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "protocolVersion"), protocolVersion == nil {
                protocolVersion = try reader.at("protocolVersion") { try $0.readInt() }
            } else if reader.key(key, is: "changes"), changes == nil {
                changes = try reader.at("changes") { try $0.array { try RowChange(fastJSON: &$0) } }
            } else if reader.key(key, is: "cursor"), cursor == nil {
                cursor = try reader.at("cursor") { try $0.readInt64() }
            } else if reader.key(key, is: "hasMore"), hasMore == nil {
                hasMore = try reader.at("hasMore") { try $0.readBool() }
            } else if reader.key(key, is: "conflicts"), conflicts == nil {
                conflicts = .some(try reader.at("conflicts") { try $0.optional { try $0.array { try Conflict(fastJSON: &$0) } } })
            } else {
                try reader.skipValue()
            }
        }
        self.init(
            protocolVersion: try required(protocolVersion, "protocolVersion"), changes: try required(changes, "changes"),
            cursor: try required(cursor, "cursor"), hasMore: try required(hasMore, "hasMore"),
            conflicts: (conflicts ?? nil) ?? [])
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.raw("{\"changes\":")
        try writer.array(changes) { try $1.encode(fastJSON: &$0) }
        if !conflicts.isEmpty {
            writer.raw(",\"conflicts\":")
            try writer.array(conflicts) { try $1.encode(fastJSON: &$0) }
        }
        writer.raw(",\"cursor\":")
        writer.int(cursor)
        writer.raw(",\"hasMore\":")
        writer.raw(hasMore ? "true" : "false")
        writer.raw(",\"protocolVersion\":")
        writer.int(Int64(protocolVersion))
        writer.byte(UInt8(ascii: "}"))
    }
}

extension Array: FastWireCodable where Element == String {
    init(fastJSON reader: inout FastJSONReader) throws {
        self = try reader.array { try $0.readString() }
    }

    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.array(self) { $0.string($1) }
    }
}
