import ArgumentParser
import ChatModel
import Foundation
import LocalStore
import SyncEngine

struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the text of your messages, offline.",
        discussion: """
            Matches every word of QUERY (case and accents ignored; `word*` matches a prefix, \
            "two words" a phrase) in this replica's message text, best matches first.
            """)

    @OptionGroup var store: StoreOptions
    @Argument(help: "The words to look for.") var query: [String]
    @Option(help: "Only this session (an id or a unique prefix).") var session: String?
    @Option(help: "At most this many matches.") var limit = 20
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await handled {
            let text = query.joined(separator: " ")
            guard ChatStore.isSearchable(text) else {
                throw CLIError("The query has no words to search for; give at least one letter or digit.")
            }
            let store = try store.open()
            let sessionID = try session.map { try resolveSession($0, in: store).id }
            let hits = try store.search(text, sessionID: sessionID, limit: limit)
            if json { return try printJSON(hits) }
            if hits.isEmpty { print("No messages match \(text)."); return }
            for hit in hits {
                print("\(hit.sessionID)  \(formatTime(hit.createdAt))  [\(hit.role.rawValue)] \(Terminal.bold(hit.sessionTitle ?? "(untitled)"))")
                print("    \(Terminal.highlight(hit.snippet.replacingOccurrences(of: "\n", with: " ")))")
            }
        }
    }
}

struct Export: AsyncParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case markdown, json
    }

    static let configuration = CommandConfiguration(
        abstract: "Export sessions as Markdown to read, or as JSON that `chat-cli import` reads back.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The session to export (an id or a unique prefix).") var session: String?
    @Flag(help: "Export every session, archived ones too.") var all = false
    @Option(help: "markdown or json.") var format: Format = .markdown
    @Option(help: "Write to this file instead of standard output.") var out: String?

    func validate() throws {
        if all == (session != nil) {
            throw ArgumentParser.ValidationError("Give either a session id or --all.")
        }
    }

    func run() async throws {
        try await handled {
            let store = try store.open()
            let ids = try session.map { [try resolveSession($0, in: store).id] }
            let export = try store.exportSessions(ids: ids)
            let data: Data
            switch format {
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                data = try encoder.encode(export) + Data("\n".utf8)
            case .markdown:
                data = Data(MarkdownExport.render(export).utf8)
            }
            if let out {
                do {
                    try data.write(to: URL(fileURLWithPath: out), options: .atomic)
                } catch {
                    throw CLIError("Cannot write \(out) (\(error.localizedDescription)); choose a path in a directory you can write to.")
                }
                FileHandle.standardError.write(Data("Exported \(export.sessions.count) session(s) to \(out).\n".utf8))
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import sessions from a `chat-cli export --format json` file; they sync like new local writes.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The JSON export file (- for standard input).") var file: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await handled {
            let data: Data
            do {
                data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw CLIError("Cannot read \(file) (\(error.localizedDescription)); check the path.")
            }
            let export: ChatExport
            do {
                export = try JSONDecoder().decode(ChatExport.self, from: data)
            } catch {
                throw CLIError("\(file) is not a chat-cli JSON export; create one with `chat-cli export --all --format json`.")
            }
            let report = try store.open().importSessions(export)
            if json { return try printJSON(report) }
            print("Imported \(report.imported) session(s); skipped \(report.skipped) already in this replica.")
        }
    }
}

/// The Markdown form of an export: one section per session, one per message, with tool calls,
/// results and artifacts spelled out; reasoning in a collapsed `<details>` block.
enum MarkdownExport {
    static func render(_ export: ChatExport) -> String {
        var out: [String] = []
        for item in export.sessions {
            let session = item.session
            out.append("# \(session.title ?? "(untitled)")")
            out.append("")
            var facts = ["Session `\(session.id)`", "\(session.provider) / \(session.model)", "created \(formatTime(session.createdAt))"]
            if session.isArchived { facts.append("archived") }
            let tokens = session.totalInputTokens + session.totalOutputTokens
            if tokens > 0 { facts.append("\(tokens) tokens") }
            out.append(facts.joined(separator: " · "))
            let artifacts = Dictionary(item.artifacts.map { ($0.messagePartID, $0) }, uniquingKeysWith: { first, _ in first })
            for message in item.messages {
                out.append("")
                var heading = "## \(message.role.rawValue.capitalized) · \(formatTime(message.createdAt))"
                if message.status != .complete { heading += " (\(message.isAborted == true ? "aborted" : message.status.rawValue))" }
                out.append(heading)
                for part in message.parts {
                    out.append("")
                    out.append(contentsOf: render(part, artifact: artifacts[part.id]))
                }
                if let usage = message.usage {
                    out.append("")
                    out.append("*\(usage.promptTokens) prompt + \(usage.completionTokens) completion tokens\(message.latencyMs.map { ", \($0) ms" } ?? "")*")
                }
            }
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    static func render(_ part: MessagePart, artifact: Artifact?) -> [String] {
        var lines: [String]
        switch part.type {
        case .text:
            lines = [part.text ?? ""]
        case .reasoning:
            lines = ["<details><summary>Reasoning</summary>", "", part.text ?? "", "", "</details>"]
        case .toolCall:
            lines = ["**Tool call** `\(part.toolName ?? "?")`", "", fenced(json(part.content["args"] ?? part.content), "json")]
        case .toolResult:
            var head = "**Tool result** `\(part.toolName ?? "?")`"
            if let duration = part.toolDurationMs { head += " (\(duration) ms)" }
            let result = part.content["result"] ?? part.content
            let output = result.stringValue ?? json(result)
            lines = [head, "", fenced(output, "")]
        case .error:
            lines = ["> **Error:** \(part.content["message"]?.stringValue ?? json(part.content))"]
        case .image:
            lines = ["*[image]*"]
        }
        if let artifact {
            var facts = ["**Artifact** \(artifact.kind)"]
            if let path = artifact.path { facts.append("`\(path)`") }
            if let size = artifact.size { facts.append("\(size) bytes") }
            if let sha = artifact.sha256 { facts.append("sha256 `\(sha.prefix(12))…`") }
            lines += ["", facts.joined(separator: " · ")]
            if let patch = part.content["artifact"]?["patch"]?.stringValue { lines += ["", fenced(patch, "diff")] }
        }
        return lines
    }

    static func json(_ value: JSONValue) -> String {
        (try? WireJSON.encodeString(value)) ?? ""
    }

    /// A fenced block whose fence is longer than any backtick run inside, so content never ends it.
    static func fenced(_ text: String, _ language: String) -> String {
        var longest = 0
        var run = 0
        for character in text {
            run = character == "`" ? run + 1 : 0
            longest = max(longest, run)
        }
        let fence = String(repeating: "`", count: max(3, longest + 1))
        return "\(fence)\(language)\n\(text)\n\(fence)"
    }
}
