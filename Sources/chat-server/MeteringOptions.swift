import ArgumentParser
import Foundation
import SyncServer

/// `serve`'s metering options (docs/METERING.md). Each flag falls back to an environment
/// variable; metering is off unless `--metering` or `CHAT_METERING=on`.
struct MeteringOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Charge replies against a prepaid balance and take x402 top-ups (default: $CHAT_METERING or off).")
    var metering: Bool?

    @Option(help: "JSON price table, micro-USD per million tokens per model (default: $CHAT_PRICES_FILE or built-in prices).")
    var pricesFile: String?

    @Option(help: "Refuse provider calls (402) below this balance in USD (default: $CHAT_MIN_BALANCE_USD or 0.01).")
    var minBalanceUsd: String?

    @Option(help: "The x402 facilitator's base URL (default: $CHAT_FACILITATOR_URL).")
    var facilitatorUrl: String?

    @Option(help: "The address top-ups are paid to (default: $CHAT_PAY_TO).")
    var payTo: String?

    @Option(help: "The x402 network (default: $CHAT_PAYMENT_NETWORK or base-sepolia).")
    var paymentNetwork: String?

    @Option(help: "The token contract top-ups are paid in, 6 decimals (default: $CHAT_PAYMENT_ASSET or USDC on Base Sepolia).")
    var paymentAsset: String?

    @Option(help: "The asset's EIP-712 domain name (default: $CHAT_PAYMENT_ASSET_NAME or USDC; USDC on Base mainnet is \"USD Coin\").")
    var paymentAssetName: String?

    @Option(help: "Top-up amounts offered in USD, comma-separated (default: $CHAT_TOP_UP_USD or 5,20).")
    var topUpUsd: String?

    @Option(help: "The server's public base URL, for absolute top-up URLs in 402 bodies (default: $CHAT_PUBLIC_URL).")
    var publicUrl: String?

    /// The configuration, or a `ValidationError` of one sentence.
    func configuration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> MeteringConfiguration {
        var configuration = MeteringConfiguration.disabled
        if let metering {
            configuration.enabled = metering
        } else if let text = environment["CHAT_METERING"], !text.isEmpty {
            switch text.lowercased() {
            case "on", "true", "1", "yes": configuration.enabled = true
            case "off", "false", "0", "no": configuration.enabled = false
            default: throw ValidationError("CHAT_METERING must be on or off, not \(text).")
            }
        }
        guard configuration.enabled else { return configuration }
        func value(_ flag: String?, _ name: String) -> String? {
            if let flag { return flag }
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        if let path = value(pricesFile, "CHAT_PRICES_FILE") {
            do {
                configuration.prices = try PriceTable.load(path: path)
            } catch {
                throw ValidationError("\(error).")
            }
        }
        if let text = value(minBalanceUsd, "CHAT_MIN_BALANCE_USD") {
            guard let micros = Money.parseUSD(text) else {
                throw ValidationError("The minimum balance must be a USD amount with at most 6 decimals, like 0.01, not \(text).")
            }
            configuration.minimumBalanceMicros = micros
        }
        if let text = value(topUpUsd, "CHAT_TOP_UP_USD") {
            let amounts = text.split(separator: ",").map { Money.parseUSD($0.trimmingCharacters(in: .whitespaces)) }
            guard !amounts.isEmpty, amounts.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("Top-up amounts must be positive USD amounts separated by commas, like 5,20, not \(text).")
            }
            configuration.topUpAmountsMicros = Array(Set(amounts.compactMap { $0 })).sorted()
        }
        configuration.facilitatorURL = value(facilitatorUrl, "CHAT_FACILITATOR_URL")
        configuration.payTo = value(payTo, "CHAT_PAY_TO")
        if let network = value(paymentNetwork, "CHAT_PAYMENT_NETWORK") { configuration.network = network }
        if let asset = value(paymentAsset, "CHAT_PAYMENT_ASSET") { configuration.asset = asset }
        if let name = value(paymentAssetName, "CHAT_PAYMENT_ASSET_NAME") { configuration.assetName = name }
        configuration.publicURL = value(publicUrl, "CHAT_PUBLIC_URL")
        do {
            try configuration.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return configuration
    }
}
