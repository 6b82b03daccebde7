import Foundation
import Testing
import TestSupport
@testable import SyncEngine

/// One change the validator must refuse, and words its message must contain.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    let name: String
    let change: RowChange
    let mentions: [String]
    /// Text that must not appear in the message (the offending value).
    let hides: String?

    init(_ name: String, _ change: RowChange, mentions: [String], hides: String? = nil) {
        self.name = name
        self.change = change
        self.mentions = mentions
        self.hides = hides
    }

    var testDescription: String { name }
}

enum ValidFixtures {
    typealias F = Fixture
    static let now: Int64 = 1_700_000_000_000
    static let stamp = Stamp(hlc: HLC(millis: now - 1_000), replica: ReplicaID("dev-a"))
    static let vv = VersionVector([ReplicaID("dev-a"): HLC(millis: now)])

    static func fields(_ values: [String: JSONValue]) -> [String: FieldValue] {
        values.mapValues { FieldValue($0, stamp: stamp) }
    }

    static let session = RowChange(
        table: "sessions", id: "01HZX3J9A8-session_1", vv: vv,
        fields: fields([
            "title": "Refactor", "agent": "build", "provider": "anthropic", "model": "claude",
            "project_path": "/home/ann/project", "created_at": .int(now - 5_000), "last_active_at": .int(now),
            "archived_at": nil,
        ]),
        counters: [
            "total_input_tokens": Counter([ReplicaID("dev-a"): 1_200]),
            "total_tool_time_ms": Counter([ReplicaID("dev-a"): Int64(Int32.max)]),
            "tool_counts_json.bash": Counter([ReplicaID("dev-a"): 3]),
            "tool_counts_json." + String(repeating: "k", count: 200): Counter([ReplicaID("dev-a"): 1]),
        ])

    static let message = RowChange(
        table: "messages", id: "m:1.a", vv: vv,
        fields: fields([
            "session_id": "01HZX3J9A8-session_1", "role": "assistant", "status": "pending", "agent": "build",
            "provider": "anthropic", "model": "claude", "created_at": .int(now), "completed_at": nil,
            "latency_ms": .int(Int64(Int32.max)), "prompt_tokens": .int(Int64.max), "completion_tokens": .int(Int64.min),
            "error": nil, "error_details": ["code": 1, "nested": [nil, true, .double(2.5)]], "is_aborted": false,
        ]))

    static let part = RowChange(
        table: "message_parts", id: String(repeating: "p", count: 128), vv: vv,
        fields: fields([
            "message_id": "m:1.a", "index": .int(Int64(Int32.min)), "type": "tool_call",
            "content": ["text": "héllo", "args": ["a", 1]], "agent": "build", "provider": "anthropic",
            "model": "claude", "tool_name": "bash", "tool_duration_ms": 12,
        ]))

    static let artifact = RowChange(
        table: "artifacts", id: "a1", vv: vv,
        fields: fields([
            "message_part_id": .string(String(repeating: "p", count: 128)), "kind": "file_diff",
            "path": "src/main.swift", "mime": "text/x-swift", "size": 0, "sha256": .string(String(repeating: "f", count: 64)),
        ]))

    static let all = [session, message, part, artifact]

    static func with(_ change: RowChange, _ column: String, _ value: JSONValue) -> RowChange {
        var copy = change
        copy.fields[column] = FieldValue(value, stamp: stamp)
        return copy
    }

    static func with(_ change: RowChange, counter name: String, _ counter: Counter) -> RowChange {
        var copy = change
        copy.counters[name] = counter
        return copy
    }

    static func tombstone(_ table: String = "sessions", id: String = "s1") -> RowChange {
        RowChange(table: table, id: id, vv: vv, tombstone: stamp)
    }

    static var invalidCases: [InvalidCase] {
        let s = session, m = message, p = part, a = artifact
        var cases: [InvalidCase] = []
        func add(_ name: String, _ change: RowChange, _ mentions: [String], hides: String? = nil) {
            cases.append(InvalidCase(name, change, mentions: mentions, hides: hides))
        }
        // Tables and ids.
        var unknownTable = s
        unknownTable.table = "users"
        add("unknown table", unknownTable, ["unknown table", "users"])
        unknownTable.table = ""
        add("empty table name", unknownTable, ["unknown table"])
        for (label, id) in [("empty id", ""), ("id with a space", "s 1"), ("id with a slash", "s/1"),
                            ("non-ASCII id", "séance"), ("129-character id", String(repeating: "x", count: 129))] {
            var bad = s
            bad.id = id
            add(label, bad, ["sessions", "row id"])
        }
        // Columns.
        add("unknown column", with(s, "colour", "red"), ["sessions/01HZX3J9A8-session_1", "colour"])
        add("counter sent as a field", with(s, "total_input_tokens", 5), ["total_input_tokens", "counter"])
        add("counter map sent as a field", with(s, "tool_counts_json", ["bash": 1]), ["tool_counts_json", "counter"])
        add("column of another table", with(m, "title", "x"), ["messages", "title"])
        // Types.
        add("text given a number", with(s, "title", 5), ["\"title\"", "string"])
        add("text given an object", with(m, "model", ["x": 1]), ["\"model\"", "string"])
        add("int32 given a string", with(m, "latency_ms", "5"), ["\"latency_ms\"", "32-bit"])
        add("int32 given a fraction", with(m, "latency_ms", .double(1.5)), ["\"latency_ms\"", "32-bit"])
        add("int32 above its range", with(m, "latency_ms", .int(Int64(Int32.max) + 1)), ["\"latency_ms\"", "32-bit"])
        add("int32 below its range", with(p, "index", .int(Int64(Int32.min) - 1)), ["\"index\"", "32-bit"])
        add("int32 size of an artifact", with(a, "size", .int(1 << 40)), ["\"size\"", "32-bit"])
        add("int64 given a fraction", with(m, "prompt_tokens", .double(2.5)), ["\"prompt_tokens\"", "integer"])
        add("int64 given a string", with(m, "total_tokens", "12"), ["\"total_tokens\"", "integer"])
        add("int64 given a bool", with(m, "reasoning_tokens", true), ["\"reasoning_tokens\"", "integer"])
        add("boolean given an int", with(m, "is_aborted", 1), ["\"is_aborted\"", "true or false"])
        add("boolean given a string", with(m, "is_aborted", "true"), ["\"is_aborted\"", "true or false"])
        add("timestamp given a string", with(s, "created_at", "2024-01-01T00:00:00Z"), ["\"created_at\"", "milliseconds"])
        add("timestamp before 1970", with(s, "last_active_at", -1), ["\"last_active_at\"", "milliseconds"])
        add("timestamp beyond 48 bits", with(s, "archived_at", .int(HLC.maxMillis + 1)), ["\"archived_at\"", "milliseconds"])
        add("timestamp given a fraction", with(m, "completed_at", .double(1.5)), ["\"completed_at\"", "milliseconds"])
        add("json with NUL in a string", with(p, "content", ["text": "a\u{0}b"]), ["\"content\"", "NUL"])
        add("json with NUL in a key", with(p, "content", ["a\u{0}b": 1]), ["\"content\"", "NUL"])
        add("json too large", with(m, "error_details", .string(String(repeating: "x", count: 65_536))),
            ["\"error_details\"", "65536"])
        // Text content.
        add("NUL in text", with(s, "title", "a\u{0}b"), ["\"title\"", "NUL"])
        add("text longer than its bytes", with(s, "title", .string(String(repeating: "é", count: 501))),
            ["\"title\"", "1000 bytes"])
        add("sha256 longer than 64", with(a, "sha256", .string(String(repeating: "f", count: 65))), ["\"sha256\"", "64"])
        // Enums.
        add("unknown role", with(m, "role", "robot"), ["\"role\"", "assistant, system, tool, user"], hides: "robot")
        add("role in the wrong case", with(m, "role", "User"), ["\"role\""], hides: "User")
        add("unknown status", with(m, "status", "done"), ["\"status\"", "complete, error, pending"], hides: "done")
        add("unknown part type", with(p, "type", "video"), ["\"type\"", "tool_call"], hides: "video")
        add("unknown artifact kind", with(a, "kind", "directory"), ["\"kind\"", "file_diff"], hides: "directory")
        // Nulls.
        add("null role", with(m, "role", nil), ["\"role\"", "null"])
        add("null agent", with(s, "agent", nil), ["\"agent\"", "null"])
        add("null content", with(p, "content", nil), ["\"content\"", "null"])
        add("null parent", with(a, "message_part_id", nil), ["\"message_part_id\"", "null"])
        // Parents.
        add("parent id with a space", with(m, "session_id", "s 1"), ["\"session_id\"", "row id"])
        add("parent id too long", with(m, "session_id", .string(String(repeating: "s", count: 129))), ["\"session_id\""])
        // Stamps.
        var unseen = s
        unseen.fields["title"] = FieldValue("x", stamp: Stamp(hlc: HLC(millis: now + 1), replica: ReplicaID("dev-a")))
        add("field stamp newer than the vector", unseen, ["version vector", "\"title\""])
        var otherReplica = s
        otherReplica.fields["model"] = FieldValue("x", stamp: Stamp(hlc: HLC(millis: 1), replica: ReplicaID("dev-b")))
        add("field stamp of a replica missing from the vector", otherReplica, ["version vector", "\"model\""])
        var unseenDelete = tombstone()
        unseenDelete.vv = .empty
        add("tombstone stamp outside the vector", unseenDelete, ["version vector", "delete"])
        let skew = ChangeValidator().maxClockSkewMillis
        var future = s
        let futureStamp = Stamp(hlc: HLC(millis: now + skew + 1), replica: ReplicaID("dev-a"))
        future.fields["title"] = FieldValue("x", stamp: futureStamp)
        future.vv.record(futureStamp)
        add("field stamp too far in the future", future, ["\"title\"", "future"])
        var futureDelete = tombstone()
        futureDelete.tombstone = futureStamp
        futureDelete.vv.record(futureStamp)
        add("tombstone too far in the future", futureDelete, ["delete", "future"])
        // Tombstones.
        var deletedWithFields = tombstone()
        deletedWithFields.fields = fields(["title": "x"])
        add("tombstone with fields", deletedWithFields, ["sessions/s1", "deleted"])
        var deletedWithCounters = tombstone()
        deletedWithCounters.counters = ["total_input_tokens": Counter([ReplicaID("dev-a"): 1])]
        add("tombstone with counters", deletedWithCounters, ["sessions/s1", "deleted"])
        // Counters.
        let one = Counter([ReplicaID("dev-a"): 1])
        add("unknown counter", with(s, counter: "total_bogus", one), ["\"total_bogus\"", "unknown counter"])
        add("stamped column as counter", with(s, counter: "title", one), ["\"title\"", "unknown counter"])
        add("counter on a table without counters", with(m, counter: "total_input_tokens", one), ["messages", "unknown counter"])
        add("counter map without key", with(s, counter: "tool_counts_json", one), ["tool_counts_json", "key"])
        add("counter map with empty key", with(s, counter: "tool_counts_json.", one), ["tool_counts_json", "key"])
        add("counter map key too long", with(s, counter: "tool_counts_json." + String(repeating: "k", count: 201), one),
            ["tool_counts_json", "key"])
        add("counter map key with NUL", with(s, counter: "tool_counts_json.a\u{0}b", one), ["tool_counts_json", "key"])
        add("plain counter with a key", with(s, counter: "total_input_tokens.x", one), ["\"total_input_tokens\"", "no key"])
        add("negative counter", with(s, counter: "total_input_tokens", Counter([ReplicaID("dev-a"): -1])),
            ["\"total_input_tokens\"", "between 0"])
        add("negative counter map entry", with(s, counter: "tool_counts_json.bash", Counter([ReplicaID("dev-b"): -3])),
            ["tool_counts_json.bash", "between 0"])
        add("int32 counter overflow", with(s, counter: "total_tool_time_ms", Counter([ReplicaID("dev-a"): Int64(Int32.max) + 1])),
            ["\"total_tool_time_ms\"", "maximum"])
        return cases
    }
}

@Suite("ChangeValidator")
struct ValidationTests {
    let validator = ChangeValidator()

    @Test(arguments: ValidFixtures.all)
    func validChangePasses(change: RowChange) throws {
        try validator.validate(change, nowMillis: ValidFixtures.now)
        #expect(ChangeValidator.missingRequired(change).isEmpty)
    }

    @Test(arguments: ValidFixtures.invalidCases)
    func invalidChangeIsRefused(test: InvalidCase) throws {
        let error = try #require(throws: ValidationError.self) {
            try validator.validate(test.change, nowMillis: ValidFixtures.now)
        }
        for word in test.mentions {
            #expect(error.message.contains(word), "\(test.name): \"\(error.message)\" should mention \(word)")
        }
        if let hides = test.hides {
            #expect(!error.message.contains(hides), "\(test.name): \"\(error.message)\" repeats the value")
        }
    }

    @Test func boundariesAreInclusive() throws {
        typealias V = ValidFixtures
        let skew = validator.maxClockSkewMillis
        var atLimit = V.session
        let stamp = Stamp(hlc: HLC(millis: V.now + skew, counter: UInt16.max), replica: ReplicaID("dev-a"))
        atLimit.fields["title"] = FieldValue("x", stamp: stamp)
        atLimit.vv.record(stamp)
        try validator.validate(atLimit, nowMillis: V.now)
        try validator.validate(V.with(V.session, "title", .string(String(repeating: "é", count: 500))), nowMillis: V.now)
        try validator.validate(V.with(V.session, "archived_at", .int(HLC.maxMillis)), nowMillis: V.now)
        try validator.validate(V.with(V.session, "last_active_at", 0), nowMillis: V.now)
        try validator.validate(V.with(V.message, "error_details", .string(String(repeating: "x", count: 65_534))), nowMillis: V.now)
        try validator.validate(V.with(V.message, "is_aborted", nil), nowMillis: V.now)
        try validator.validate(V.tombstone(), nowMillis: V.now)
        try validator.validate(V.with(V.session, counter: "total_tool_time_ms", Counter()), nowMillis: V.now)
        let tight = ChangeValidator(maxClockSkewMillis: 0)
        #expect(throws: ValidationError.self) { try tight.validate(V.session, nowMillis: V.now - 2_000) }
        try tight.validate(V.session, nowMillis: V.now - 1_000)
    }

    @Test func generatedStatesAreValid() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let change = rng.rowChange(rng.pick(ChatSchema.tables), id: rng.pick(["r1", "a.b:c-d_E"]))
            do { try validator.validate(change, nowMillis: generousNow) } catch {
                Issue.record("\(ctx): \(error) for \(change)")
                throw error
            }
        }
    }

    @Test func missingRequiredColumns() {
        let empty = RowChange(table: "messages", id: "m1")
        #expect(Set(ChangeValidator.missingRequired(empty)) == Set(ChatSchema.messages.requiredColumns.map(\.name)))
        #expect(Set(ChangeValidator.missingRequired(empty)) == ["session_id", "role", "status", "agent", "provider", "model", "created_at"])
        let withNull = ValidFixtures.with(ValidFixtures.message, "role", nil)
        #expect(ChangeValidator.missingRequired(withNull) == ["role"])
        #expect(ChangeValidator.missingRequired(ValidFixtures.tombstone("messages")).isEmpty)
        #expect(ChangeValidator.missingRequired(RowChange(table: "users", id: "u1")).isEmpty)
    }

    @Test(arguments: ["a", "A-z_0.9:x", String(repeating: "x", count: 128), "01HZX3J9A8", "550e8400-e29b-41d4-a716-446655440000"])
    func validRowIDs(id: String) { #expect(RowID.isValid(id)) }

    @Test(arguments: ["", " ", "a b", "a/b", "a@b", "é", String(repeating: "x", count: 129), "a\u{0}"])
    func invalidRowIDs(id: String) { #expect(!RowID.isValid(id)) }
}
