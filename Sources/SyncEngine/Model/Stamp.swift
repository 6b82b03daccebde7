/// Who wrote a value and when: an HLC reading plus the writing replica as tie-break.
///
/// Stamps are totally ordered: by HLC, then by replica id (byte-wise). On the wire a stamp is
/// `"<16 hex digits>@<replica>"`, whose text order equals this order.
public struct Stamp: Hashable, Comparable, Sendable {
    public var hlc: HLC
    public var replica: ReplicaID

    public init(hlc: HLC, replica: ReplicaID) {
        self.hlc = hlc
        self.replica = replica
    }

    public static func < (lhs: Stamp, rhs: Stamp) -> Bool {
        if lhs.hlc != rhs.hlc { return lhs.hlc < rhs.hlc }
        return lhs.replica < rhs.replica
    }

    public var text: String { "\(hlc.text)@\(replica.rawValue)" }

    public init?(text: String) {
        let utf8 = text.utf8
        guard utf8.count > 17, let at = text.firstIndex(of: "@"),
              let hlc = HLC(text: text[..<at]),
              let replica = ReplicaID(rawValue: String(text[text.index(after: at)...]))
        else { return nil }
        self.init(hlc: hlc, replica: replica)
    }
}

extension Stamp: WireText {
    public init?(wireText: String) { self.init(text: wireText) }
    public var wireText: String { text }
    public static let expectation = "a stamp is \"<16 hex digits>@<replica id>\""

    public init(from decoder: any Decoder) throws { self = try Self.decodeWireText(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try encodeWireText(to: encoder) }
}

extension Stamp: CustomStringConvertible {
    public var description: String { text }
}
