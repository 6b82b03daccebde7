import Foundation
import Testing
import TestSupport
@testable import SyncEngine

/// Short names for hand-written states.
enum Fixture {
    static let a = ReplicaID("a"), b = ReplicaID("b"), c = ReplicaID("c")

    static func s(_ millis: Int64, _ replica: ReplicaID, counter: UInt16 = 0) -> Stamp {
        Stamp(hlc: HLC(millis: millis, counter: counter), replica: replica)
    }

    static func vv(_ stamps: Stamp...) -> VersionVector {
        var vv = VersionVector.empty
        for stamp in stamps { vv.record(stamp) }
        return vv
    }

    static func f(_ value: JSONValue, _ stamp: Stamp) -> FieldValue { FieldValue(value, stamp: stamp) }
}

@Suite("Merge.join")
struct MergeJoinTests {
    static let tables = ChatSchema.tables

    @Test(arguments: tables.map(\.name))
    func joinIsCommutativeAssociativeAndIdempotent(table: String) throws {
        let schema = try #require(ChatSchema.table(table))
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let x = rng.rowChange(schema), y = rng.rowChange(schema), z = rng.rowChange(schema)
            let xy = Merge.join(x, y, schema: schema)
            try #require(xy == Merge.join(y, x, schema: schema), "\(ctx): commutative\n\(x)\n\(y)")
            try #require(
                Merge.join(xy, z, schema: schema) == Merge.join(x, Merge.join(y, z, schema: schema), schema: schema),
                "\(ctx): associative")
            try #require(Merge.join(x, x, schema: schema) == x, "\(ctx): idempotent")
            try #require(Merge.join(xy, x, schema: schema) == xy, "\(ctx): absorbs what it includes")
            try #require(xy.vv == x.vv.merging(y.vv), "\(ctx): vectors merge")
        }
    }

    @Test(arguments: tables.map(\.name))
    func joinOfValidStatesIsValidAndIncludesItsStamps(table: String) throws {
        let schema = try #require(ChatSchema.table(table))
        let validator = ChangeValidator()
        var run = PropertyRun()
        try run.forAll(500) { rng, ctx in
            let x = rng.rowChange(schema), y = rng.rowChange(schema)
            do {
                try validator.validate(x, nowMillis: generousNow)
                try validator.validate(Merge.join(x, y, schema: schema), nowMillis: generousNow)
            } catch {
                Issue.record("\(ctx): \(error)")
                throw error
            }
        }
    }

    @Test(arguments: tables.map(\.name))
    func tombstoneAbsorbsEverything(table: String) throws {
        let schema = try #require(ChatSchema.table(table))
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let x = rng.rowChange(schema, tombstoneChance: 0.3)
            var t = rng.rowChange(schema, tombstoneChance: 1)
            t.vv.merge(rng.versionVector())
            let joined = Merge.join(x, t, schema: schema)
            try #require(joined.isDeleted, "\(ctx)")
            try #require(joined.fields.isEmpty && joined.counters.isEmpty, "\(ctx)")
            try #require(joined.tombstone == [x.tombstone, t.tombstone].compactMap { $0 }.max(), "\(ctx)")
            try #require(joined.vv == x.vv.merging(t.vv), "\(ctx)")
            // Nothing resurrects a deleted row.
            let later = rng.rowChange(schema, tombstoneChance: 0)
            try #require(Merge.join(joined, later, schema: schema).isDeleted, "\(ctx)")
        }
    }

    /// For each stamped column, the join keeps one of the two values, chosen by the rule.
    @Test(arguments: tables.map(\.name))
    func fieldsFollowTheirRule(table: String) throws {
        let schema = try #require(ChatSchema.table(table))
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let x = rng.rowChange(schema, tombstoneChance: 0), y = rng.rowChange(schema, tombstoneChance: 0)
            let joined = Merge.join(x, y, schema: schema)
            try #require(Set(joined.fields.keys) == Set(x.fields.keys).union(y.fields.keys), "\(ctx)")
            for column in schema.fieldColumns {
                guard let fx = x.fields[column.name], let fy = y.fields[column.name] else {
                    try #require(joined.fields[column.name] == (x.fields[column.name] ?? y.fields[column.name]), "\(ctx)")
                    continue
                }
                let won = try #require(joined.fields[column.name], "\(ctx)")
                try #require(won == fx || won == fy, "\(ctx): \(column.name) kept one of the two values")
                guard fx.stamp != fy.stamp else { continue }
                let (older, newer) = fx.stamp < fy.stamp ? (fx, fy) : (fy, fx)
                switch column.rule {
                case .lastWriterWins:
                    try #require(won == newer, "\(ctx): \(column.name) last writer wins")
                case .firstWriterWins:
                    try #require(won == older, "\(ctx): \(column.name) first writer wins")
                case .maximum:
                    let (vx, vy) = (fx.value.intValue ?? Int64.min, fy.value.intValue ?? Int64.min)
                    let expected = vx == vy ? newer : (vx > vy ? fx : fy)
                    try #require(won == expected, "\(ctx): \(column.name) keeps the greatest value")
                case .statusRank(let ranks):
                    let (rx, ry) = (ranks[fx.value.stringValue ?? ""] ?? -1, ranks[fy.value.stringValue ?? ""] ?? -1)
                    let expected = rx == ry ? newer : (rx > ry ? fx : fy)
                    try #require(won == expected, "\(ctx): \(column.name) ranks")
                case .counter, .counterMap:
                    Issue.record("\(ctx): counter column \(column.name) among the fields")
                }
            }
        }
    }

    @Test(arguments: tables.map(\.name))
    func countersArePerReplicaMax(table: String) throws {
        let schema = try #require(ChatSchema.table(table))
        var run = PropertyRun()
        try run.forAll(1_000) { rng, ctx in
            let x = rng.rowChange(schema, tombstoneChance: 0), y = rng.rowChange(schema, tombstoneChance: 0)
            let joined = Merge.join(x, y, schema: schema)
            // An empty counter counts as absent.
            let nonEmpty = { (change: RowChange) in Set(change.counters.filter { !$0.value.contributions.isEmpty }.keys) }
            try #require(Set(joined.counters.keys) == nonEmpty(x).union(nonEmpty(y)), "\(ctx)")
            for (name, counter) in joined.counters {
                for replica in Pool.replicas {
                    let expected = max(x.counters[name]?[replica] ?? 0, y.counters[name]?[replica] ?? 0)
                    try #require(counter[replica] == expected, "\(ctx): \(name) \(replica)")
                }
            }
        }
    }

    @Test func finishedMessageNeverGoesBackToPending() throws {
        let schema = ChatSchema.messages
        var run = PropertyRun()
        try run.forAll(2_000) { rng, ctx in
            var x = rng.rowChange(schema, tombstoneChance: 0)
            let finished = FieldValue(.string(rng.pick(["complete", "error"])), stamp: rng.stamp())
            x.fields["status"] = finished
            x.vv.record(finished.stamp)
            var y = rng.rowChange(schema, tombstoneChance: 0)
            let pending = FieldValue("pending", stamp: rng.stamp())
            y.fields["status"] = pending
            y.vv.record(pending.stamp)
            let status = Merge.join(x, y, schema: schema).value("status")?.stringValue
            try #require(status == "complete" || status == "error", "\(ctx): status became \(status ?? "nil")")
            let applied = Merge.apply(y, to: x, schema: schema).state.value("status")?.stringValue
            try #require(applied == "complete" || applied == "error", "\(ctx): apply made it \(applied ?? "nil")")
        }
    }

    @Test func examplesOfEachRule() {
        typealias F = Fixture
        let early = F.s(1, F.b), late = F.s(2, F.a)
        let x = RowChange(
            table: "messages", id: "m1", vv: F.vv(early),
            fields: [
                "model": F.f("old", early), "created_at": F.f(100, early), "status": F.f("complete", early),
            ])
        let y = RowChange(
            table: "messages", id: "m1", vv: F.vv(late),
            fields: [
                "model": F.f("new", late), "created_at": F.f(50, late), "status": F.f("pending", late),
            ])
        let joined = Merge.join(x, y, schema: ChatSchema.messages)
        #expect(joined.value("model") == "new")
        #expect(joined.value("created_at") == 100, "first writer wins, whatever the value")
        #expect(joined.value("status") == "complete")

        let s1 = RowChange(table: "sessions", id: "s1", vv: F.vv(early), fields: ["last_active_at": F.f(900, early)])
        let s2 = RowChange(table: "sessions", id: "s1", vv: F.vv(late), fields: ["last_active_at": F.f(800, late)])
        #expect(Merge.join(s1, s2, schema: ChatSchema.sessions).value("last_active_at") == 900)
        let s3 = RowChange(table: "sessions", id: "s1", vv: F.vv(late), fields: ["last_active_at": F.f(nil, late)])
        #expect(Merge.join(s1, s3, schema: ChatSchema.sessions).value("last_active_at") == 900, "a value beats null")

        // Equal stamps (a faulty replica) still decide the same way in both orders.
        let same = F.s(3, F.c)
        let p = RowChange(table: "sessions", id: "s1", vv: F.vv(same), fields: ["title": F.f("p", same)])
        let q = RowChange(table: "sessions", id: "s1", vv: F.vv(same), fields: ["title": F.f("q", same)])
        #expect(Merge.join(p, q, schema: ChatSchema.sessions) == Merge.join(q, p, schema: ChatSchema.sessions))
    }
}
