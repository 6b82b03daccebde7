/// The sync metadata a store keeps beside a row's values (`sync_meta` in SQLite and
/// PostgreSQL): the version vector, the stamp of every column's value, counter contributions,
/// and for a tombstone the stamp of the delete. Values themselves live in the row's columns.
public struct RowMeta: Codable, Equatable, Sendable {
    public var vv: VersionVector
    public var stamps: [String: Stamp]
    public var counters: [String: Counter]
    public var tombstone: Stamp?

    public init(vv: VersionVector, stamps: [String: Stamp] = [:], counters: [String: Counter] = [:], tombstone: Stamp? = nil) {
        self.vv = vv
        self.stamps = stamps
        self.counters = counters
        self.tombstone = tombstone
    }

    /// The metadata half of a state.
    public init(of state: RowChange) {
        self.init(vv: state.vv, stamps: state.fields.mapValues(\.stamp), counters: state.counters, tombstone: state.tombstone)
    }

    /// Rebuilds a state from this metadata and the row's column values (stamped columns only;
    /// a column without a stamp was never written and is left out).
    public func state(table: String, id: String, values: [String: JSONValue]) -> RowChange {
        if let tombstone { return RowChange(table: table, id: id, vv: vv, tombstone: tombstone) }
        var fields: [String: FieldValue] = [:]
        fields.reserveCapacity(stamps.count)
        for (column, stamp) in stamps { fields[column] = FieldValue(values[column] ?? .null, stamp: stamp) }
        return RowChange(table: table, id: id, vv: vv, fields: fields, counters: counters)
    }

    // MARK: Stored form

    /// Stored as `{"counters":…,"stamped":{"<stamp>":["column",…],…},"tombstone":…,"vv":…}`:
    /// columns grouped under the stamp they share, so a row written in one go carries its
    /// stamp once rather than once per column (a message's `sync_meta` went from about 620 to
    /// about 230 bytes). Empty `counters` and `stamped` are left out. Groups are ordered by
    /// stamp text and columns within a group by their UTF-8 bytes, so every replica, and the
    /// server, stores identical bytes for identical metadata. The first form,
    /// `"stamps":{"column":"<stamp>",…}` with `counters` always present, is still read, so
    /// rows written before are read as they are and take the new form when next written.
    enum CodingKeys: String, CodingKey { case vv, stamps, stamped, counters, tombstone }

    /// The stamps as stored: one group per distinct stamp, in stamp order, each group's
    /// columns in byte order.
    var stampGroups: [(stamp: Stamp, columns: [String])] {
        var groups: [(stamp: Stamp, columns: [String])] = []
        for (column, stamp) in stamps {
            // Few distinct stamps per row (usually one): a linear search beats hashing.
            if let index = groups.firstIndex(where: { $0.stamp == stamp }) {
                groups[index].columns.append(column)
            } else {
                groups.append((stamp, [column]))
            }
        }
        for index in groups.indices where groups[index].columns.count > 1 {
            groups[index].columns.sort(by: FastJSONWriter.keyPrecedes)
        }
        if groups.count > 1 {
            // Stamp text order: 16 fixed-width hex digits, then the replica id byte-wise.
            groups.sort { $0.stamp.hlc != $1.stamp.hlc ? $0.stamp.hlc < $1.stamp.hlc : $0.stamp.replica < $1.stamp.replica }
        }
        return groups
    }

    /// Adds stored groups to `stamps`: `nil` when a stamp is malformed or a column appears
    /// twice.
    static func expand(_ groups: [String: [String]], into stamps: inout [String: Stamp]) -> Bool {
        for (text, columns) in groups {
            guard let stamp = Stamp(wireText: text) else { return false }
            for column in columns {
                guard stamps.updateValue(stamp, forKey: column) == nil else { return false }
            }
        }
        return true
    }

    static let stampedExpectation = "\"stamped\" maps stamps to the columns they stamp, each column once"

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        vv = try container.decode(VersionVector.self, forKey: .vv)
        stamps = try container.decodeIfPresent([String: Stamp].self, forKey: .stamps) ?? [:]
        if let groups = try container.decodeIfPresent([String: [String]].self, forKey: .stamped),
           !Self.expand(groups, into: &stamps)
        {
            throw DecodingError.dataCorruptedError(forKey: .stamped, in: container, debugDescription: Self.stampedExpectation)
        }
        counters = try container.decodeIfPresent([String: Counter].self, forKey: .counters) ?? [:]
        tombstone = try container.decodeIfPresent(Stamp.self, forKey: .tombstone)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if !counters.isEmpty { try container.encode(counters, forKey: .counters) }
        if !stamps.isEmpty {
            var groups: [String: [String]] = [:]
            for group in stampGroups { groups[group.stamp.wireText] = group.columns }
            try container.encode(groups, forKey: .stamped)
        }
        try container.encodeIfPresent(tombstone, forKey: .tombstone)
        try container.encode(vv, forKey: .vv)
    }
}
