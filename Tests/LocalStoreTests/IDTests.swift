import Foundation
import SyncEngine
import Testing
import LocalStore

@Suite("Row ids")
struct IDTests {
    @Test("new ids are lower-case version 4 UUIDs, valid row ids, and do not repeat")
    func newIDs() {
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = ChatStore.newID()
            #expect(id.utf8.count == 36)
            #expect(id == id.lowercased())
            let uuid = UUID(uuidString: id)
            #expect(uuid?.uuidString.lowercased() == id, "\(id) does not read back as a UUID")
            let bytes = Array(id.utf8)
            #expect(bytes[14] == UInt8(ascii: "4"), "version nibble of \(id)")
            #expect([UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a"), UInt8(ascii: "b")].contains(bytes[19]), "variant of \(id)")
            #expect(RowID.isValid(id))
            seen.insert(id)
        }
        #expect(seen.count == 20_000)
    }
}
