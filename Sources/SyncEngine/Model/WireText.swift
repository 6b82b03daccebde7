/// A value whose wire form is one JSON string (HLC readings, stamps, replica ids). Conforming
/// types implement `Codable` with the two helpers below (a struct declaring `Codable` would
/// otherwise get the compiler's memberwise coding); a malformed string fails decoding with
/// `expectation`.
public protocol WireText: Codable {
    /// Parses the wire form; `nil` when malformed.
    init?(wireText: String)
    /// The wire form.
    var wireText: String { get }
    /// What a well-formed value looks like, for decoding errors.
    static var expectation: String { get }
}

extension WireText {
    public static func decodeWireText(from decoder: any Decoder) throws -> Self {
        let container = try decoder.singleValueContainer()
        guard let value = Self(wireText: try container.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: Self.expectation)
        }
        return value
    }

    public func encodeWireText(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wireText)
    }
}
