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

    enum CodingKeys: String, CodingKey { case vv, stamps, counters, tombstone }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        vv = try container.decode(VersionVector.self, forKey: .vv)
        stamps = try container.decodeIfPresent([String: Stamp].self, forKey: .stamps) ?? [:]
        counters = try container.decodeIfPresent([String: Counter].self, forKey: .counters) ?? [:]
        tombstone = try container.decodeIfPresent(Stamp.self, forKey: .tombstone)
    }
}
