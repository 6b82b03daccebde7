import Foundation

/// One line of the result table: our number, the raw baseline from the same run, and the
/// slowdown (ours / raw for a cost, raw / ours for a rate, so above 1 always means slower).
struct Figure: Codable {
    var figure: Int
    var name: String
    var metric: String
    var unit: String
    var ours: Double?
    var baseline: Double?
    /// Ours relative to raw: > 1 means slower than the raw baseline (SQLite or PostgreSQL).
    var slowdown: Double?
    var target: String?
    var targetMet: Bool?
    var note: String?

    /// A cost (latency, time): smaller is better.
    static func cost(_ figure: Int, _ name: String, _ metric: String, unit: String, ours: Double?, raw: Double?,
                     target: String? = nil, met: Bool? = nil, note: String? = nil) -> Figure {
        let slowdown = (ours != nil && raw != nil && raw! > 0) ? ours! / raw! : nil
        return Figure(figure: figure, name: name, metric: metric, unit: unit, ours: ours, baseline: raw, slowdown: slowdown,
                      target: target, targetMet: met, note: note)
    }

    /// A rate (per second): larger is better.
    static func rate(_ figure: Int, _ name: String, _ metric: String, unit: String, ours: Double?, raw: Double?,
                     target: String? = nil, met: Bool? = nil, note: String? = nil) -> Figure {
        let slowdown = (ours != nil && raw != nil && ours! > 0) ? raw! / ours! : nil
        return Figure(figure: figure, name: name, metric: metric, unit: unit, ours: ours, baseline: raw, slowdown: slowdown,
                      target: target, targetMet: met, note: note)
    }
}

struct Report: Codable {
    var generatedAt: String
    var command: String
    var quick: Bool
    var parameters: [String: Int]
    var machine: Machine
    var figures: [Figure]
    var details: [String: Double]
    var notMeasured: [String]
}

func format(_ value: Double?, unit: String) -> String {
    guard let value else { return "—" }
    switch unit {
    case "µs": return String(format: "%.1f µs", value)
    case "ms": return String(format: "%.1f ms", value)
    case "MB": return String(format: "%.1f MB", value)
    case "changes": return String(format: "%.0f", value)
    default:
        if value >= 100 { return "\(Int(value.rounded())) \(unit)" }
        return String(format: "%.2f %@", value, unit)
    }
}

func renderTable(_ figures: [Figure]) -> String {
    let header = ["#", "Figure", "Metric", "Ours", "Raw", "Slowdown", "Target"]
    var rows = [header]
    for f in figures {
        rows.append([
            String(f.figure), f.name, f.metric, format(f.ours, unit: f.unit), format(f.baseline, unit: f.unit),
            f.slowdown.map { String(format: "%.2f×", $0) } ?? "—",
            f.target.map { $0 + (f.targetMet.map { $0 ? " ✓" : " ✗" } ?? "") } ?? "",
        ])
    }
    var widths = [Int](repeating: 0, count: header.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ row: [String]) -> String {
        row.enumerated().map { i, cell in cell + String(repeating: " ", count: widths[i] - cell.count) }.joined(separator: "  ")
    }
    var out = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
    out += rows.dropFirst().map(line)
    return out.joined(separator: "\n")
}
