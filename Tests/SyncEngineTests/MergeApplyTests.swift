import Foundation
import Testing
import TestSupport
@testable import SyncEngine

@Suite("Merge.apply")
struct MergeApplyTests {
    typealias F = Fixture
    static let sessions = ChatSchema.sessions

    /// A session created by replica a at HLC 1, seen by everybody.
    static let base = RowChange(
        table: "sessions", id: "s1", vv: F.vv(F.s(1, F.a)),
        fields: [
            "title": F.f("t0", F.s(1, F.a)), "agent": F.f("ag", F.s(1, F.a)), "provider": F.f("p", F.s(1, F.a)),
            "model": F.f("m0", F.s(1, F.a)), "project_path": F.f("/x", F.s(1, F.a)), "created_at": F.f(10, F.s(1, F.a)),
        ])

    /// `state` after `replica` wrote `column` at `stamp` (the full state it then holds).
    static func write(_ state: RowChange, _ column: String, _ value: JSONValue, at stamp: Stamp) -> RowChange {
        var copy = state
        copy.fields[column] = FieldValue(value, stamp: stamp)
        copy.vv.record(stamp)
        return copy
    }

    @Test func unknownRowIsInsertedOrDeleted() {
        let inserted = Merge.apply(Self.base, to: nil, schema: Self.sessions)
        #expect(inserted == Merge.Result(state: Self.base, outcome: .inserted, conflicts: []))
        let tombstone = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(2, F.b)), tombstone: F.s(2, F.b))
        #expect(Merge.apply(tombstone, to: nil, schema: Self.sessions).outcome == .deleted)
    }

    @Test func reapplyingIsUnchanged() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let schema = rng.pick(ChatSchema.tables)
            let x = rng.rowChange(schema)
            let result = Merge.apply(x, to: x, schema: schema)
            try #require(result == Merge.Result(state: x, outcome: .unchanged, conflicts: []), "\(ctx)")
        }
    }

    /// A change the row already includes (an older state of the same history, a duplicate, a
    /// retried push) changes nothing.
    @Test func includedChangeIsUnchanged() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let schema = rng.pick(ChatSchema.tables)
            let old = rng.rowChange(schema)
            let current = Merge.join(old, rng.rowChange(schema), schema: schema)
            try #require(current.vv.dominates(old.vv), "\(ctx)")
            let result = Merge.apply(old, to: current, schema: schema)
            try #require(result == Merge.Result(state: current, outcome: .unchanged, conflicts: []), "\(ctx)")
        }
    }

    @Test func applyStoresTheJoin() throws {
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let schema = rng.pick(ChatSchema.tables)
            let current = rng.rowChange(schema), incoming = rng.rowChange(schema)
            let result = Merge.apply(incoming, to: current, schema: schema)
            let joined = Merge.join(current, incoming, schema: schema)
            try #require(result.state == joined, "\(ctx)")
            let expected: Merge.Outcome =
                joined == current ? .unchanged : (joined.isDeleted && !current.isDeleted ? .deleted : .updated)
            try #require(result.outcome == expected, "\(ctx)")
            if result.outcome == .unchanged { try #require(result.conflicts.isEmpty, "\(ctx)") }
            for conflict in result.conflicts {
                try #require(conflict.table == schema.name && conflict.rowID == current.id, "\(ctx)")
                try #require(conflict.loserStamp != nil && conflict.winnerStamp != nil, "\(ctx)")
            }
        }
    }

    @Test func staleChangeChangesNothing() {
        let newer = Self.write(Self.base, "title", "t1", at: F.s(2, F.b))
        let result = Merge.apply(Self.base, to: newer, schema: Self.sessions)
        #expect(result.outcome == .unchanged)
        #expect(result.state == newer)
        #expect(result.conflicts.isEmpty)
    }

    @Test(arguments: [false, true])
    func concurrentWritesOfOneColumnRecordOneConflict(serverHasA: Bool) {
        let fromA = Self.write(Self.base, "title", "A", at: F.s(2, F.a))
        let fromB = Self.write(Self.base, "title", "B", at: F.s(3, F.b))
        let (current, incoming) = serverHasA ? (fromA, fromB) : (fromB, fromA)
        let result = Merge.apply(incoming, to: current, schema: Self.sessions)
        #expect(result.state.value("title") == "B")
        #expect(result.state.vv == F.vv(F.s(2, F.a), F.s(3, F.b)))
        #expect(result.outcome == .updated)
        #expect(result.conflicts == [
            Conflict(
                kind: .concurrentWrite, table: "sessions", rowID: "s1", column: "title",
                winner: "B", winnerStamp: F.s(3, F.b), loser: "A", loserStamp: F.s(2, F.a)),
        ])
    }

    @Test(arguments: [false, true])
    func concurrentCreationKeepsTheFirstWriter(serverHasA: Bool) {
        // Two replicas create the same row id: the value with the smallest stamp stays.
        let fromA = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(2, F.a)), fields: ["created_at": F.f(20, F.s(2, F.a))])
        let fromB = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(3, F.b)), fields: ["created_at": F.f(30, F.s(3, F.b))])
        let (current, incoming) = serverHasA ? (fromA, fromB) : (fromB, fromA)
        let result = Merge.apply(incoming, to: current, schema: Self.sessions)
        #expect(result.state.value("created_at") == 20)
        #expect(result.conflicts == [
            Conflict(
                kind: .concurrentWrite, table: "sessions", rowID: "s1", column: "created_at",
                winner: 20, winnerStamp: F.s(2, F.a), loser: 30, loserStamp: F.s(3, F.b)),
        ])
    }

    @Test func overwriteOfASeenValueIsNoConflict() {
        let fromA = Self.write(Self.base, "title", "A", at: F.s(2, F.a))
        let fromB = Self.write(fromA, "title", "B", at: F.s(3, F.b))
        let result = Merge.apply(fromB, to: fromA, schema: Self.sessions)
        #expect(result.outcome == .updated)
        #expect(result.state.value("title") == "B")
        #expect(result.conflicts.isEmpty)
    }

    @Test func concurrentEditsOfDifferentColumnsBothSurvive() {
        let fromA = Self.write(Self.base, "title", "A", at: F.s(2, F.a))
        let fromB = Self.write(Self.base, "model", "mB", at: F.s(3, F.b))
        for (current, incoming) in [(fromA, fromB), (fromB, fromA)] {
            let result = Merge.apply(incoming, to: current, schema: Self.sessions)
            #expect(result.outcome == .updated)
            #expect(result.state.value("title") == "A")
            #expect(result.state.value("model") == "mB")
            #expect(result.conflicts.isEmpty)
        }
    }

    @Test func concurrentCounterAddsBothCountWithoutConflict() {
        var fromA = Self.base, fromB = Self.base
        fromA.counters["total_input_tokens", default: Counter()].add(5, for: F.a)
        fromA.vv.record(F.s(2, F.a))
        fromB.counters["total_input_tokens", default: Counter()].add(7, for: F.b)
        fromB.vv.record(F.s(2, F.b))
        let result = Merge.apply(fromB, to: fromA, schema: Self.sessions)
        #expect(result.state.materialized(schema: Self.sessions)["total_input_tokens"] == 12)
        #expect(result.conflicts.isEmpty)
    }

    @Test func maximumColumnRecordsNoConflict() {
        let fromA = Self.write(Self.base, "last_active_at", 500, at: F.s(2, F.a))
        let fromB = Self.write(Self.base, "last_active_at", 400, at: F.s(3, F.b))
        let result = Merge.apply(fromB, to: fromA, schema: Self.sessions)
        #expect(result.state.value("last_active_at") == 500)
        #expect(result.conflicts.isEmpty)
    }

    @Test func tombstoneOverUnseenEditsRecordsUpdateLostToDelete() {
        let edited = Self.write(Self.base, "title", "A", at: F.s(2, F.a))
        // b deleted the row having seen only the base state.
        let deletion = F.s(3, F.b)
        let tombstone = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(1, F.a), deletion), tombstone: deletion)
        let result = Merge.apply(tombstone, to: edited, schema: Self.sessions)
        #expect(result.outcome == .deleted)
        #expect(result.state == RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(2, F.a), deletion), tombstone: deletion))
        #expect(result.conflicts == [
            Conflict(
                kind: .updateLostToDelete, table: "sessions", rowID: "s1", column: "title",
                winner: nil, winnerStamp: deletion, loser: "A", loserStamp: F.s(2, F.a)),
        ])
    }

    @Test func tombstoneOverSeenEditsRecordsNothing() {
        let edited = Self.write(Self.base, "title", "A", at: F.s(2, F.a))
        let deletion = F.s(3, F.b)
        let tombstone = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(2, F.a), deletion), tombstone: deletion)
        let result = Merge.apply(tombstone, to: edited, schema: Self.sessions)
        #expect(result.outcome == .deleted)
        #expect(result.conflicts.isEmpty)
    }

    @Test func updateArrivingAfterATombstoneIsAbsorbed() {
        let deletion = F.s(3, F.b)
        let tombstone = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(1, F.a), deletion), tombstone: deletion)
        // a edited concurrently (it had not seen the delete) and pushes later.
        let edited = Self.write(Self.base, "title", "A", at: F.s(4, F.a))
        let result = Merge.apply(edited, to: tombstone, schema: Self.sessions)
        #expect(result.state.isDeleted)
        #expect(result.state.tombstone == deletion)
        #expect(result.state.fields.isEmpty && result.state.counters.isEmpty)
        #expect(result.outcome != .inserted && result.outcome != .deleted)
        #expect(result.conflicts == [
            Conflict(
                kind: .updateLostToDelete, table: "sessions", rowID: "s1", column: "title",
                winner: nil, winnerStamp: deletion, loser: "A", loserStamp: F.s(4, F.a)),
        ])
        // Pushed again (a retry): nothing new.
        let again = Merge.apply(edited, to: result.state, schema: Self.sessions)
        #expect(again.outcome == .unchanged)
        #expect(again.conflicts.isEmpty)
    }

    @Test func twoTombstonesKeepTheGreatestAndRecordNothing() {
        let t1 = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(2, F.a)), tombstone: F.s(2, F.a))
        let t2 = RowChange(table: "sessions", id: "s1", vv: F.vv(F.s(3, F.b)), tombstone: F.s(3, F.b))
        let result = Merge.apply(t1, to: t2, schema: Self.sessions)
        #expect(result.state.tombstone == F.s(3, F.b))
        #expect(result.state.vv == F.vv(F.s(2, F.a), F.s(3, F.b)))
        #expect(result.outcome == .updated)
        #expect(result.conflicts.isEmpty)
    }

    @Test func finishedStatusBeatsALaterPending() {
        let schema = ChatSchema.messages
        let created = RowChange(
            table: "messages", id: "m1", vv: F.vv(F.s(1, F.a)), fields: ["status": F.f("pending", F.s(1, F.a))])
        let completed = Self.write(created, "status", "complete", at: F.s(2, F.a))
        let retried = Self.write(created, "status", "pending", at: F.s(9, F.b))
        for (current, incoming) in [(completed, retried), (retried, completed)] {
            let result = Merge.apply(incoming, to: current, schema: schema)
            #expect(result.state.value("status") == "complete")
        }
    }
}
