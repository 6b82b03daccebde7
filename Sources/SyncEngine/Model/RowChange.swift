/// One column's value together with the stamp of the write that set it.
public struct FieldValue: Hashable, Sendable, Codable {
    public var value: JSONValue
    public var stamp: Stamp

    public init(_ value: JSONValue, stamp: Stamp) {
        self.value = value
        self.stamp = stamp
    }

    enum CodingKeys: String, CodingKey {
        case value = "v"
        case stamp = "t"
    }
}

/// A counter as per-replica contributions that only grow (a G-counter). Its value is the sum;
/// merging takes the per-replica maximum, so a retried or duplicated change never counts twice
/// and two devices adding at once both count.
public struct Counter: Hashable, Sendable {
    public private(set) var contributions: [ReplicaID: Int64]

    public init(_ contributions: [ReplicaID: Int64] = [:]) {
        self.contributions = contributions.filter { $0.value != 0 }
    }

    /// The sum of the contributions, saturating at `Int64.max` rather than wrapping.
    public var total: Int64 {
        contributions.values.reduce(0) { sum, value in
            let (result, overflow) = sum.addingReportingOverflow(value)
            return overflow ? .max : result
        }
    }

    public subscript(replica: ReplicaID) -> Int64 { contributions[replica] ?? 0 }

    /// Adds `amount` (≥ 0) to `replica`'s contribution.
    public mutating func add(_ amount: Int64, for replica: ReplicaID) {
        guard amount > 0 else { return }
        contributions[replica] = self[replica] &+ amount
    }

    public mutating func merge(_ other: Counter) {
        for (replica, value) in other.contributions where value > self[replica] {
            contributions[replica] = value
        }
    }
}

extension Counter: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode([String: Int64].self)
        var contributions: [ReplicaID: Int64] = [:]
        for (key, value) in raw {
            guard let replica = ReplicaID(rawValue: key) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "counter key is not a replica id")
            }
            contributions[replica] = value
        }
        self.init(contributions)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Dictionary(uniqueKeysWithValues: contributions.map { ($0.key.rawValue, $0.value) }))
    }
}

/// The unit of sync: what one replica knows about one row.
///
/// A change carries stamped values for some columns, counter contributions, the row's version
/// vector and, for a deleted row, the tombstone's stamp. A row's full state has the same shape
/// (every column present), and merging two changes is a join: `Merge.join` is commutative,
/// associative and idempotent, which is what lets replicas exchange states in any order, any
/// number of times, and converge.
public struct RowChange: Hashable, Sendable, Codable {
    public var table: String
    public var id: String
    public var vv: VersionVector
    /// Set when the row is deleted. Deletes win over concurrent updates.
    public var tombstone: Stamp?
    public var fields: [String: FieldValue]
    /// Keyed by counter column, or `column.key` for the keys of a counter map
    /// (`tool_counts_json.bash`).
    public var counters: [String: Counter]

    public init(
        table: String, id: String, vv: VersionVector = .empty, tombstone: Stamp? = nil,
        fields: [String: FieldValue] = [:], counters: [String: Counter] = [:]
    ) {
        self.table = table
        self.id = id
        self.vv = vv
        self.tombstone = tombstone
        self.fields = fields
        self.counters = counters
    }

    public var isDeleted: Bool { tombstone != nil }

    /// Counters with at least one contribution: an empty counter means the same as none.
    var nonEmptyCounters: [String: Counter] { counters.filter { !$0.value.contributions.isEmpty } }

    public static func == (lhs: RowChange, rhs: RowChange) -> Bool {
        lhs.table == rhs.table && lhs.id == rhs.id && lhs.vv == rhs.vv && lhs.tombstone == rhs.tombstone
            && lhs.fields == rhs.fields && lhs.nonEmptyCounters == rhs.nonEmptyCounters
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(table)
        hasher.combine(id)
        hasher.combine(vv)
        hasher.combine(tombstone)
        hasher.combine(fields)
        hasher.combine(nonEmptyCounters)
    }

    /// The row's key across tables.
    public var key: RowKey { RowKey(table: table, id: id) }

    /// The current value of a stamped column (`nil` when absent).
    public func value(_ column: String) -> JSONValue? { fields[column]?.value }

    enum CodingKeys: String, CodingKey {
        case table, id, vv, tombstone, fields, counters
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        table = try container.decode(String.self, forKey: .table)
        id = try container.decode(String.self, forKey: .id)
        vv = try container.decodeIfPresent(VersionVector.self, forKey: .vv) ?? .empty
        tombstone = try container.decodeIfPresent(Stamp.self, forKey: .tombstone)
        fields = try container.decodeIfPresent([String: FieldValue].self, forKey: .fields) ?? [:]
        counters = try container.decodeIfPresent([String: Counter].self, forKey: .counters) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(table, forKey: .table)
        try container.encode(id, forKey: .id)
        try container.encode(vv, forKey: .vv)
        try container.encodeIfPresent(tombstone, forKey: .tombstone)
        if !fields.isEmpty { try container.encode(fields, forKey: .fields) }
        if !counters.isEmpty { try container.encode(counters, forKey: .counters) }
    }
}

/// A row's identity across tables.
public struct RowKey: Hashable, Sendable, Codable, Comparable {
    public var table: String
    public var id: String

    public init(table: String, id: String) {
        self.table = table
        self.id = id
    }

    public static func < (lhs: RowKey, rhs: RowKey) -> Bool {
        (lhs.table, lhs.id) < (rhs.table, rhs.id)
    }
}

/// Names of counter entries in `RowChange.counters`.
public enum CounterKey {
    /// `column` for a plain counter, `column.key` for one key of a counter map.
    public static func make(column: String, key: String? = nil) -> String {
        key.map { "\(column).\($0)" } ?? column
    }

    /// Splits a counter entry name into its column and map key.
    public static func split(_ name: String) -> (column: String, key: String?) {
        guard let dot = name.firstIndex(of: ".") else { return (name, nil) }
        return (String(name[..<dot]), String(name[name.index(after: dot)...]))
    }
}
