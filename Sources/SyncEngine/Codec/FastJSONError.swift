/// Why the fast codec did not decode (or encode) a value.
///
/// `WireJSON` never lets one of these escape: on any failure it runs Foundation's coder on
/// the same input, which throws the error callers have always seen (or, for the few forms the
/// fast codec leaves to Foundation, succeeds). Tests compare `decodingError` with Foundation's.
struct FastJSONError: Error {
    /// The kind of value a decoder expected, for `typeMismatch`/`valueNotFound`.
    enum Expected: Sendable {
        case string, int, int64, bool, array, object, json

        var type: Any.Type {
            switch self {
            case .string: String.self
            case .int: Int.self
            case .int64: Int64.self
            case .bool: Bool.self
            case .array: [Any].self
            case .object: [String: Any].self
            case .json: JSONValue.self
            }
        }
    }

    enum Kind: Sendable {
        /// Not valid JSON (Foundation reports these at the top level).
        case syntax
        /// Valid JSON whose decoding this codec leaves to Foundation (integers of 2^53 or more
        /// written with a fraction or exponent, which Foundation reads through `Decimal`;
        /// non-finite doubles when encoding).
        case unsupported
        case typeMismatch(Expected)
        case valueNotFound(Expected)
        case keyNotFound(String)
        case corrupted(String)
    }

    var kind: Kind
    /// The coding path, innermost key first (keys are added while the error unwinds, so the
    /// success path never builds a path).
    var reversedPath: [FastCodingKey] = []

    init(_ kind: Kind) { self.kind = kind }

    static let syntax = FastJSONError(.syntax)
    static let unsupported = FastJSONError(.unsupported)

    var codingPath: [any CodingKey] { reversedPath.reversed() }

    /// The error in Foundation's terms.
    var decodingError: DecodingError {
        let context = { (description: String) in DecodingError.Context(codingPath: codingPath, debugDescription: description) }
        switch kind {
        case .syntax:
            return .dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: "The given data was not valid JSON."))
        case .unsupported:
            return .dataCorrupted(context("The fast JSON codec leaves this value to Foundation."))
        case .typeMismatch(let expected):
            return .typeMismatch(expected.type, context("Expected to decode \(expected.type) but found another kind of value."))
        case .valueNotFound(let expected):
            return .valueNotFound(expected.type, context("Expected \(expected.type) value but found null instead."))
        case .keyNotFound(let key):
            return .keyNotFound(FastCodingKey(key), context("No value associated with key \"\(key)\"."))
        case .corrupted(let description):
            return .dataCorrupted(context(description))
        }
    }
}

/// A coding-path component: an object key, or an array index (`Index N`, as Foundation names
/// them).
struct FastCodingKey: CodingKey, Sendable {
    let stringValue: String
    let intValue: Int?

    init(_ key: String) {
        stringValue = key
        intValue = nil
    }

    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }

    init?(stringValue: String) { self.init(stringValue) }

    init?(intValue: Int) { self.init(index: intValue) }
}
