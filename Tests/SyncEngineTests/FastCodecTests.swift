import Foundation
import Testing
import TestSupport
@testable import SyncEngine

/// The fast codec against Foundation: the same bytes out, the same values in, the same
/// inputs refused. Foundation (`WireJSON.encoder()`/`decoder()`) is the reference throughout.
@Suite("Fast codec")
struct FastCodecTests {
    // MARK: Helpers

    static func foundationBytes(_ value: some Encodable) throws -> [UInt8] { Array(try WireJSON.encoder().encode(value)) }

    static func foundationDecode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        try WireJSON.decoder().decode(type, from: Data(bytes))
    }

    /// The fast codec alone, without the fallback to Foundation.
    static func fastDecode<T: FastWireCodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        try bytes.withUnsafeBytes { try FastJSON.decode(type, from: $0) }
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Encodes with both codecs (same bytes), decodes the text with both (same value, equal to
    /// what Foundation makes of it), and reads the fast text back with Foundation.
    static func checkAgreement<T: FastWireCodable & Equatable>(_ value: T, _ context: String) throws {
        let foundation = try foundationBytes(value)
        let fast = try FastJSON.encode(value)
        try #require(fast == foundation, "\(context): fast \(text(fast)) ≠ Foundation \(text(foundation))")
        if let json = value as? JSONValue {
            // Validation counts a JSON column's bytes without encoding it.
            try #require(json.encodedByteCount == foundation.count, "\(context): counted \(json.encodedByteCount ?? -1) bytes, encoded \(foundation.count)")
            // The validator's one-pass count: the same, or nil exactly when the value holds U+0000.
            let expectedWithoutNUL = json.containsNUL ? nil : foundation.count
            try #require(json.encodedByteCountWithoutNUL == expectedWithoutNUL, "\(context): NUL-checking count \(json.encodedByteCountWithoutNUL ?? -1)")
        }
        let expected = try foundationDecode(T.self, foundation)
        do {
            let decoded = try fastDecode(T.self, foundation)
            try #require(decoded == expected, "\(context): fast read \(decoded), Foundation \(expected) from \(text(foundation))")
        } catch let error as FastJSONError {
            // Integers of 2^53 or more written as doubles: Foundation's answer goes through
            // Decimal, and the fast codec hands them over.
            guard case .unsupported = error.kind else {
                Issue.record("\(context): fast codec refused \(text(foundation)): \(error.decodingError)")
                return
            }
        }
        try #require(try WireJSON.decode(T.self, from: Data(foundation)) == expected, "\(context)")
        try #require(try WireJSON.decode(T.self, from: text(foundation)) == expected, "\(context)")
        try #require(try foundationDecode(T.self, fast) == expected, "\(context)")
    }

    // MARK: Fixtures and fixed cases

    /// `sync_meta` as stored: columns grouped under their stamp, groups in stamp order,
    /// columns in byte order, empty members left out; the first form is still read.
    @Test func rowMetaStoredForm() throws {
        let a = ReplicaID("dev-a"), b = ReplicaID("dev-b")
        let early = Stamp(hlc: HLC(rawValue: 0x018b_cfe5_6800_0001), replica: b)
        let late = Stamp(hlc: HLC(rawValue: 0x018b_cfe5_6800_0002), replica: a)
        let meta = RowMeta(
            vv: VersionVector([a: late.hlc, b: early.hlc]),
            stamps: ["title": late, "agent": early, "model": early, "created_at": early, "Zed": early],
            counters: [:], tombstone: nil)
        let stored = #"{"stamped":{"018bcfe568000001@dev-b":["Zed","agent","created_at","model"],"018bcfe568000002@dev-a":["title"]},"vv":{"dev-a":"018bcfe568000002","dev-b":"018bcfe568000001"}}"#
        #expect(try WireJSON.encodeString(meta) == stored)
        #expect(Self.text(try Self.foundationBytes(meta)) == stored)
        #expect(try WireJSON.decode(RowMeta.self, from: stored) == meta)

        // Rows stored before the grouped form read as they are.
        let first = #"{"counters":{},"stamps":{"Zed":"018bcfe568000001@dev-b","agent":"018bcfe568000001@dev-b","created_at":"018bcfe568000001@dev-b","model":"018bcfe568000001@dev-b","title":"018bcfe568000002@dev-a"},"vv":{"dev-a":"018bcfe568000002","dev-b":"018bcfe568000001"}}"#
        #expect(try WireJSON.decode(RowMeta.self, from: first) == meta)
        #expect(try Self.foundationDecode(RowMeta.self, Array(first.utf8)) == meta)

        // A tombstone and counters.
        let deleted = RowMeta(vv: VersionVector([a: late.hlc]), tombstone: late)
        #expect(try WireJSON.encodeString(deleted) == #"{"tombstone":"018bcfe568000002@dev-a","vv":{"dev-a":"018bcfe568000002"}}"#)
        var counted = RowMeta(vv: VersionVector([a: late.hlc]), stamps: ["x": late])
        counted.counters = try WireJSON.decode([String: Counter].self, from: #"{"n":{"dev-a":3}}"#)
        #expect(try WireJSON.encodeString(counted) == #"{"counters":{"n":{"dev-a":3}},"stamped":{"018bcfe568000002@dev-a":["x"]},"vv":{"dev-a":"018bcfe568000002"}}"#)
        #expect(try WireJSON.decode(RowMeta.self, from: try WireJSON.encodeString(counted)) == counted)
    }

    @Test func goldenFixturesThroughTheFastCodec() throws {
        #expect(Self.text(try FastJSON.encode(WireProtocolTests.pushRequest)) == WireProtocolTests.pushRequestJSON)
        #expect(try FastJSON.decode(PushRequest.self, from: WireProtocolTests.pushRequestJSON) == WireProtocolTests.pushRequest)
        #expect(Self.text(try FastJSON.encode(WireProtocolTests.pushResponse)) == WireProtocolTests.pushResponseJSON)
        #expect(try FastJSON.decode(PushResponse.self, from: WireProtocolTests.pushResponseJSON) == WireProtocolTests.pushResponse)
        #expect(Self.text(try FastJSON.encode(WireProtocolTests.pullResponse)) == WireProtocolTests.pullResponseJSON)
        #expect(try FastJSON.decode(PullResponse.self, from: WireProtocolTests.pullResponseJSON) == WireProtocolTests.pullResponse)
    }

    @Test func wireJSONDispatchesOnlyTheSyncTypes() {
        #expect(FastJSON.encodeIfFast(WireProtocolTests.pushRequest) != nil)
        #expect(FastJSON.encodeIfFast(["a", "b"]) != nil)
        #expect(FastJSON.encodeIfFast(WireProtocolTests.errorBody) == nil)
        #expect(FastJSON.encodeIfFast([1, 2]) == nil)
        #expect(FastJSON.encodeIfFast(["a": Int64(1)]) == nil)
        Array(WireProtocolTests.pushRequestJSON.utf8).withUnsafeBytes { bytes in
            #expect(FastJSON.decodeIfFast(PushRequest.self, from: bytes) == WireProtocolTests.pushRequest)
            #expect(FastJSON.decodeIfFast(ErrorBody.self, from: bytes) == nil)
        }
        Array(#"{"changes":[],"protocolVersion":1,"replicaID":"dev a"}"#.utf8).withUnsafeBytes { bytes in
            #expect(FastJSON.decodeIfFast(PushRequest.self, from: bytes) == nil)
        }
    }

    @Test func keyOrderMatchesFoundation() throws {
        let keys = ["b", "B", "a", "A", "10", "9", "1", "01", "_", "-", "~", "", "a b", "aa", "é", "e\u{301}", "e\u{301}a", "f",
                    "ÿ", "ı", "I", "i", "ß", "ss", "日本", "\u{2028}", "ﬀ", "😀", "\u{212B}", "Å", "\u{1}", "\"", "\\", "/"]
        var object: [String: JSONValue] = [:]
        for (n, key) in keys.enumerated() { object[key] = .int(Int64(n)) }
        try Self.checkAgreement(JSONValue.object(object), "keys")
        try Self.checkAgreement(Counter(Dictionary(uniqueKeysWithValues: Pool.orderReplicas.enumerated().map { ($1, Int64($0 + 1)) })), "replicas")
    }

    @Test func stringEscapesMatchFoundation() throws {
        var scalars = (0...0x7F).map { Character(Unicode.Scalar(UInt8($0))) }
        scalars += ["é", "e\u{301}", "😀", "\u{2028}", "\u{2029}", "\u{FEFF}", "\u{FFFE}", "\u{10FFFF}", "日"]
        for character in scalars {
            try Self.checkAgreement(JSONValue.string("a\(character)b"), "U+\(character.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        try Self.checkAgreement(JSONValue.string(String(scalars)), "all")
    }

    @Test func numbersMatchFoundation() throws {
        let doubles: [Double] = [0.1, 1e-7, 1.5e300, -2.5, 0.5, 1e-5, 0.0001, 123456789.123, .leastNonzeroMagnitude, .leastNormalMagnitude,
                                 .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 3.0e15 + 0.5, 1e21, 1e17, 9.3e18, -9.3e18,
                                 1.0 / 3, .pi, -0.0, 2.0]
        for double in doubles {
            try Self.checkAgreement(JSONValue.number(double), "\(double)")
            try Self.checkAgreement(JSONValue.double(double), "raw \(double)")
        }
        for int: Int64 in [0, 1, -1, 9, 10, -10, .max, .min, .max - 1, .min + 1, 9_007_199_254_740_993, -9_007_199_254_740_993] {
            try Self.checkAgreement(JSONValue.int(int), "\(int)")
        }
    }

    @Test func nonFiniteDoublesFailAsInFoundation() {
        #expect(JSONValue.double(.nan).encodedByteCount == nil)
        #expect(JSONValue.object(["a": [1, .double(-.infinity)]]).encodedByteCount == nil)
        #expect(throws: EncodingError.self) { try WireJSON.encode(JSONValue.double(.nan)) }
        #expect(throws: EncodingError.self) { try WireJSON.encodeString(JSONValue.array([.double(.infinity)])) }
    }

    @Test func theThreeInputOverloadsAgree() throws {
        let text = WireProtocolTests.pushRequestJSON
        #expect(try WireJSON.decode(PushRequest.self, from: text) == WireProtocolTests.pushRequest)
        #expect(try WireJSON.decode(PushRequest.self, from: Data(text.utf8)) == WireProtocolTests.pushRequest)
        #expect(try WireJSON.decode(PushRequest.self, utf8: Array(text.utf8)) == WireProtocolTests.pushRequest)
        #expect(try WireJSON.decode(PushRequest.self, utf8: text.utf8) == WireProtocolTests.pushRequest)
        #expect(try WireJSON.decode(ErrorBody.self, utf8: Array(WireProtocolTests.errorBodyJSON.utf8)) == WireProtocolTests.errorBody)
    }

    @Test func inputInOtherEncodingsGoesToFoundation() throws {
        let utf16 = Data([0xFF, 0xFE] + Array("[1,\"é\"]".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        let value = try WireJSON.decode(JSONValue.self, from: utf16)
        #expect(value == [1, "é"])
        #expect(value == (try WireJSON.decoder().decode(JSONValue.self, from: utf16)))
    }

    // MARK: Properties

    @Test func randomJSONValuesAgree() throws {
        var run = PropertyRun()
        try run.forAll(1_500) { rng, context in
            try Self.checkAgreement(rng.wildJSON(depth: 4), context)
        }
    }

    @Test func randomSyncMessagesAgree() throws {
        var run = PropertyRun()
        try run.forAll(400) { rng, context in
            let changes = (0..<rng.int(0...4)).map { _ in rng.wildRowChange() }
            for change in changes {
                try Self.checkAgreement(change, context)
                try Self.checkAgreement(RowMeta(of: change), context)
                try Self.checkAgreement(change.vv, context)
            }
            try Self.checkAgreement(PushRequest(replicaID: rng.pick(Pool.orderReplicas), changes: changes), context)
            let conflicts = (0..<rng.int(0...2)).map { _ in rng.conflict() }
            let page = PullResponse(changes: changes, cursor: rng.int64(0...Int64.max), hasMore: rng.chance(0.5), conflicts: conflicts)
            try Self.checkAgreement(page, context)
            try Self.checkAgreement(LiveMessage(changes: page, after: rng.int64(0...Int64.max)), context)
            try Self.checkAgreement(LiveMessage(cursor: rng.int64(-1...Int64.max)), context)
            let outcomes: [PushOutcome] = [.inserted, .updated, .deleted, .unchanged, .parentDeleted]
            try Self.checkAgreement(
                PushResponse(
                    results: changes.map { PushResult(table: $0.table, id: $0.id, outcome: rng.pick(outcomes)) }, conflicts: rng.int(0...9)),
                context)
            try Self.checkAgreement(changes.map(\.id), context)
        }
    }

    // MARK: Refusals

    /// One input for one type: the production path (`WireJSON.decode`) must throw exactly when
    /// Foundation does, with Foundation's message; the fast codec alone must never accept what
    /// Foundation refuses, nor read a different value.
    struct Case: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let check: @Sendable () throws -> Void

        /// `fastRefuses`: the fast codec alone refuses this valid input (it is stricter, or
        /// leaves it to Foundation). `ownSummary`: the fast codec's own error reads like
        /// Foundation's (`missing key "table" at changes.0`).
        init<T: FastWireCodable & Equatable & Sendable>(
            _ type: T.Type, _ json: String, fastRefuses: Bool = false, ownSummary: Bool = true
        ) {
            self.init(type, bytes: Array(json.utf8), label: json, fastRefuses: fastRefuses, ownSummary: ownSummary)
        }

        init<T: FastWireCodable & Equatable & Sendable>(
            _ type: T.Type, bytes: [UInt8], label: String, fastRefuses: Bool = false, ownSummary: Bool = true
        ) {
            testDescription = "\(T.self): \(label.prefix(120))"
            check = {
                let foundation = Result { try FastCodecTests.foundationDecode(T.self, bytes) }
                let production = Result { try WireJSON.decode(T.self, from: Data(bytes)) }
                let fast = Result { try FastCodecTests.fastDecode(T.self, bytes) }
                switch (foundation, production) {
                case (.success(let expected), .success(let value)):
                    #expect(value == expected)
                case (.failure(let expected), .failure(let error)):
                    #expect(FastCodecTests.summary(error) == FastCodecTests.summary(expected))
                case (.success, .failure(let error)):
                    Issue.record("Foundation reads it, WireJSON throws \(error)")
                case (.failure(let expected), .success(let value)):
                    Issue.record("Foundation throws \(FastCodecTests.summary(expected)), WireJSON reads \(value)")
                }
                switch (foundation, fast) {
                case (.success(let expected), .success(let value)):
                    #expect(value == expected)
                    #expect(!fastRefuses, "the fast codec reads it after all")
                case (.success, .failure(let error)):
                    #expect(fastRefuses, "the fast codec refuses valid input: \(FastCodecTests.summary(error))")
                case (.failure(let expected), .failure(let error)):
                    if ownSummary { #expect(FastCodecTests.summary(error) == FastCodecTests.summary(expected)) }
                case (.failure(let expected), .success(let value)):
                    Issue.record("the fast codec reads \(value) where Foundation throws \(FastCodecTests.summary(expected))")
                }
            }
        }
    }

    /// `DecodingError.summary` as the server words it (SyncServer's copy).
    static func summary(_ error: any Error) -> String {
        let error = (error as? FastJSONError)?.decodingError ?? error
        guard let error = error as? DecodingError else { return "not a DecodingError: \(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "at the top level" : "at \(path)"
        }
        switch error {
        case .typeMismatch(_, let context): return "wrong type \(path(context))"
        case .valueNotFound(_, let context): return "missing value \(path(context))"
        case .keyNotFound(let key, let context): return "missing key \"\(key.stringValue)\" \(path(context))"
        case .dataCorrupted(let context): return "\(context.debugDescription) \(path(context))"
        @unknown default: return "malformed"
        }
    }

    /// For these the fast codec's own error may be worded differently (Foundation lexes a
    /// malformed number or string loosely and reports a type mismatch where it fails to convert
    /// it); through `WireJSON` the error is Foundation's.
    static let jsonCases: [Case] = [
        // Scalars and numbers.
        "null", "true", "false", "0", "-0", "-0.0", "1.0", "1e3", "1E2", "1e+2", "1E-2", "1e05", "2.5E-1", "0.5", "-0e0",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616",
        "123456789012345678901234567890", "9.3e18", "1e-400", "-1e-400", "5e-324", "1.00000000000000000001", "100000000000000000000.0",
        "1e400", "-1e400", "01", "-01", "00", "+1", "1.", ".5", "1e", "1e+", "-", "--1", "0x10", "NaN", "Infinity", "-Infinity",
        "[01.5]", "[-]", "1 2", "tru", "nul", "True", "true false",
        // Strings.
        #""x""#, #""\x""#, #""\/""#, #""\u00e9\u00E9""#, #""\u0000""#, #""\uD83D\uDE00""#, #""\ud800""#, #""\udc00""#,
        #""\ud800\u0041""#, #""\ud800\""#, #""\uDEAD""#, #""\U0041""#, #""\u12""#, #""\u12G4""#, "\"a\tb\"", "\"a\nb\"",
        "\"\u{7F}\"", "\"\u{1F}\"", #""abc"#, "'a'", #""\"#,
        // Structure.
        "[1,]", #"{"a":1,}"#, "[,]", "[1,,]", "{,}", #"{"a":1,,}"#, "[1 ,]", "[1,\n]", #"{"a":1 ,}"#, "[]", "{}", "[ ]", "{ }",
        #"{"a":1,"a":2}"#, #"{"a":1,"a":"x"}"#, #"{"e\u0301":1,"\u00e9":2}"#, #"{"a" 1}"#, "{a:1}", #"{"a":}"#, #"{"a"}"#,
        "[1] x", "[1]  \n", " [1]", "\u{FEFF}[1]", "[1]\u{0}", "[", "", " ", "[1,2", "[\u{A0}1]", "[\r\n\t1]", "[1]\u{A0}",
        #"[[1,],]"#, #"{"a":{"b":[]}}"#,
        String(repeating: "[", count: 512) + String(repeating: "]", count: 512),
        String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
        String(repeating: "{\"a\":", count: 513) + "1" + String(repeating: "}", count: 513),
        String(repeating: "[", count: 100_000),
        #"{"a":1,"a":1e999}"#, #"{"a":1,"a":[1,}"#,
    ].map { Case(JSONValue.self, $0, ownSummary: false) } + [
        // Invalid UTF-8, overlong forms, encoded surrogates, beyond U+10FFFF.
        [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xE0, 0x80, 0x80, 0x22],
        [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xF0, 0x9F, 0x98, 0x22], [0x22, 0xC3, 0xA9, 0x22],
        [0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22], [0xEF, 0xBB, 0xBF, 0x5B, 0x31, 0x5D],
    ].map { Case(JSONValue.self, bytes: $0, label: "\($0)", ownSummary: false) } + [
        // Forms the fast codec leaves to Foundation (which reads them through Decimal).
        Case(JSONValue.self, "9.2e18", fastRefuses: true), Case(JSONValue.self, "-9223372036854775809", fastRefuses: true),
        Case(JSONValue.self, "1e18", fastRefuses: true), Case(JSONValue.self, "12345678901234567.5", fastRefuses: true),
        Case(JSONValue.self, bytes: [0xFE, 0xFF, 0, 0x5B, 0, 0x31, 0, 0x5D], label: "UTF-16BE", fastRefuses: true),
        Case(JSONValue.self, bytes: [0x5B, 0, 0x31, 0, 0x5D, 0], label: "UTF-16LE", fastRefuses: true),
    ]

    static let push = #"{"changes":[%@],"protocolVersion":1,"replicaID":"dev-a"}"#
    static func push(_ change: String) -> String { push.replacingOccurrences(of: "%@", with: change) }

    static let typedCases: [Case] = WireProtocolTests.malformedPushRequests.map { Case(PushRequest.self, $0) } + [
        // Missing keys and wrong types at every level.
        push(#"{"id":"m1","vv":{}}"#), push(#"{"table":"m","vv":{}}"#), push(#"{"id":"m1","table":5}"#),
        push(#"{"id":null,"table":"m"}"#), push(#"{"id":"m1","table":"m","vv":5}"#), push(#"{"id":"m1","table":"m","vv":null}"#),
        push(#"{"id":"m1","table":"m","vv":{"dev-a":null}}"#), push(#"{"id":"m1","table":"m","tombstone":null}"#),
        push(#"{"id":"m1","table":"m","tombstone":5}"#), push(#"{"id":"m1","table":"m","fields":[]}"#),
        push(#"{"id":"m1","table":"m","fields":null,"counters":null}"#),
        push(#"{"fields":{"title":{"v":"x"}},"id":"s1","table":"s"}"#), push(#"{"fields":{"title":{"t":"018bcfe568000001@dev-a"}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@dev-a","v":null}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@dev-a","v":1e999}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@dev-a","v":[1,{"a":NaN}]}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@dev a","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@@dev","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@\u0064ev","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe56800000\u0031@dev","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"\u0030018bcfe56800001@dev","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@\u00e9","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@\#(String(repeating: "a", count: 65))","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"fields":{"title":{"t":"018bcfe568000001@\#(String(repeating: "a", count: 64))","v":1}},"id":"s1","table":"s"}"#),
        push(#"{"counters":{"n":{"dev-a":"1"}},"id":"s1","table":"s"}"#), push(#"{"counters":{"n":{"dev a":1}},"id":"s1","table":"s"}"#),
        push(#"{"counters":{"n":{"dev-a":1.5}},"id":"s1","table":"s"}"#), push(#"{"counters":{"n":{"dev-a":2.0}},"id":"s1","table":"s"}"#),
        push(#"{"counters":{"n":{"dev-a":0}},"id":"s1","table":"s"}"#), push(#"{"counters":{"n":{"dev-a":1,"dev-a":2}},"id":"s1","table":"s"}"#),
        push(#"{"counters":{"n":{"dev-a":9223372036854775808}},"id":"s1","table":"s"}"#),
        push(#"{"counters":{"n":null},"id":"s1","table":"s"}"#),
        push(#"{"id":"m1","table":"m","vv":{"dev-a":"018bcfe568000001","dev b":"018bcfe568000001"}}"#),
        push(#"{"id":"m1","table":"m","vv":{"dev-a":"018bcfe568000001","dev-a":"018bcfe568000002"}}"#),
        push(#"{"id":"m1","table":"m","vv":{"dev-a":"0000000000000000"}}"#),
        push(#"{"id":"m1","table":"m","vv":{"d\u0065v-a":"018bcfe568000001"}}"#),
        push(#"{"id":"m1","t\u0061ble":"m"}"#), push(#"{"id":"m1","table":"m","table":"n"}"#),
        push(#"{"id":"m1","table":"m","vv":{},}"#), push(#"{"id":"m1","table":"m","x":[1,{"y":null}]}"#),
        push(#"{"id":"m1","table":"m"}"#) + " ", push(#"{"id":"m1","table":"m"}"#) + "x",
        #"{"changes":[],"protocolVersion":"1","replicaID":"dev-a"}"#, #"{"changes":[],"protocolVersion":1.0,"replicaID":"dev-a"}"#,
        #"{"changes":[],"protocolVersion":1.5,"replicaID":"dev-a"}"#, #"{"changes":[],"protocolVersion":null,"replicaID":"dev-a"}"#,
        #"{"changes":{},"protocolVersion":1,"replicaID":"dev-a"}"#, #"{"changes":[],"protocolVersion":1,"replicaID":5}"#,
        #"{"changes":[],"protocolVersion":1}"#, #"[]"#, "null", #"{"changes":[null],"protocolVersion":1,"replicaID":"dev-a"}"#,
        #"{"changes":[],"protocolVersion":1,"replicaID":"dev-a""#, #"{"changes":[],"protocolVersion":1,"replicaID":"dev-a"}}"#,
    ].map { Case(PushRequest.self, $0) } + [
        // Stricter than Foundation, which never looks at values it skips: WireJSON hands these over.
        Case(PushRequest.self, push(#"{"id":"m1","table":"m","x":"\q"}"#), fastRefuses: true),
        Case(PushRequest.self, push(#"{"id":"m1","table":"m","x":01}"#), fastRefuses: true),
        Case(PushRequest.self, push(#"{"id":"m1","table":"m","x":"\ud800"}"#), fastRefuses: true),
        Case(PushRequest.self, push(#"{"id":"m1","table":"m","table":5}"#) + "", fastRefuses: false),
        Case(PushRequest.self, push(#"{"id":"m1","table":"m","vv":{"K":"018bcfe568000001","\u212A":"018bcfe568000002"}}"#), fastRefuses: true),
        Case(PushRequest.self, bytes: Array(push(#"{"id":"m1","table":"m","x":"#).utf8) + [0x22, 0xFF, 0x22, 0x7D, 0x5D] + Array(#","protocolVersion":1,"replicaID":"dev-a"}"#.utf8),
             label: "bad UTF-8 in an unknown value", fastRefuses: true),
        Case(PushRequest.self, push(#"{"fields":{"t":{"t":"018bcfe568000001@dev-a","v":1,"v":1e999}},"id":"s1","table":"s"}"#)),
        Case(PushRequest.self, push(#"{"fields":{"t":{"t":"018bcfe568000001@dev-a","v":1},"t":5},"id":"s1","table":"s"}"#)),
        Case(PushRequest.self, push(#"{"id":"m1","table":"m","vv":{"dev-a":"018bcfe568000001","dev-a":5}}"#)),
    ] + [
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1}"#,
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1,"conflicts":null}"#,
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1,"conflicts":[]}"#,
        #"{"changes":[],"cursor":1,"hasMore":0,"protocolVersion":1}"#, #"{"changes":[],"cursor":-1,"hasMore":false,"protocolVersion":1}"#,
        #"{"changes":[],"cursor":1,"protocolVersion":1}"#, #"{"changes":[],"cursor":1e2,"hasMore":true,"protocolVersion":1}"#,
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1,"conflicts":[{"kind":"concurrent_write","rowID":"r","table":"t"}]}"#,
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1,"conflicts":[{"kind":"merged","rowID":"r","table":"t"}]}"#,
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1,"conflicts":[{"kind":"duplicate_row","table":"t"}]}"#,
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1,"conflicts":[{"column":null,"kind":"parent_deleted","loser":null,"loserStamp":null,"rowID":"r","table":"t","winner":{"a":[1]},"winnerStamp":"018bcfe568000001@dev-a"}]}"#,
        #"{"changes":[],"cursor":1,"hasMore":false,"protocolVersion":1,"conflicts":[{"kind":"parent_deleted","loserStamp":"x","rowID":"r","table":"t"}]}"#,
    ].map { Case(PullResponse.self, $0) } + [
        #"{"conflicts":0,"protocolVersion":1,"results":[{"id":"s1","outcome":"merged","table":"sessions"}]}"#,
        #"{"conflicts":0,"protocolVersion":1,"results":[{"id":"s1","outcome":"parent_deleted","table":"sessions"}]}"#,
        #"{"conflicts":0,"protocolVersion":1,"results":[{"id":"s1","table":"sessions"}]}"#,
    ].map { Case(PushResponse.self, $0) } + [
        #"{"cursor":1,"type":"poke"}"#, #"{"cursor":1}"#, #"{"type":"poke"}"#, #"{"cursor":"1","type":"poke"}"#,
        #"{"after":null,"changes":null,"conflicts":null,"cursor":1,"type":"poke"}"#,
        #"{"after":1,"changes":[],"cursor":2,"type":"changes"}"#, #"{"after":1.5,"changes":[],"cursor":2,"type":"changes"}"#,
        #"{"after":1,"changes":{},"cursor":2,"type":"changes"}"#, #"{"after":1,"changes":[{"table":"sessions"}],"cursor":2,"type":"changes"}"#,
        #"{"after":1,"changes":[],"conflicts":[{"kind":"merged","rowID":"r","table":"t"}],"cursor":2,"type":"changes"}"#,
        #"{"after":1,"changes":[],"cursor":2,"type":7}"#, #"{"after":1,"after":2,"changes":[],"cursor":3,"type":"changes"}"#,
    ].map { Case(LiveMessage.self, $0) } + [
        #"{"vv":{}}"#, #"{"stamps":{}}"#, #"{"vv":null}"#, #"{"counters":{},"stamps":{"a":"018bcfe568000001@dev-a"},"vv":{}}"#,
        #"{"stamps":{"a":"018bcfe568000001@dev-a","a":"x"},"vv":{}}"#, #"{"stamps":{"a":"x"},"vv":{}}"#, #"{"stamps":null,"tombstone":null,"vv":{}}"#,
        // The grouped form (`stamped`), alone and beside the first form.
        #"{"stamped":{"018bcfe568000001@dev-a":["a","b"],"018bcfe568000002@dev-b":["c"]},"vv":{}}"#,
        #"{"stamped":{"018bcfe568000001@dev-a":["a","a"]},"vv":{}}"#,
        #"{"stamped":{"018bcfe568000001@dev-a":["a"],"018bcfe568000002@dev-a":["a"]},"vv":{}}"#,
        #"{"stamped":{"x":["a"]},"vv":{}}"#, #"{"stamped":{"018bcfe568000001@dev-a":"a"},"vv":{}}"#,
        #"{"stamped":{"018bcfe568000001@dev-a":[1]},"vv":{}}"#, #"{"stamped":null,"vv":{}}"#, #"{"stamped":{},"vv":{}}"#,
        #"{"stamped":{"018bcfe568000001@dev-a":["b"]},"stamps":{"a":"018bcfe568000001@dev-a"},"vv":{}}"#,
        #"{"stamped":{"018bcfe568000001@dev-a":["a"]},"stamps":{"a":"018bcfe568000001@dev-a"},"vv":{}}"#,
        #"{"stamped":{"018bcfe568000001@dev-a":["a"],"018bcfe568000001@dev-a":["b"]},"vv":{}}"#,
        #"{"stamped":{"018bcfe568000001@dev-a":["a"]}}"#,
    ].map { Case(RowMeta.self, $0) } + [
        #"["a","b"]"#, #"["a",1]"#, #"[]"#, #"{}"#, #"["a",]"#,
    ].map { Case([String].self, $0) }

    @Test(arguments: jsonCases)
    func jsonInputsAreRefusedAsFoundationRefusesThem(_ input: Case) throws {
        try input.check()
    }

    @Test(arguments: typedCases)
    func typedInputsAreRefusedAsFoundationRefusesThem(_ input: Case) throws {
        try input.check()
    }

    @Test func typedErrorsNameTheirPath() throws {
        func summary(_ json: String) -> String {
            do {
                _ = try FastJSON.decode(PushRequest.self, from: json)
                return "decoded"
            } catch {
                return Self.summary(error)
            }
        }
        #expect(summary(Self.push(#"{"id":"m1","vv":{}}"#)) == #"missing key "table" at changes.0"#)
        #expect(summary(Self.push(#"{"id":"m1","table":"m","vv":5}"#)) == "wrong type at changes.0.vv")
        #expect(summary(Self.push(#"{"id":"m1","table":"m","tombstone":"yesterday"}"#)) == "\(Stamp.expectation) at changes.0.tombstone")
        #expect(summary(Self.push(#"{"id":"m1","table":"m","vv":{"dev-a":"x"}}"#)) == "\(HLC.expectation) at changes.0.vv.dev-a")
        #expect(summary(#"{"changes":[],"protocolVersion":1,"replicaID":"dev a"}"#) == "\(ReplicaID.expectation) at replicaID")
    }
}

// MARK: - Wilder generators than the schema-bound ones

extension SeededRandom {
    /// Text from a pool of awkward characters: controls, quotes, backslash, slash, DEL,
    /// combining marks, emoji, line separators, CJK.
    mutating func wildString(maxLength: Int = 6) -> String {
        let pool: [Unicode.Scalar] = ["a", "b", "Z", "0", "9", "_", "-", " ", "/", "\"", "\\", "\u{0}", "\u{1}", "\u{8}", "\u{9}", "\u{A}",
                                      "\u{B}", "\u{C}", "\u{D}", "\u{1F}", "\u{7F}", "é", "\u{301}", "ß", "😀", "\u{2028}", "日",
                                      "\u{FEFF}", "\u{10FFFF}", "ﬀ"]
        var text = String.UnicodeScalarView()
        for _ in 0..<int(0...maxLength) { text.append(pick(pool)) }
        return String(text)
    }

    mutating func wildNumber() -> JSONValue {
        switch int(0...6) {
        case 0: return .int(pick([Int64.max, Int64.min, 0, -1, 1, Int64.max - 1, Int64.min + 1]))
        case 1: return .int(Int64(bitPattern: next()))
        case 2: return .int(int64(-1_000...1_000))
        case 3: return .number(Double(int(-100_000...100_000)) / pick([10, 8, 1e7, 3, 1e-300]))
        case 4: return .number(pick([0.1, 1e-7, 1.5e300, -2.5, .leastNonzeroMagnitude, 1e21, 1e17, 9.3e18, -0.5, 1e-5]))
        default:
            var double = Double(bitPattern: next())
            while !double.isFinite { double = Double(bitPattern: next()) }
            return .number(double)
        }
    }

    mutating func wildJSON(depth: Int) -> JSONValue {
        switch int(0...(depth <= 0 ? 4 : 7)) {
        case 0: return .null
        case 1: return .bool(chance(0.5))
        case 2, 3: return wildNumber()
        case 4: return .string(wildString())
        case 5: return .array((0..<int(0...4)).map { _ in wildJSON(depth: depth - 1) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<int(0...5) { object[wildString(maxLength: 3)] = wildJSON(depth: depth - 1) }
            return .object(object)
        }
    }

    mutating func wildStamp() -> Stamp { Stamp(hlc: anyHLC(), replica: pick(Pool.orderReplicas)) }

    mutating func wildRowChange() -> RowChange {
        var vv = VersionVector()
        for replica in subset(Pool.orderReplicas, 0.3) { vv.record(Stamp(hlc: anyHLC(), replica: replica)) }
        if chance(0.2) {
            return RowChange(table: wildString(), id: wildString(), vv: vv, tombstone: wildStamp())
        }
        var fields: [String: FieldValue] = [:]
        for _ in 0..<int(0...4) { fields[wildString(maxLength: 4)] = FieldValue(wildJSON(depth: 2), stamp: wildStamp()) }
        var counters: [String: Counter] = [:]
        for _ in 0..<int(0...3) {
            var contributions: [ReplicaID: Int64] = [:]
            for replica in subset(Pool.orderReplicas, 0.3) { contributions[replica] = chance(0.2) ? Int64.max : int64(1...1_000_000) }
            counters[CounterKey.make(column: wildString(maxLength: 3), key: chance(0.5) ? wildString(maxLength: 3) : nil)] = Counter(contributions)
        }
        return RowChange(table: pick(["sessions", "messages", wildString()]), id: wildString(), vv: vv, fields: fields, counters: counters)
    }

    mutating func conflict() -> Conflict {
        let kinds: [Conflict.Kind] = [.concurrentWrite, .updateLostToDelete, .parentDeleted, .duplicateRow]
        // A nil value stays nil; `.some(.null)` would read back as nil, as in Foundation.
        func value(_ rng: inout SeededRandom) -> JSONValue? {
            guard rng.chance(0.6) else { return nil }
            let value = rng.wildJSON(depth: 2)
            return value.isNull ? .int(0) : value
        }
        return Conflict(
            kind: pick(kinds), table: wildString(), rowID: wildString(), column: chance(0.5) ? wildString() : nil,
            winner: value(&self), winnerStamp: chance(0.5) ? wildStamp() : nil, loser: value(&self),
            loserStamp: chance(0.5) ? wildStamp() : nil)
    }
}
