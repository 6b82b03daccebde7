/// A change or request that breaks the schema or the protocol. The message names the row and
/// the field and says what is expected; it never contains the offending value.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Row ids: 1 to 128 characters of `A-Z a-z 0-9 _ - . :` (UUIDs, ULIDs and prefixed ids fit).
public enum RowID {
    public static func isValid(_ text: String) -> Bool {
        let bytes = text.utf8
        guard (1...128).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                || byte == 95 || byte == 45 || byte == 46 || byte == 58
        }
    }
}

/// Checks changes against `ChatSchema` before anything is stored. The server runs it on every
/// pushed change; the local store runs it on every local write, so nothing unpushable is queued.
public struct ChangeValidator: Sendable {
    /// How far in the future (wall clock) a stamp may be before it is refused; a replica with a
    /// wildly wrong clock would otherwise drag every HLC forward.
    public var maxClockSkewMillis: Int64

    public init(maxClockSkewMillis: Int64 = 24 * 3_600_000) {
        self.maxClockSkewMillis = maxClockSkewMillis
    }

    public func validate(_ change: RowChange, nowMillis: Int64) throws(ValidationError) {
        guard let schema = ChatSchema.table(change.table) else {
            throw ValidationError("unknown table \"\(change.table.prefix(64))\"; expected one of sessions, messages, message_parts, artifacts")
        }
        // Messages are built only when something is refused: this runs on every change.
        var row: String { "\(change.table)/\(change.id.prefix(128))" }
        guard RowID.isValid(change.id) else {
            throw ValidationError("\(change.table): a row id must be 1-128 characters of A-Z a-z 0-9 _ - . :")
        }
        let limit = nowMillis + maxClockSkewMillis
        // The columns of a row written in one go share a stamp: each distinct stamp is checked
        // once (the checks depend on the stamp alone).
        var checked: Stamp?
        func checkStamp(_ stamp: Stamp, _ what: @autoclosure () -> String) throws(ValidationError) {
            if stamp == checked { return }
            guard stamp.hlc.millis <= limit else {
                throw ValidationError("\(row): the stamp of \(what()) is more than \(maxClockSkewMillis / 3_600_000) h in the future; fix the device clock")
            }
            guard change.vv.contains(stamp) else {
                throw ValidationError("\(row): the version vector does not include the stamp of \(what())")
            }
            checked = stamp
        }
        if let tombstone = change.tombstone {
            guard change.fields.isEmpty, change.counters.isEmpty else {
                throw ValidationError("\(row): a deleted row carries no fields or counters")
            }
            try checkStamp(tombstone, "the delete")
        }
        for (name, field) in change.fields {
            guard let column = schema.column(name) else {
                throw ValidationError("\(row): unknown column \"\(name.prefix(64))\"")
            }
            guard !column.rule.isCounter else {
                throw ValidationError("\(row): \"\(name)\" is a counter; send it in counters")
            }
            try checkStamp(field.stamp, "\"\(name)\"")
            try Self.check(field.value, column: column, row: row)
            if let parent = schema.parent, parent.column == name, let id = field.value.stringValue, !RowID.isValid(id) {
                throw ValidationError("\(row): \"\(name)\" must be a valid row id")
            }
        }
        for (name, counter) in change.counters {
            let (columnName, key) = CounterKey.split(name)
            guard let column = schema.column(columnName), column.rule.isCounter else {
                throw ValidationError("\(row): unknown counter \"\(name.prefix(64))\"")
            }
            if column.rule == .counterMap {
                guard let key, (1...200).contains(key.utf8.count), !key.utf8.contains(0) else {
                    throw ValidationError("\(row): counters of \"\(columnName)\" are named \"\(columnName).<key>\" with a 1-200 byte key")
                }
            } else if key != nil {
                throw ValidationError("\(row): \"\(columnName)\" is a plain counter and takes no key")
            }
            for value in counter.contributions.values where value < 0 || (column.type == .int32 && value > Int64(Int32.max)) {
                throw ValidationError("\(row): counter \"\(name.prefix(64))\" contributions must be between 0 and the column's maximum")
            }
        }
    }

    /// The required columns a state still lacks before it can become a stored row.
    public static func missingRequired(_ state: RowChange) -> [String] {
        guard !state.isDeleted, let schema = ChatSchema.table(state.table) else { return [] }
        return schema.requiredColumns.compactMap { column in
            guard let value = state.fields[column.name]?.value, !value.isNull else { return column.name }
            return nil
        }
    }

    static func check(_ value: JSONValue, column: ColumnSchema, row: @autoclosure () -> String) throws(ValidationError) {
        var field: String { "\(row()): \"\(column.name)\"" }
        if value.isNull {
            guard column.nullable else { throw ValidationError("\(field) may not be null") }
            return
        }
        switch column.type {
        case .text:
            guard let text = value.stringValue else { throw ValidationError("\(field) must be a string") }
            guard text.utf8.count <= column.maxBytes else {
                throw ValidationError("\(field) is longer than \(column.maxBytes) bytes")
            }
            guard !text.utf8.contains(0) else { throw ValidationError("\(field) may not contain NUL characters") }
            if let allowed = column.allowed, !allowed.contains(text) {
                throw ValidationError("\(field) must be one of \(allowed.sorted().joined(separator: ", "))")
            }
        case .int32:
            guard let int = value.intValue, int >= Int64(Int32.min), int <= Int64(Int32.max) else {
                throw ValidationError("\(field) must be a 32-bit integer")
            }
        case .int64:
            guard value.intValue != nil else { throw ValidationError("\(field) must be an integer") }
        case .boolean:
            guard value.boolValue != nil else { throw ValidationError("\(field) must be true or false") }
        case .timestamp:
            guard let millis = value.intValue, millis >= 0, millis <= HLC.maxMillis else {
                throw ValidationError("\(field) must be a time in milliseconds since 1970")
            }
        case .json:
            // One pass for both checks; the NUL scan runs again only to word a refusal.
            let size = value.encodedByteCountWithoutNUL ?? Int.max
            if size == Int.max, value.containsNUL { throw ValidationError("\(field) may not contain NUL characters") }
            guard size <= column.maxBytes else {
                throw ValidationError("\(field) is larger than \(column.maxBytes) bytes")
            }
        }
    }
}

extension JSONValue {
    /// PostgreSQL text and jsonb cannot hold U+0000.
    var containsNUL: Bool {
        switch self {
        case .string(let s): s.utf8.contains(0)
        case .array(let a): a.contains { $0.containsNUL }
        case .object(let o): o.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        default: false
        }
    }
}
