import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import SyncEngine

/// What one completed reply cost and the balance it left.
public struct Charge: Sendable, Equatable, Codable {
    public var messageID: String
    public var model: String
    public var usage: MeteredUsage
    /// Micro-USD.
    public var costMicros: Int64
    /// Micro-USD after the charge; negative when the reply overdrew the balance.
    public var balanceMicros: Int64

    public init(messageID: String, model: String, usage: MeteredUsage, costMicros: Int64, balanceMicros: Int64) {
        self.messageID = messageID
        self.model = model
        self.usage = usage
        self.costMicros = costMicros
        self.balanceMicros = balanceMicros
    }

    /// `"0.001250"`.
    public var costUSD: String { Money.usd(costMicros) }
    /// `"4.998750"`.
    public var balanceUSD: String { Money.usd(balanceMicros) }

    /// The JSON of a stream's final event carries these fields as well.
    enum CodingKeys: String, CodingKey {
        case messageID, model, usage, costMicros, balanceMicros, costUSD = "costUsd", balanceUSD = "balanceRemainingUsd"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            messageID: try container.decode(String.self, forKey: .messageID), model: try container.decode(String.self, forKey: .model),
            usage: try container.decode(MeteredUsage.self, forKey: .usage),
            costMicros: try container.decode(Int64.self, forKey: .costMicros),
            balanceMicros: try container.decode(Int64.self, forKey: .balanceMicros))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(messageID, forKey: .messageID)
        try container.encode(model, forKey: .model)
        try container.encode(usage, forKey: .usage)
        try container.encode(costMicros, forKey: .costMicros)
        try container.encode(balanceMicros, forKey: .balanceMicros)
        try container.encode(costUSD, forKey: .costUSD)
        try container.encode(balanceUSD, forKey: .balanceUSD)
    }
}

/// Metering as the request handlers use it: the 402 gate before a provider call, the charge in
/// the transaction that completes a reply, and the response headers. With metering off every
/// call is a no-op (`gate` passes, `charge` returns `nil`).
///
/// ```swift
/// try await metering.gate(userID: user.id, resource: "POST /v1/sessions/\(id)/messages")
/// // … call the provider, stream the reply …
/// let charge = try await repository.transaction { connection in
///     // … complete the message …
///     return try await metering.charge(userID: user.id, messageID: reply.id, model: model, usage: usage, on: connection)
/// }
/// if let charge { headers.append(contentsOf: Metering.headers(for: charge)) }
/// ```
public struct Metering: Sendable {
    public let configuration: MeteringConfiguration
    /// `nil` only for `Metering.disabled`, which has no database.
    let repository: BillingRepository?
    let logger: Logger

    public init(configuration: MeteringConfiguration, client: PostgresClient, logger: Logger) {
        self.configuration = configuration
        self.repository = BillingRepository(client: client, logger: logger)
        self.logger = logger
    }

    init(configuration: MeteringConfiguration, repository: BillingRepository?, logger: Logger) {
        self.configuration = configuration
        self.repository = repository
        self.logger = logger
    }

    /// Metering off, without a database: for routers built without one.
    public static let disabled = Metering(configuration: .disabled, repository: nil, logger: Logger(label: "metering"))

    public var isEnabled: Bool { configuration.enabled && repository != nil }

    /// Passes when metering is off or the user's balance is at least the minimum; otherwise
    /// throws `PaymentRequired` (answered 402 with the x402 body offering the top-ups).
    /// `resource` names what was refused (e.g. `POST /v1/sessions/…/messages`), for the log.
    public func gate(userID: Int64, resource: String) async throws {
        guard isEnabled, let repository else { return }
        let balance = try await repository.balance(userID: userID)
        guard balance < configuration.minimumBalanceMicros else { return }
        logger.info("payment required", metadata: [
            "user": "\(userID)", "resource": "\(resource)", "balance_micros": "\(balance)",
            "minimum_micros": "\(configuration.minimumBalanceMicros)",
        ])
        throw paymentRequired(
            "the balance is \(Money.usd(balance)) USD, below the minimum of \(Money.usd(configuration.minimumBalanceMicros)) USD; "
                + "top up with an x402 payment to \(configuration.topUpURL)")
    }

    /// Charges a completed reply **on `connection`, inside the transaction that completes it**:
    /// computes the cost from the price table, debits it with a ledger row, logs it, and returns
    /// it; `nil` when metering is off. Charging the same `messageID` again changes nothing and
    /// returns the current balance (with this call's computed cost). Call it last in the
    /// transaction, after any `users … FOR UPDATE` (see `BillingRepository.debit` on lock order).
    public func charge(
        userID: Int64, messageID: String, model: String, usage: MeteredUsage, on connection: PostgresConnection
    ) async throws -> Charge? {
        guard isEnabled, let repository else { return nil }
        let cost = configuration.prices.cost(model: model, usage: usage)
        let balance = try await repository.debit(
            userID: userID, messageID: messageID, model: model, usage: usage, costMicros: cost, on: connection)
        let charge = Charge(messageID: messageID, model: model, usage: usage, costMicros: cost, balanceMicros: balance)
        logger.info("charge", metadata: [
            "user": "\(userID)", "message": "\(messageID)", "model": "\(model)",
            "prompt_tokens": "\(usage.promptTokens)", "completion_tokens": "\(usage.completionTokens)",
            "cached_tokens": "\(usage.cachedTokens)", "reasoning_tokens": "\(usage.reasoningTokens)",
            "cost_micros": "\(cost)", "balance_micros": "\(balance)",
        ])
        return charge
    }

    /// `x-cost-usd` and `x-balance-remaining` for a JSON response.
    public static func headers(for charge: Charge) -> HTTPFields {
        [.xCostUSD: charge.costUSD, .xBalanceRemaining: charge.balanceUSD]
    }

    /// The user's balance in micro-USD (0 with metering off and no database).
    public func balance(userID: Int64) async throws -> Int64 {
        guard let repository else { return 0 }
        return try await repository.balance(userID: userID)
    }

    /// The requirements offered for a top-up: one per configured amount.
    public var topUpRequirements: [PaymentRequirements] {
        configuration.topUpAmountsMicros.map { amount in
            PaymentRequirements(
                scheme: "exact", network: configuration.network, maxAmountRequired: String(amount), resource: configuration.topUpURL,
                description: "Top up the chat balance by \(Money.usd(amount)) USD", mimeType: "application/json",
                payTo: configuration.payTo ?? "", maxTimeoutSeconds: configuration.maxTimeoutSeconds, asset: configuration.asset,
                extra: ["name": .string(configuration.assetName), "version": .string(configuration.assetVersion)])
        }
    }

    /// A 402 with `error` and the top-up offers.
    public func paymentRequired(_ error: String) -> PaymentRequired {
        PaymentRequired(PaymentRequiredBody(error: error, accepts: topUpRequirements))
    }
}
