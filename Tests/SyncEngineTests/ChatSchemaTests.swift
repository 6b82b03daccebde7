import Testing
@testable import SyncEngine

@Suite("ChatSchema")
struct ChatSchemaTests {
    @Test func tablesComeParentsFirst() throws {
        #expect(ChatSchema.tables.map(\.name) == ["sessions", "messages", "message_parts", "artifacts"])
        for (index, table) in ChatSchema.tables.enumerated() {
            #expect(ChatSchema.table(table.name) == table)
            guard let parent = table.parent else { continue }
            let parentIndex = try #require(ChatSchema.tables.firstIndex { $0.name == parent.table }, "\(table.name)")
            #expect(parentIndex < index, "\(table.name) after its parent")
            let column = try #require(table.column(parent.column), "\(table.name).\(parent.column)")
            #expect(column.type == .text && !column.nullable && column.rule == .firstWriterWins)
            #expect(ChatSchema.children(of: parent.table).contains(table))
        }
        #expect(ChatSchema.table("users") == nil)
        #expect(ChatSchema.children(of: "artifacts").isEmpty)
        #expect(ChatSchema.children(of: "sessions").map(\.name) == ["messages"])
    }

    @Test func columnGroups() {
        let sessions = ChatSchema.sessions
        #expect(Set(sessions.counterColumns.map(\.name)) == [
            "total_input_tokens", "total_output_tokens", "total_cached_tokens", "total_reasoning_tokens",
            "total_tool_time_ms", "tool_counts_json",
        ])
        #expect(sessions.fieldColumns.count + sessions.counterColumns.count == sessions.columns.count)
        #expect(sessions.requiredColumns.map(\.name) == ["agent", "provider", "model", "project_path", "created_at"])
        #expect(sessions.column("last_active_at")?.rule == .maximum)
        #expect(ChatSchema.messages.counterColumns.isEmpty)
    }

    @Test func everyStatusHasARankAndFinishedOutranksPending() {
        for status in ChatSchema.messageStatuses { #expect(ChatSchema.statusRank[status] != nil, "\(status)") }
        #expect(ChatSchema.statusRank["pending"]! < ChatSchema.statusRank["complete"]!)
        #expect(ChatSchema.statusRank["pending"]! < ChatSchema.statusRank["error"]!)
        #expect(ChatSchema.messages.column("status")?.allowed == ChatSchema.messageStatuses)
    }
}
