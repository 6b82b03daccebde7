/// Amounts of money are whole **micro-USD** (`Int64`, 1 USD = 1,000,000) everywhere: in prices,
/// balances, the ledger, and on the wire. USDC has 6 decimals, so one USDC atomic unit is exactly
/// one micro-USD and x402 amounts (`maxAmountRequired`, `authorization.value`) convert without
/// rounding. No floating point touches money.
public enum Money {
    /// Micro-USD per USD.
    public static let microsPerUSD: Int64 = 1_000_000

    /// `1250` → `"0.001250"`, `-2_500_000` → `"-2.500000"`: six decimals, as in headers.
    public static func usd(_ micros: Int64) -> String {
        let magnitude = micros.magnitude
        let whole = magnitude / UInt64(microsPerUSD)
        let fraction = String(magnitude % UInt64(microsPerUSD))
        return (micros < 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// Parses a decimal USD amount with at most six decimals (`"5"`, `"0.01"`, `"1.250000"`) into
    /// micro-USD exactly; `nil` for anything else (signs, exponents, more decimals, overflow).
    public static func parseUSD(_ text: String) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first, !wholeText.isEmpty, wholeText.allSatisfy(\.isASCIIDigit) else { return nil }
        var fractionText = parts.count == 2 ? String(parts[1]) : ""
        guard fractionText.count <= 6, fractionText.allSatisfy(\.isASCIIDigit), parts.count == 1 || !fractionText.isEmpty else {
            return nil
        }
        fractionText += String(repeating: "0", count: 6 - fractionText.count)
        guard let whole = Int64(wholeText), let fraction = Int64(fractionText) else { return nil }
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: microsPerUSD)
        guard !overflow else { return nil }
        let (sum, overflow2) = scaled.addingReportingOverflow(fraction)
        return overflow2 ? nil : sum
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
