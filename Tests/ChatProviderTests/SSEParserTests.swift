import Testing
@testable import ChatProvider

@Suite("SSE parser")
struct SSEParserTests {
    /// Feeds `text` one byte at a time and returns every event.
    func parseByteByByte(_ text: String) -> [ServerSentEvent] {
        var parser = SSEParser()
        var events: [ServerSentEvent] = []
        for byte in text.utf8 { events += parser.feed(CollectionOfOne(byte)) }
        return events
    }

    @Test func parsesEventsFedByteByByte() {
        let stream = """
            \u{FEFF}: a comment\r
            retry: 500\r
            \r
            event: message\r
            id: 7\r
            data: {"a":"Grüße 世界 🌍"}\r
            \r
            data: first line\r
            data:second line\r
            data\r
            \r
            data: lone CR\r\rdata: LF only

            unknown: field
            data: [DONE]

            data: incomplete at the end
            """
        let events = parseByteByByte(stream)
        #expect(
            events == [
                ServerSentEvent(event: "message", data: #"{"a":"Grüße 世界 🌍"}"#, id: "7"),
                ServerSentEvent(data: "first line\nsecond line\n", id: "7"),
                ServerSentEvent(data: "lone CR", id: "7"),
                ServerSentEvent(data: "LF only", id: "7"),
                ServerSentEvent(data: "[DONE]", id: "7"),
            ])
    }

    @Test func byteByByteMatchesWholeChunks() {
        let stream = "data: {\"x\":1}\r\n\r\ndata: {\"y\":\"é\"}\n\ndata: [DONE]\n\n"
        var parser = SSEParser()
        let whole = parser.feed(Array(stream.utf8))
        #expect(whole.map(\.data) == [#"{"x":1}"#, #"{"y":"é"}"#, "[DONE]"])
        #expect(parseByteByByte(stream) == whole)
        // And split at every possible point into two pieces.
        let bytes = Array(stream.utf8)
        for cut in 0...bytes.count {
            var split = SSEParser()
            let events = split.feed(bytes[..<cut]) + split.feed(bytes[cut...])
            #expect(events == whole, "cut at \(cut)")
        }
    }

    @Test func crAtTheEndOfOneChunkAndLFAtTheStartOfTheNextEndOneLine() {
        var parser = SSEParser()
        #expect(parser.feed(Array("data: a\r".utf8)).isEmpty)
        #expect(parser.feed(Array("\n\r".utf8)) == [ServerSentEvent(data: "a")])
        #expect(parser.feed(Array("\ndata: b\r\r".utf8)) == [ServerSentEvent(data: "b")])
    }

    @Test func emptyDataIsAnEventButNoDataIsNot() {
        #expect(parseByteByByte("event: ping\n\n: only a comment\n\ndata:\n\n") == [ServerSentEvent(data: "")])
    }

    @Test func aSplitMultiByteCharacterIsDecodedWhole() {
        var parser = SSEParser()
        let bytes = Array("data: 🌍\n\n".utf8)
        let emoji = bytes.firstIndex(of: 0xF0)!
        #expect(parser.feed(bytes[..<(emoji + 2)]).isEmpty)
        #expect(parser.bufferedLineBytes == emoji + 2)
        #expect(parser.feed(bytes[(emoji + 2)...]) == [ServerSentEvent(data: "🌍")])
        #expect(parser.bufferedLineBytes == 0)
    }
}
