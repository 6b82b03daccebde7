/// A replica's own edit of one row, before it is stamped: the values it sets, the counters it
/// grows, or a delete. Devices (`LocalStore`) and the server (writing for the REST API) build
/// their changes from the same description, so both sides stamp and count the same way.
public struct RowEdit: Sendable, Equatable {
    public var table: TableSchema
    public var id: String
    public var values: [String: JSONValue]
    /// Counter increments by counter name (`column`, or `column.key` for a counter map).
    public var increments: [String: Int64]
    public var delete: Bool
    /// The row must not exist yet.
    public var creating: Bool

    public init(
        _ table: TableSchema, id: String, set values: [String: JSONValue] = [:], add increments: [String: Int64] = [:],
        delete: Bool = false, creating: Bool = false
    ) {
        self.table = table
        self.id = id
        self.values = values
        self.increments = increments
        self.delete = delete
        self.creating = creating
    }

    /// The change this edit makes to `current` (the row's stored state, `nil` for a new row)
    /// when stamped with `stamp` by `replica`: the row's vector plus the stamp, each set value
    /// stamped, each counter's `replica` contribution grown by its increment, or a tombstone.
    /// Merging the result into `current` with `Merge.apply` gives the row's new state.
    public func change(from current: RowChange?, stamp: Stamp) -> RowChange {
        var change = RowChange(table: table.name, id: id, vv: current?.vv ?? .empty)
        change.vv.record(stamp)
        if delete {
            change.tombstone = stamp
            return change
        }
        for (column, value) in values { change.fields[column] = FieldValue(value, stamp: stamp) }
        for (name, amount) in increments where amount > 0 {
            var counter = current?.counters[name] ?? Counter()
            counter.add(amount, for: stamp.replica)
            change.counters[name] = counter
        }
        return change
    }
}
