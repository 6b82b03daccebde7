/// For each replica, the newest of its writes that a row's state includes.
///
/// Entries are HLC readings rather than plain counters, so one vector answers both
/// "does this state include that write?" (`contains(_:)`, for any stamp) and the usual
/// partial order between two states. Merging is the point-wise maximum: commutative,
/// associative and idempotent.
public struct VersionVector: Hashable, Sendable {
    public private(set) var entries: [ReplicaID: HLC]

    public init(_ entries: [ReplicaID: HLC] = [:]) {
        self.entries = entries.filter { $0.value != .zero }
    }

    public static let empty = VersionVector()

    public subscript(replica: ReplicaID) -> HLC { entries[replica] ?? .zero }

    /// Whether the write stamped `stamp` is included in the state this vector describes.
    public func contains(_ stamp: Stamp) -> Bool { self[stamp.replica] >= stamp.hlc }

    /// Records a write.
    public mutating func record(_ stamp: Stamp) {
        if stamp.hlc > self[stamp.replica] { entries[stamp.replica] = stamp.hlc }
    }

    public mutating func merge(_ other: VersionVector) {
        for (replica, hlc) in other.entries where hlc > self[replica] {
            entries[replica] = hlc
        }
    }

    public func merging(_ other: VersionVector) -> VersionVector {
        var copy = self
        copy.merge(other)
        return copy
    }

    /// `self ≥ other`: every write `other` includes, `self` includes too.
    public func dominates(_ other: VersionVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value }
    }

    public enum Ordering: Sendable, Equatable {
        case equal, before, after, concurrent
    }

    /// How `self` relates to `other` in the causal partial order.
    public func compare(_ other: VersionVector) -> Ordering {
        switch (dominates(other), other.dominates(self)) {
        case (true, true): .equal
        case (true, false): .after
        case (false, true): .before
        case (false, false): .concurrent
        }
    }

    /// The newest reading in the vector, for advancing a local clock past everything seen.
    public var maxHLC: HLC { entries.values.max() ?? .zero }
}

extension VersionVector: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode([String: HLC].self)
        var entries: [ReplicaID: HLC] = [:]
        for (key, value) in raw {
            guard let replica = ReplicaID(rawValue: key) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "version vector key is not a valid replica id")
            }
            entries[replica] = value
        }
        self.init(entries)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Dictionary(uniqueKeysWithValues: entries.map { ($0.key.rawValue, $0.value) }))
    }
}
