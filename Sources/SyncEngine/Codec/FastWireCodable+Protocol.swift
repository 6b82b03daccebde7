/// The fast codec's mappings of the protocol messages (`PushRequest`, `PushResponse`,
/// `PullResponse`, `LiveMessage` and their parts) and of `[String]`; the row-level types are in
/// `FastWireCodable.swift`.

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

extension LiveMessage: FastWireCodable {
    /// The synthesized `Decodable`: a missing or `null` optional is `nil`.
    init(fastJSON reader: inout FastJSONReader) throws {
        try reader.beginObject()
        var type: String?, cursor: Int64?, after: Int64??, changes: [RowChange]??, conflicts: [Conflict]??
        var first = true
        while let key = try reader.nextKey(&first) {
            if reader.key(key, is: "type"), type == nil {
                type = try reader.at("type") { try $0.readString() }
            } else if reader.key(key, is: "cursor"), cursor == nil {
                cursor = try reader.at("cursor") { try $0.readInt64() }
            } else if reader.key(key, is: "after"), after == nil {
                after = .some(try reader.at("after") { try $0.optional { try $0.readInt64() } })
            } else if reader.key(key, is: "changes"), changes == nil {
                changes = .some(try reader.at("changes") { try $0.optional { try $0.array { try RowChange(fastJSON: &$0) } } })
            } else if reader.key(key, is: "conflicts"), conflicts == nil {
                conflicts = .some(try reader.at("conflicts") { try $0.optional { try $0.array { try Conflict(fastJSON: &$0) } } })
            } else {
                try reader.skipValue()
            }
        }
        self.init(type: try required(type, "type"), cursor: try required(cursor, "cursor"))
        self.after = after ?? nil
        self.changes = changes ?? nil
        self.conflicts = conflicts ?? nil
    }

    /// The synthesized `Encodable`: optionals left out when nil.
    func encode(fastJSON writer: inout FastJSONWriter) throws {
        writer.byte(UInt8(ascii: "{"))
        if let after {
            writer.raw("\"after\":")
            writer.int(after)
            writer.byte(UInt8(ascii: ","))
        }
        if let changes {
            writer.raw("\"changes\":")
            try writer.array(changes) { try $1.encode(fastJSON: &$0) }
            writer.byte(UInt8(ascii: ","))
        }
        if let conflicts {
            writer.raw("\"conflicts\":")
            try writer.array(conflicts) { try $1.encode(fastJSON: &$0) }
            writer.byte(UInt8(ascii: ","))
        }
        writer.raw("\"cursor\":")
        writer.int(cursor)
        writer.raw(",\"type\":")
        writer.string(type)
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
