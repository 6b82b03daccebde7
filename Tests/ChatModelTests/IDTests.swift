import ChatModel
import Foundation
import SyncEngine
import Testing

@Suite("Row ids")
struct IDTests {
    @Test("new ids are lower-case version 7 UUIDs, valid row ids, and do not repeat")
    func newIDs() {
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = ChatID.make()
            #expect(id.utf8.count == 36)
            #expect(id == id.lowercased())
            let uuid = UUID(uuidString: id)
            #expect(uuid?.uuidString.lowercased() == id, "\(id) does not read back as a UUID")
            let bytes = Array(id.utf8)
            #expect(bytes[14] == UInt8(ascii: "7"), "version nibble of \(id)")
            #expect([UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a"), UInt8(ascii: "b")].contains(bytes[19]), "variant of \(id)")
            #expect(RowID.isValid(id))
            seen.insert(id)
        }
        #expect(seen.count == 20_000)
    }

    /// The first 48 bits are the time: what keeps new rows at the right edge of each index.
    @Test("an id starts with its millisecond, so ids sort by the time they were made")
    func timeOrdered() throws {
        func millis(_ id: String) -> Int64? {
            Int64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16)
        }
        let times: [Int64] = [0, 1, 999, 1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 0xFFFF_FFFF_FFFF]
        let ids = times.map { ChatID.make(atMillis: $0) }
        #expect(ids.map(millis) == times.map(Optional.some))
        #expect(ids.sorted() == ids, "ids made at later milliseconds sort later")

        let before = ChatClock.nowMillis()
        let id = ChatID.make()
        let after = ChatClock.nowMillis()
        let stamped = try #require(millis(id))
        #expect((before...after).contains(stamped), "\(id) carries \(stamped), made between \(before) and \(after)")
    }
}
