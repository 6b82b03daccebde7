import Foundation
import Testing
import TestSupport
@testable import SyncEngine

/// Golden fixtures: the exact JSON of each message, so a change to the wire format is a
/// deliberate, visible edit here.
@Suite("Wire protocol")
struct WireProtocolTests {
    static let devA = ReplicaID("dev-a"), devB = ReplicaID("dev-b")
    static let h1 = HLC(millis: 1_700_000_000_000, counter: 1) // 018bcfe568000001
    static let h2 = HLC(millis: 1_700_000_000_001) // 018bcfe568010000

    static let pushRequest = PushRequest(
        replicaID: devA,
        changes: [
            RowChange(
                table: "sessions", id: "s1", vv: VersionVector([devA: h2]),
                fields: [
                    "title": FieldValue("Hi/there", stamp: Stamp(hlc: h1, replica: devA)),
                    "archived_at": FieldValue(nil, stamp: Stamp(hlc: h2, replica: devA)),
                ],
                counters: [
                    "total_input_tokens": Counter([devA: 12]),
                    "tool_counts_json.bash": Counter([devA: 2, devB: 1]),
                ]),
            RowChange(
                table: "messages", id: "m1", vv: VersionVector([devA: h2, devB: h1]),
                tombstone: Stamp(hlc: h2, replica: devA)),
        ])
    static let pushRequestJSON = #"{"changes":[{"counters":{"tool_counts_json.bash":{"dev-a":2,"dev-b":1},"total_input_tokens":{"dev-a":12}},"fields":{"archived_at":{"t":"018bcfe568010000@dev-a","v":null},"title":{"t":"018bcfe568000001@dev-a","v":"Hi/there"}},"id":"s1","table":"sessions","vv":{"dev-a":"018bcfe568010000"}},{"id":"m1","table":"messages","tombstone":"018bcfe568010000@dev-a","vv":{"dev-a":"018bcfe568010000","dev-b":"018bcfe568000001"}}],"protocolVersion":1,"replicaID":"dev-a"}"#

    static let pushResponse = PushResponse(
        results: [
            PushResult(table: "sessions", id: "s1", outcome: .inserted),
            PushResult(table: "messages", id: "m1", outcome: .parentDeleted),
        ],
        conflicts: 1)
    static let pushResponseJSON = #"{"conflicts":1,"protocolVersion":1,"results":[{"id":"s1","outcome":"inserted","table":"sessions"},{"id":"m1","outcome":"parent_deleted","table":"messages"}]}"#

    static let pullResponse = PullResponse(
        changes: [
            RowChange(
                table: "message_parts", id: "p1", vv: VersionVector([devB: h1]),
                fields: [
                    "content": FieldValue(["text": "é \"q\"", "n": [1, .double(0.5), true, nil]], stamp: Stamp(hlc: h1, replica: devB)),
                    "index": FieldValue(0, stamp: Stamp(hlc: h1, replica: devB)),
                ]),
        ],
        cursor: 42, hasMore: true)
    static let pullResponseJSON = #"{"changes":[{"fields":{"content":{"t":"018bcfe568000001@dev-b","v":{"n":[1,0.5,true,null],"text":"é \"q\""}},"index":{"t":"018bcfe568000001@dev-b","v":0}},"id":"p1","table":"message_parts","vv":{"dev-b":"018bcfe568000001"}}],"cursor":42,"hasMore":true,"protocolVersion":1}"#

    static let errorBody = ErrorBody(code: "invalid_change", message: "sessions/s1: \"title\" must be a string")
    static let errorBodyJSON = #"{"error":{"code":"invalid_change","message":"sessions/s1: \"title\" must be a string"}}"#

    @Test func pushRequestFixture() throws {
        #expect(try WireJSON.encodeString(Self.pushRequest) == Self.pushRequestJSON)
        #expect(try WireJSON.decode(PushRequest.self, from: Self.pushRequestJSON) == Self.pushRequest)
    }

    @Test func pushResponseFixture() throws {
        #expect(try WireJSON.encodeString(Self.pushResponse) == Self.pushResponseJSON)
        #expect(try WireJSON.decode(PushResponse.self, from: Self.pushResponseJSON) == Self.pushResponse)
    }

    @Test func pullResponseFixture() throws {
        #expect(try WireJSON.encodeString(Self.pullResponse) == Self.pullResponseJSON)
        #expect(try WireJSON.decode(PullResponse.self, from: Self.pullResponseJSON) == Self.pullResponse)
        let empty = PullResponse(changes: [], cursor: 7, hasMore: false)
        #expect(try WireJSON.encodeString(empty) == #"{"changes":[],"cursor":7,"hasMore":false,"protocolVersion":1}"#)
    }

    @Test func errorBodyFixture() throws {
        #expect(try WireJSON.encodeString(Self.errorBody) == Self.errorBodyJSON)
        #expect(try WireJSON.decode(ErrorBody.self, from: Self.errorBodyJSON) == Self.errorBody)
    }

    @Test func whoAmIFixture() throws {
        let json = #"{"name":"ann","serverCursor":7,"userID":3}"#
        let value = WhoAmI(userID: 3, name: "ann", serverCursor: 7)
        #expect(try WireJSON.encodeString(value) == json)
        #expect(try WireJSON.decode(WhoAmI.self, from: json) == value)
    }

    @Test func protocolConstants() {
        #expect(SyncProtocol.version == 1)
        #expect(SyncProtocol.maxPushChanges == 1_000)
        #expect(SyncProtocol.maxPullLimit == 1_000)
    }

    static let malformedPushRequests: [String] = [
        // Replica id with a space.
        #"{"changes":[],"protocolVersion":1,"replicaID":"dev a"}"#,
        // Stamp with upper-case hex.
        #"{"changes":[{"fields":{"title":{"t":"018BCFE568000001@dev-a","v":"x"}},"id":"s1","table":"sessions","vv":{}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Stamp without a replica.
        #"{"changes":[{"fields":{"title":{"t":"018bcfe568000001","v":"x"}},"id":"s1","table":"sessions","vv":{}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Stamp with a short HLC.
        #"{"changes":[{"fields":{"title":{"t":"18bcfe568000001@dev-a","v":"x"}},"id":"s1","table":"sessions","vv":{}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Stamp given as a number.
        #"{"changes":[{"fields":{"title":{"t":1,"v":"x"}},"id":"s1","table":"sessions","vv":{}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Tombstone that is not a stamp.
        #"{"changes":[{"id":"m1","table":"messages","tombstone":"yesterday","vv":{}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Vector key that is not a replica id.
        #"{"changes":[{"id":"m1","table":"messages","vv":{"dev@a":"018bcfe568000001"}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Vector value that is not an HLC.
        #"{"changes":[{"id":"m1","table":"messages","vv":{"dev-a":"018bcfe56800000g"}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        #"{"changes":[{"id":"m1","table":"messages","vv":{"dev-a":42}}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Vector that is not an object.
        #"{"changes":[{"id":"m1","table":"messages","vv":["dev-a"]}],"protocolVersion":1,"replicaID":"dev-a"}"#,
        // Missing protocol version, missing changes.
        #"{"changes":[],"replicaID":"dev-a"}"#,
        #"{"protocolVersion":1,"replicaID":"dev-a"}"#,
    ]

    @Test(arguments: malformedPushRequests)
    func decodingRejectsMalformedRequests(json: String) {
        #expect(throws: DecodingError.self) { try WireJSON.decode(PushRequest.self, from: json) }
    }

    @Test func decodingRejectsUnknownOutcomes() {
        let json = #"{"conflicts":0,"protocolVersion":1,"results":[{"id":"s1","outcome":"merged","table":"sessions"}]}"#
        #expect(throws: DecodingError.self) { try WireJSON.decode(PushResponse.self, from: json) }
    }

    @Test func decodingRejectsMalformedPulls() {
        let badStamp = #"{"changes":[{"id":"m1","table":"messages","tombstone":"018bcfe568000001@","vv":{}}],"cursor":1,"hasMore":false,"protocolVersion":1}"#
        #expect(throws: DecodingError.self) { try WireJSON.decode(PullResponse.self, from: badStamp) }
        let badCursor = #"{"changes":[],"cursor":"1","hasMore":false,"protocolVersion":1}"#
        #expect(throws: DecodingError.self) { try WireJSON.decode(PullResponse.self, from: badCursor) }
    }

    @Test func randomRequestsRoundTrip() throws {
        var run = PropertyRun()
        try run.forAll(300) { rng, ctx in
            let changes = (0..<rng.int(0...4)).map { _ in rng.rowChange(rng.pick(ChatSchema.tables), id: rng.pick(Pool.rowIDs)) }
            let request = PushRequest(replicaID: rng.replica(), changes: changes)
            let text = try WireJSON.encodeString(request)
            try #require(try WireJSON.decode(PushRequest.self, from: text) == request, "\(ctx): \(text)")
            let pull = PullResponse(changes: changes, cursor: rng.int64(0...Int64.max), hasMore: rng.chance(0.5))
            let pullText = try WireJSON.encodeString(pull)
            try #require(try WireJSON.decode(PullResponse.self, from: pullText) == pull, "\(ctx): \(pullText)")
        }
    }
}
