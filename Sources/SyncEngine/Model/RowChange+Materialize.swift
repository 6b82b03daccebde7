extension RowChange {
    /// The value every column of `schema` takes in this state: stamped values as they are,
    /// counters as the sum of their contributions (0 when none), counter maps as an object of sums.
    public func materialized(schema: TableSchema) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        values.reserveCapacity(schema.columns.count)
        for column in schema.columns { values[column.name] = materializedValue(column) }
        return values
    }

    /// The value `column` takes in this state, as `materialized` gives it. Writing a row column
    /// by column needs no dictionary of every value.
    public func materializedValue(_ column: ColumnSchema) -> JSONValue {
        switch column.rule {
        case .counter:
            return .int(Self.fit(counters[column.name]?.total ?? 0, column.type))
        case .counterMap:
            var object: [String: JSONValue] = [:]
            let prefix = column.name + "."
            for (name, counter) in counters where name.hasPrefix(prefix) {
                object[String(name.dropFirst(prefix.count))] = .int(Self.fit(counter.total, column.type))
            }
            return .object(object)
        default:
            return fields[column.name]?.value ?? .null
        }
    }

    /// A counter total as its column can hold it: an `integer` column saturates at `Int32.max`
    /// (about 24.8 days of tool time) instead of failing every write of the row.
    static func fit(_ total: Int64, _ type: ColumnType) -> Int64 {
        type == .int32 ? min(total, Int64(Int32.max)) : total
    }

    /// The id of this row's parent, if the schema gives it one and the state carries it.
    public func parentID(schema: TableSchema) -> String? {
        guard let parent = schema.parent else { return nil }
        return fields[parent.column]?.value.stringValue
    }

    /// Restricts a full state to the given columns (plus every counter, the vector and the
    /// tombstone): what a replica pushes for a row whose listed columns it wrote.
    public func restricted(to columns: Set<String>) -> RowChange {
        var copy = self
        copy.fields = fields.filter { columns.contains($0.key) }
        return copy
    }
}
