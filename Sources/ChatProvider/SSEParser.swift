/// One Server-Sent Event: the joined `data:` lines of one blank-line-terminated block.
public struct ServerSentEvent: Sendable, Equatable {
    /// The `event:` field, or `nil` for the default type (`message`).
    public var event: String?
    /// The `data:` lines, joined with `\n`.
    public var data: String
    /// The last `id:` seen so far in the stream, if any.
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// An incremental parser for the `text/event-stream` format, as the HTML standard defines it
/// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
///
/// Feed it bytes as they arrive, split anywhere (inside a line, a `\r\n`, or a UTF-8 character);
/// it returns each event once its terminating blank line has arrived. Lines end with `\n`, `\r\n`
/// or `\r`; lines starting with `:` are comments; `retry:` and unknown fields are ignored; an
/// event still incomplete when the stream ends is never returned (so just stop feeding).
public struct SSEParser: Sendable {
    /// The bytes of the line being read.
    private var line: [UInt8] = []
    /// The previous byte was a `\r`, so a `\n` right after it ends nothing.
    private var afterCarriageReturn = false
    private var isFirstLine = true
    private var data = ""
    private var hasData = false
    private var eventType = ""
    private var lastEventID: String?

    public init() {}

    /// How many bytes of an unfinished line the parser holds; callers can cap it.
    public var bufferedLineBytes: Int { line.count }

    /// Parses `bytes` and returns the events they complete, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n"):
                if afterCarriageReturn {
                    afterCarriageReturn = false
                } else {
                    endLine(into: &events)
                }
            case UInt8(ascii: "\r"):
                afterCarriageReturn = true
                endLine(into: &events)
            default:
                afterCarriageReturn = false
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine(into events: inout [ServerSentEvent]) {
        defer { line.removeAll(keepingCapacity: true) }
        var bytes = line[...]
        if isFirstLine {
            isFirstLine = false
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        }
        if bytes.isEmpty {
            dispatch(into: &events)
            return
        }
        if bytes.first == UInt8(ascii: ":") { return }
        let name: String
        var value: ArraySlice<UInt8>
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            name = String(decoding: bytes[..<colon], as: UTF8.self)
            value = bytes[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            name = String(decoding: bytes, as: UTF8.self)
            value = []
        }
        switch name {
        case "data":
            if hasData { data += "\n" }
            data += String(decoding: value, as: UTF8.self)
            hasData = true
        case "event":
            eventType = String(decoding: value, as: UTF8.self)
        case "id":
            if !value.contains(0) { lastEventID = String(decoding: value, as: UTF8.self) }
        default:
            break  // `retry` and unknown fields
        }
    }

    private mutating func dispatch(into events: inout [ServerSentEvent]) {
        defer {
            data = ""
            hasData = false
            eventType = ""
        }
        guard hasData else { return }
        events.append(ServerSentEvent(event: eventType.isEmpty ? nil : eventType, data: data, id: lastEventID))
    }
}
