/// The stable identity of one replica: a device's SQLite file, or a server acting as a writer.
///
/// 1 to 64 characters from `A-Z a-z 0-9 _ -`, so it can be embedded in stamps and compared
/// byte-wise everywhere.
public struct ReplicaID: RawRepresentable, Hashable, Comparable, Sendable {
    public let rawValue: String

    public init?(rawValue: String) {
        guard ReplicaID.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// For identifiers known to be valid (generated ones, literals in tests).
    public init(_ rawValue: String) {
        precondition(ReplicaID.isValid(rawValue), "invalid replica id")
        self.rawValue = rawValue
    }

    public static func isValid(_ text: String) -> Bool {
        let bytes = text.utf8
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                || byte == 95 || byte == 45
        }
    }

    /// Byte-wise order, identical to `COLLATE "C"` in SQL.
    public static func < (lhs: ReplicaID, rhs: ReplicaID) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }
}

extension ReplicaID: WireText {
    public init?(wireText: String) { self.init(rawValue: wireText) }
    public var wireText: String { rawValue }
    public static let expectation = "a replica id is 1-64 characters of A-Z a-z 0-9 _ -"

    public init(from decoder: any Decoder) throws { self = try Self.decodeWireText(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try encodeWireText(to: encoder) }
}

extension ReplicaID: CustomStringConvertible {
    public var description: String { rawValue }
}
