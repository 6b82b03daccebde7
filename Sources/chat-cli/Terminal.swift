import Foundation
import SyncEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the terminal gets: styling only on a terminal, and never when `NO_COLOR` is set
/// (https://no-color.org) or `TERM` is `dumb`.
enum Terminal {
    static func isTTY(_ descriptor: Int32) -> Bool { isatty(descriptor) == 1 }

    static func colorAllowed(_ descriptor: Int32) -> Bool {
        let environment = ProcessInfo.processInfo.environment
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return false }
        if environment["TERM"] == "dumb" { return false }
        return isTTY(descriptor)
    }

    static let stdoutColor = colorAllowed(STDOUT_FILENO)
    static let stderrColor = colorAllowed(STDERR_FILENO)

    static func bold(_ text: String) -> String { stdoutColor ? "\u{1B}[1m\(text)\u{1B}[22m" : text }
    static func dim(_ text: String) -> String { stdoutColor ? "\u{1B}[2m\(text)\u{1B}[22m" : text }
    /// `error:` in red on a colour terminal.
    static var errorPrefix: String { stderrColor ? "\u{1B}[31merror:\u{1B}[39m" : "error:" }

    /// A search snippet: matched terms (between `[` and `]`) in bold on a colour terminal.
    static func highlight(_ snippet: String) -> String {
        guard stdoutColor else { return snippet }
        return snippet.replacingOccurrences(of: "[", with: "\u{1B}[1m").replacingOccurrences(of: "]", with: "\u{1B}[22m")
    }
}

/// Progress of a sync round on standard error: one line redrawn in place on a terminal, plain
/// lines (at most one a second, and one per phase) otherwise. Nothing under `--json`.
final class SyncProgress: Sendable {
    private struct State {
        var started = Date()
        var lastLine = Date.distantPast
        var phase: SyncRoundProgress.Phase?
        var drawn = false
    }

    private let interactive: Bool
    private let state = Mutex(State())

    init() { interactive = Terminal.isTTY(STDERR_FILENO) }

    func update(_ progress: SyncRoundProgress) {
        let phase = progress.phase
        let line: String? = state.withLock { state in
            let now = Date()
            if state.phase != phase {
                if state.drawn, interactive { FileHandle.standardError.write(Data("\n".utf8)) }
                state.phase = phase
                state.started = now
                state.lastLine = .distantPast
            }
            let elapsed = max(now.timeIntervalSince(state.started), 0.001)
            let text: String
            switch phase {
            case .push:
                let width = 24
                let done = progress.pushTotal == 0 ? width : min(width, progress.pushed * width / progress.pushTotal)
                text = "pushing [\(String(repeating: "#", count: done))\(String(repeating: ".", count: width - done))] "
                    + "\(progress.pushed)/\(progress.pushTotal) changes, \(Int(Double(progress.pushed) / elapsed))/s"
            case .pull:
                text = "pulling \(progress.pulled) rows, \(Int(Double(progress.pulled) / elapsed))/s\(progress.more ? "…" : ", done")"
            }
            let finished = phase == .push ? progress.pushed >= progress.pushTotal : !progress.more
            if interactive {
                state.drawn = true
                return "\r\u{1B}[2K" + text
            }
            guard finished || now.timeIntervalSince(state.lastLine) >= 1 else { return nil }
            state.lastLine = now
            return text + "\n"
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// Ends the in-place line so that what follows starts on its own.
    func finish() {
        let drawn = state.withLock { state in
            defer { state.drawn = false }
            return state.drawn
        }
        if drawn, interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
