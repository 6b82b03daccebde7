/// Usage metering, the prepaid balance and x402 top-ups. **Off by default**: a self-hosted server
/// needs no payments, records no charges and never answers 402. `chat-server serve` turns it on
/// with `--metering` or `CHAT_METERING=on` (see docs/METERING.md).
public struct MeteringConfiguration: Sendable, Equatable {
    /// Whether replies are charged and the 402 gate is active.
    public var enabled: Bool
    /// Requests that would call the provider are refused (402) while the balance is below this.
    public var minimumBalanceMicros: Int64
    public var prices: PriceTable
    /// The x402 facilitator's base URL; `/verify` and `/settle` are appended.
    public var facilitatorURL: String?
    /// How long one facilitator call may take. Settling waits for the chain, so this is not
    /// short; a facilitator that is down is noticed at once (connection refused, or the 2 s
    /// connect timeout).
    public var facilitatorTimeout: Duration
    /// The x402 network, e.g. `base-sepolia` or `base`.
    public var network: String
    /// The token contract the top-ups are paid in (USDC: 6 decimals, 1 atomic unit = 1 micro-USD).
    public var asset: String
    /// The EIP-712 domain of `asset`, sent as the requirements' `extra`.
    public var assetName: String
    public var assetVersion: String
    /// The address that receives top-ups.
    public var payTo: String?
    /// The top-up amounts offered, one x402 requirement each.
    public var topUpAmountsMicros: [Int64]
    /// How long a client has to complete a payment.
    public var maxTimeoutSeconds: Int
    /// The server's public base URL (e.g. `https://chat.example.com`), used to make the
    /// requirements' `resource` an absolute URL; without it `resource` is the path `/v1/billing/top-up`.
    public var publicURL: String?

    /// USDC on Base Sepolia, the default test network.
    public static let baseSepoliaUSDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"

    public init(
        enabled: Bool = false, minimumBalanceMicros: Int64 = 10_000, prices: PriceTable = .standard, facilitatorURL: String? = nil,
        facilitatorTimeout: Duration = .seconds(30), network: String = "base-sepolia", asset: String = Self.baseSepoliaUSDC,
        assetName: String = "USDC", assetVersion: String = "2", payTo: String? = nil,
        topUpAmountsMicros: [Int64] = [5_000_000, 20_000_000], maxTimeoutSeconds: Int = 300, publicURL: String? = nil
    ) {
        self.enabled = enabled
        self.minimumBalanceMicros = minimumBalanceMicros
        self.prices = prices
        self.facilitatorURL = facilitatorURL
        self.facilitatorTimeout = facilitatorTimeout
        self.network = network
        self.asset = asset
        self.assetName = assetName
        self.assetVersion = assetVersion
        self.payTo = payTo
        self.topUpAmountsMicros = topUpAmountsMicros
        self.maxTimeoutSeconds = maxTimeoutSeconds
        self.publicURL = publicURL
    }

    /// Metering off: the default.
    public static let disabled = MeteringConfiguration()

    /// How long a payment may stay `pending` before a retry by the same user takes it over: longer
    /// than any attempt can last (verify and settle, each with its deadline), so only a payment
    /// left behind by a server that died mid-attempt qualifies.
    public var stalePaymentAfter: Duration { facilitatorTimeout * 2 + .seconds(60) }

    /// The top-up endpoint, absolute when `publicURL` is set.
    public var topUpURL: String {
        guard let publicURL, !publicURL.isEmpty else { return BillingController.topUpPath }
        return (publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL) + BillingController.topUpPath
    }

    /// Refuses a configuration that is enabled but cannot take payments; one sentence each.
    public func validate() throws {
        guard enabled else { return }
        guard let facilitatorURL, !facilitatorURL.isEmpty else {
            throw ConfigurationError("Metering is on but no facilitator is configured; set --facilitator-url or CHAT_FACILITATOR_URL.")
        }
        guard facilitatorURL.hasPrefix("http://") || facilitatorURL.hasPrefix("https://") else {
            throw ConfigurationError("The facilitator URL must start with http:// or https://.")
        }
        guard let payTo, !payTo.isEmpty else {
            throw ConfigurationError("Metering is on but no payee address is configured; set --pay-to or CHAT_PAY_TO.")
        }
        guard !network.isEmpty, !asset.isEmpty else {
            throw ConfigurationError("Metering is on but the payment network or asset is empty; set CHAT_PAYMENT_NETWORK and CHAT_PAYMENT_ASSET.")
        }
        guard !topUpAmountsMicros.isEmpty, topUpAmountsMicros.allSatisfy({ $0 > 0 }) else {
            throw ConfigurationError("Metering is on but no positive top-up amount is configured; set CHAT_TOP_UP_USD, e.g. 5,20.")
        }
        guard minimumBalanceMicros >= 0 else {
            throw ConfigurationError("The minimum balance must be 0 or more.")
        }
        guard maxTimeoutSeconds > 0 else { throw ConfigurationError("The payment timeout must be positive.") }
    }
}
