import ChatModel
import Crypto
import Foundation
import SyncEngine

/// Tools a model may call during a turn. The turn records each call as a `tool_call` part,
/// runs it, records a `tool_result` part (with its duration, and an artifact when the tool
/// read or changed a file), and calls the model again with the results.
public protocol Toolbox: Sendable {
    /// The tools as chat-completions `tools` entries (`{"type":"function","function":{…}}`).
    var definitions: [JSONValue] { get }
    /// Runs one call. Tool failures are results the model sees, not errors of the turn.
    func run(name: String, arguments: JSONValue) async -> ToolOutput
}

/// What a tool call produced.
public struct ToolOutput: Sendable, Equatable {
    /// The `result` recorded in the part and sent back to the model.
    public var result: JSONValue
    public var artifact: ArtifactDraft?

    public init(result: JSONValue, artifact: ArtifactDraft? = nil) {
        self.result = result
        self.artifact = artifact
    }

    static func failure(_ message: String) -> ToolOutput { ToolOutput(result: ["error": .string(message)]) }
}

/// `read_file` and `write_file` inside one directory. Paths are relative to it; anything that
/// would leave it (absolute paths, `..`, symbolic links pointing out) is refused.
public struct WorkspaceTools: Toolbox {
    public let root: URL
    /// Files larger than this are not read into a reply.
    public var maxReadBytes = 256 << 10

    public init(root: URL) {
        self.root = root.standardizedFileURL.resolvingSymlinksInPath()
    }

    public var definitions: [JSONValue] {
        [
            Self.function("read_file", "Read a UTF-8 text file in the workspace.", properties: [
                "path": ["type": "string", "description": "Path relative to the workspace root."],
            ], required: ["path"]),
            Self.function("write_file", "Create or replace a UTF-8 text file in the workspace.", properties: [
                "path": ["type": "string", "description": "Path relative to the workspace root."],
                "content": ["type": "string", "description": "The whole new content of the file."],
            ], required: ["path", "content"]),
        ]
    }

    public func run(name: String, arguments: JSONValue) async -> ToolOutput {
        guard let path = arguments["path"]?.stringValue else { return .failure("\"path\" (a string) is required") }
        guard let url = resolve(path) else { return .failure("\(path) is outside the workspace") }
        switch name {
        case "read_file": return read(url, path: path)
        case "write_file":
            guard let content = arguments["content"]?.stringValue else { return .failure("\"content\" (a string) is required") }
            return write(url, path: path, content: content)
        default: return .failure("there is no tool named \(name)")
        }
    }

    func read(_ url: URL, path: String) -> ToolOutput {
        guard let data = FileManager.default.contents(atPath: url.path) else { return .failure("\(path) does not exist or cannot be read") }
        guard data.count <= maxReadBytes else { return .failure("\(path) is larger than \(maxReadBytes) bytes") }
        guard let text = String(data: data, encoding: .utf8) else { return .failure("\(path) is not UTF-8 text") }
        let artifact = Self.fileArtifact(path: path, data: data)
        return ToolOutput(result: .string(text), artifact: artifact)
    }

    func write(_ url: URL, path: String, content: String) -> ToolOutput {
        let old = FileManager.default.contents(atPath: url.path).flatMap { String(data: $0, encoding: .utf8) }
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url, options: .atomic)
        } catch {
            return .failure("\(path) could not be written")
        }
        let diff = UnifiedDiff(path: path, old: old, new: content)
        let patch = Data(diff.text.utf8)
        let summary: JSONValue = ["files": 1, "additions": .int(Int64(diff.additions)), "deletions": .int(Int64(diff.deletions))]
        let artifact = ArtifactDraft(
            kind: "file_diff", path: path, mime: "text/x-diff", size: Int64(patch.count), sha256: Self.sha256(patch),
            content: ["kind": "file_diff", "path": .string(path), "patch": .string(diff.text), "summary": summary])
        return ToolOutput(result: ["written": .string(path), "bytes": .int(Int64(content.utf8.count)), "summary": summary], artifact: artifact)
    }

    /// The file `path` names inside the root, or `nil` if it would leave it.
    func resolve(_ path: String) -> URL? {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\u{0}") else { return nil }
        let url = root.appendingPathComponent(path).standardizedFileURL
        // Resolve links in the part that exists, so a link cannot point the write outside.
        var existing = url
        while !FileManager.default.fileExists(atPath: existing.path), existing.pathComponents.count > root.pathComponents.count {
            existing.deleteLastPathComponent()
        }
        let resolved = existing.resolvingSymlinksInPath().pathComponents
        guard url.pathComponents.starts(with: root.pathComponents), resolved.starts(with: root.pathComponents) else { return nil }
        return url
    }

    static func fileArtifact(path: String, data: Data) -> ArtifactDraft {
        let sha = sha256(data)
        let mime = path.hasSuffix(".json") ? "application/json" : path.hasSuffix(".md") ? "text/markdown" : "text/plain"
        return ArtifactDraft(
            kind: "file", path: path, mime: mime, size: Int64(data.count), sha256: sha,
            content: ["kind": "file", "path": .string(path), "mime": .string(mime), "size": .int(Int64(data.count)), "sha256": .string(sha)])
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    static func function(_ name: String, _ description: String, properties: [String: JSONValue], required: [String]) -> JSONValue {
        ["type": "function", "function": [
            "name": .string(name), "description": .string(description),
            "parameters": ["type": "object", "properties": .object(properties), "required": .array(required.map(JSONValue.string))],
        ]]
    }
}

/// A unified diff of one file as a single hunk with full context (valid for `patch -p1`).
struct UnifiedDiff {
    var text: String
    var additions: Int
    var deletions: Int

    init(path: String, old: String?, new: String) {
        let oldLines = old.map(Self.lines) ?? []
        let newLines = Self.lines(new)
        let difference = newLines.difference(from: oldLines)
        var removed = Set<Int>()
        var inserted = Set<Int>()
        for change in difference {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        var body: [String] = []
        var i = 0
        var j = 0
        while i < oldLines.count || j < newLines.count {
            if i < oldLines.count, removed.contains(i) {
                body.append("-" + oldLines[i])
                i += 1
            } else if j < newLines.count, inserted.contains(j) {
                body.append("+" + newLines[j])
                j += 1
            } else {
                body.append(" " + oldLines[i])
                i += 1
                j += 1
            }
        }
        let oldRange = oldLines.isEmpty ? "0,0" : "1,\(oldLines.count)"
        let newRange = newLines.isEmpty ? "0,0" : "1,\(newLines.count)"
        let header = [old == nil ? "--- /dev/null" : "--- a/\(path)", "+++ b/\(path)", "@@ -\(oldRange) +\(newRange) @@"]
        text = (header + body).joined(separator: "\n") + "\n"
        additions = inserted.count
        deletions = removed.count
    }

    static func lines(_ text: String) -> [String] {
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
