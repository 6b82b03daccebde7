import Foundation
import Testing
import TestSupport
@testable import SyncEngine

@Suite("RowChange, materialization and metadata")
struct RowChangeTests {
    typealias F = Fixture

    @Test func countersSumIntoColumnsAndMaps() {
        let change = RowChange(
            table: "sessions", id: "s1", vv: F.vv(F.s(1, F.a)),
            fields: ["title": F.f("hi", F.s(1, F.a))],
            counters: [
                "total_input_tokens": Counter([F.a: 10, F.b: 32]),
                "total_tool_time_ms": Counter([F.c: 7]),
                "tool_counts_json.bash": Counter([F.a: 2, F.b: 3]),
                "tool_counts_json.web.fetch": Counter([F.a: 1]),
            ])
        let values = change.materialized(schema: ChatSchema.sessions)
        #expect(Set(values.keys) == Set(ChatSchema.sessions.columns.map(\.name)))
        #expect(values["title"] == "hi")
        #expect(values["total_input_tokens"] == 42)
        #expect(values["total_tool_time_ms"] == 7)
        #expect(values["tool_counts_json"] == ["bash": 5, "web.fetch": 1])
        #expect(values["total_output_tokens"] == 0)
        #expect(values["total_cached_tokens"] == 0)
        #expect(values["model"] == .null)
        #expect(values["created_at"] == .null)
    }

    @Test func missingCountersAreZeroAndAnEmptyObject() {
        let values = RowChange(table: "sessions", id: "s1").materialized(schema: ChatSchema.sessions)
        for column in ChatSchema.sessions.columns {
            switch column.rule {
            case .counter: #expect(values[column.name] == 0, "\(column.name)")
            case .counterMap: #expect(values[column.name] == .object([:]), "\(column.name)")
            default: #expect(values[column.name] == .null, "\(column.name)")
            }
        }
    }

    @Test func materializedCountersMatchContributionsProperty() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let change = rng.rowChange(ChatSchema.sessions, tombstoneChance: 0)
            let values = change.materialized(schema: ChatSchema.sessions)
            for column in ChatSchema.sessions.counterColumns where column.rule == .counter {
                let expected = change.counters[column.name]?.contributions.values.reduce(0, +) ?? 0
                try #require(values[column.name] == .int(expected), "\(ctx): \(column.name)")
            }
            let map = try #require(values["tool_counts_json"]?.objectValue, "\(ctx)")
            let keys = change.counters.keys.filter { $0.hasPrefix("tool_counts_json.") }
            try #require(map.count == keys.count, "\(ctx)")
            for name in keys {
                let key = String(name.dropFirst("tool_counts_json.".count))
                try #require(map[key] == .int(change.counters[name]!.total), "\(ctx): \(name)")
            }
            for column in ChatSchema.sessions.fieldColumns {
                try #require(values[column.name] == (change.value(column.name) ?? .null), "\(ctx): \(column.name)")
            }
        }
    }

    /// Each change is valid on its own (every contribution is within the column's range), so
    /// the merged, materialized total must still fit the column: `total_tool_time_ms` is an
    /// `integer` (int4) in PostgreSQL, and a total never shrinks below one of its contributions.
    @Test func mergedCounterTotalsFitTheirColumn() throws {
        let schema = ChatSchema.sessions
        let validator = ChangeValidator()
        func change(_ replica: ReplicaID, _ name: String, _ amount: Int64) -> RowChange {
            RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(1, replica)), counters: [name: Counter([replica: amount])])
        }
        let x = change(F.a, "total_tool_time_ms", Int64(Int32.max))
        let y = change(F.b, "total_tool_time_ms", 1)
        try validator.validate(x, nowMillis: 10)
        try validator.validate(y, nowMillis: 10)
        let time = Merge.join(x, y, schema: schema).materialized(schema: schema)["total_tool_time_ms"] ?? .null
        let column = try #require(schema.column("total_tool_time_ms"))
        #expect(throws: Never.self, "materialized total_tool_time_ms = \(time)") {
            try ChangeValidator.check(time, column: column, row: "sessions/s1")
        }

        let big = change(F.a, "total_input_tokens", Int64.max)
        let small = change(F.b, "total_input_tokens", 1)
        try validator.validate(big, nowMillis: 10)
        let tokens = Merge.join(big, small, schema: schema).materialized(schema: schema)["total_input_tokens"]?.intValue
        #expect((tokens ?? 0) >= Int64.max, "materialized total_input_tokens = \(String(describing: tokens))")
    }

    @Test func counterKeys() {
        #expect(CounterKey.make(column: "total_input_tokens") == "total_input_tokens")
        #expect(CounterKey.make(column: "tool_counts_json", key: "bash") == "tool_counts_json.bash")
        #expect(CounterKey.split("total_input_tokens") == ("total_input_tokens", nil))
        #expect(CounterKey.split("tool_counts_json.bash") == ("tool_counts_json", "bash"))
        #expect(CounterKey.split("tool_counts_json.web.fetch") == ("tool_counts_json", "web.fetch"))
        #expect(CounterKey.split("tool_counts_json.") == ("tool_counts_json", ""))
    }

    @Test func parentAndRestriction() {
        let part = RowChange(
            table: "message_parts", id: "p1", vv: F.vv(F.s(2, F.a)),
            fields: ["message_id": F.f("m1", F.s(1, F.a)), "content": F.f(["text": "hi"], F.s(2, F.a))],
            counters: [:])
        #expect(part.parentID(schema: ChatSchema.messageParts) == "m1")
        #expect(RowChange(table: "sessions", id: "s1").parentID(schema: ChatSchema.sessions) == nil)
        let restricted = part.restricted(to: ["content", "nonexistent"])
        #expect(Set(restricted.fields.keys) == ["content"])
        #expect(restricted.vv == part.vv && restricted.tombstone == part.tombstone && restricted.counters == part.counters)
        #expect(part.key == RowKey(table: "message_parts", id: "p1"))
        #expect(RowKey(table: "a", id: "z") < RowKey(table: "b", id: "a"))
    }

    @Test func codableRoundTrip() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let change = rng.rowChange(rng.pick(ChatSchema.tables))
            let text = try WireJSON.encodeString(change)
            try #require(try WireJSON.decode(RowChange.self, from: text) == change, "\(ctx): \(text)")
            try #require(try WireJSON.encodeString(WireJSON.decode(RowChange.self, from: text)) == text, "\(ctx): stable text")
        }
    }

    @Test func jsonValueCodableRoundTrip() throws {
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            let value = rng.json(depth: 3)
            let text = try WireJSON.encodeString([value])
            try #require(try WireJSON.decode([JSONValue].self, from: text) == [value], "\(ctx): \(text)")
        }
    }

    @Test func jsonNumbersNormalize() throws {
        #expect(JSONValue.number(2.0) == .int(2))
        #expect(JSONValue.number(-0.0) == .int(0))
        #expect(JSONValue.number(2.5) == .double(2.5))
        #expect(try WireJSON.decode(JSONValue.self, from: "1.0") == .int(1))
        #expect(try WireJSON.decode(JSONValue.self, from: "1") == .int(1))
        #expect(try WireJSON.decode(JSONValue.self, from: "true") == .bool(true))
        #expect(try WireJSON.decode(JSONValue.self, from: "0") == .int(0))
        #expect(try WireJSON.decode(JSONValue.self, from: "1e3") == .int(1_000))
        #expect(try WireJSON.decode(JSONValue.self, from: "1e300") == .double(1e300))
        #expect(try WireJSON.decode(JSONValue.self, from: "9223372036854775807") == .int(Int64.max))
    }

    @Test func decodingFillsDefaultsAndRejectsBadParts() throws {
        let minimal = try WireJSON.decode(RowChange.self, from: #"{"table":"sessions","id":"s1"}"#)
        #expect(minimal == RowChange(table: "sessions", id: "s1"))
        let bad = [
            #"{"id":"s1"}"#,
            #"{"table":"sessions","id":"s1","tombstone":"nope"}"#,
            #"{"table":"sessions","id":"s1","fields":{"title":{"v":"x","t":"018bcfe568000001"}}}"#,
            #"{"table":"sessions","id":"s1","fields":{"title":{"v":"x"}}}"#,
            #"{"table":"sessions","id":"s1","vv":{"a":"xyz"}}"#,
            #"{"table":"sessions","id":"s1","counters":{"total_input_tokens":{"a b":1}}}"#,
        ]
        for text in bad {
            #expect(throws: DecodingError.self, "\(text)") { try WireJSON.decode(RowChange.self, from: text) }
        }
    }

    @Test func rowMetaRebuildsTheState() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let schema = rng.pick(ChatSchema.tables)
            let state = rng.rowChange(schema)
            let meta = RowMeta(of: state)
            let values = state.materialized(schema: schema)
            try #require(meta.state(table: schema.name, id: state.id, values: values) == state, "\(ctx)")
            let text = try WireJSON.encodeString(meta)
            try #require(try WireJSON.decode(RowMeta.self, from: text) == meta, "\(ctx): \(text)")
        }
    }
}
