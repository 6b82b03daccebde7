import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SyncEngine

/// `GET /v1/billing` (balance and recent ledger) and `POST /v1/billing/top-up` (x402 payment).
struct BillingController {
    static let topUpPath = "/v1/billing/top-up"

    let metering: Metering
    let facilitator: FacilitatorClient?

    init(metering: Metering) {
        self.metering = metering
        self.facilitator = metering.configuration.facilitatorURL.map {
            FacilitatorClient(url: $0, timeout: metering.configuration.facilitatorTimeout)
        }
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("billing", use: summary)
        group.post("billing/top-up", use: topUp)
    }

    /// The answer of `GET /v1/billing`.
    struct Summary: Codable {
        var metering: Bool
        var balanceMicros: Int64
        var balanceUsd: String
        var minimumMicros: Int64
        var ledger: [LedgerEntry]
    }

    /// The answer of a successful top-up.
    struct TopUpResult: Codable {
        var creditedMicros: Int64
        var balanceMicros: Int64
        var balanceUsd: String
        var transaction: String
    }

    @Sendable func summary(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let limitText = request.uri.queryParameters.get("limit")
        guard let limit = limitText.map({ Int($0) }) ?? 20, (1...200).contains(limit) else {
            throw APIError.badRequest("limit must be an integer between 1 and 200")
        }
        guard let repository = metering.repository else {
            return try json(Summary(metering: false, balanceMicros: 0, balanceUsd: Money.usd(0), minimumMicros: 0, ledger: []))
        }
        let balance = try await repository.balance(userID: user.id)
        return try json(Summary(
            metering: metering.isEnabled, balanceMicros: balance, balanceUsd: Money.usd(balance),
            minimumMicros: metering.isEnabled ? metering.configuration.minimumBalanceMicros : 0,
            ledger: try await repository.ledger(userID: user.id, limit: limit)))
    }

    @Sendable func topUp(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        guard metering.isEnabled, let repository = metering.repository, let facilitator else {
            throw APIError(.notFound, code: "metering_disabled", "this server does not meter usage; there is nothing to top up")
        }
        guard let header = request.headers[.xPayment] else {
            throw metering.paymentRequired("send an X-PAYMENT header with a payment for one of the offered amounts")
        }
        let payment: PaymentPayload
        let requirements: PaymentRequirements
        do throws(MalformedPayment) {
            payment = try PaymentPayload.decodeHeader(header)
            requirements = try match(payment)
        } catch {
            throw APIError(.badRequest, code: "invalid_payment", error.message)
        }
        let amount = Int64(requirements.maxAmountRequired) ?? 0
        let key = Self.paymentKey(payment)
        var log = context.logger
        log[metadataKey: "payment_key"] = "\(key)"
        log[metadataKey: "amount_micros"] = "\(amount)"

        switch try await repository.claimPayment(
            userID: user.id, key: key, amountMicros: amount, network: payment.network, payer: payment.from,
            payload: try WireJSON.encodeString(payment.payload), staleAfter: metering.configuration.stalePaymentAfter)
        {
        case .settled:
            throw APIError(.conflict, code: "payment_already_credited",
                           "this payment has already been credited; nothing was credited again")
        case .pending:
            throw APIError(.conflict, code: "payment_in_progress",
                           "this payment is being processed by another request; check GET /v1/billing before retrying")
        case .failed(let reason):
            throw metering.paymentRequired(
                "this payment was rejected earlier (\(reason ?? "rejected")); sign a new payment")
        case .claimed(let id):
            let settled: (VerifyResponse, SettleResponse)
            do {
                settled = try await verifyAndSettle(payment, requirements: requirements, paymentID: id, repository: repository,
                                                    facilitator: facilitator, logger: log)
            } catch let error as PaymentRequired {
                throw error
            } catch {
                // The facilitator, the database or the request failed before anything settled (or
                // the settlement's outcome is unknown): forget the attempt so that a retry of the
                // same payment can go through. Had the settlement reached the chain after all, the
                // chain refuses the retry's (an authorization is used once) and the payment ends
                // failed; the warning logged with payer and nonce lets an operator reconcile it.
                try? await repository.releasePayment(id: id)
                throw error
            }
            return try await credit(payment, requirements: requirements, paymentID: id, verification: settled.0,
                                    settlement: settled.1, repository: repository, logger: log)
        }
    }

    /// Asks the facilitator to verify, then to settle, a claimed payment. A rejection marks the
    /// payment failed and throws `PaymentRequired`; an unavailable facilitator throws `APIError` 502.
    func verifyAndSettle(
        _ payment: PaymentPayload, requirements: PaymentRequirements, paymentID: Int64, repository: BillingRepository,
        facilitator: FacilitatorClient, logger: Logger
    ) async throws -> (VerifyResponse, SettleResponse) {
        let verification: VerifyResponse
        do {
            verification = try await facilitator.verify(payment, requirements: requirements)
        } catch {
            logger.warning("facilitator unavailable", metadata: ["step": "verify", "reason": "\(error.reason)"])
            throw Self.facilitatorUnavailable
        }
        guard verification.isValid else {
            let reason = verification.invalidReason ?? "invalid_payment"
            try await repository.failPayment(id: paymentID, reason: reason, response: try? WireJSON.encodeString(verification))
            logger.info("payment rejected", metadata: ["step": "verify", "reason": "\(reason)"])
            throw metering.paymentRequired(reason)
        }
        let settlement: SettleResponse
        do {
            settlement = try await facilitator.settle(payment, requirements: requirements)
        } catch {
            logger.warning("facilitator unavailable", metadata: [
                "step": "settle", "reason": "\(error.reason)", "payer": "\(payment.from ?? "")", "nonce": "\(payment.nonce ?? "")",
            ])
            throw Self.facilitatorUnavailable
        }
        guard settlement.success, let transaction = settlement.transaction, !transaction.isEmpty else {
            let reason = settlement.errorReason ?? "settlement_failed"
            try await repository.failPayment(id: paymentID, reason: reason, response: try? WireJSON.encodeString(settlement))
            logger.info("payment rejected", metadata: ["step": "settle", "reason": "\(reason)"])
            throw metering.paymentRequired(reason)
        }
        return (verification, settlement)
    }

    /// Credits a settled payment once (its own transaction), and answers with `X-PAYMENT-RESPONSE`.
    func credit(
        _ payment: PaymentPayload, requirements: PaymentRequirements, paymentID: Int64, verification: VerifyResponse,
        settlement: SettleResponse, repository: BillingRepository, logger: Logger
    ) async throws -> Response {
        let transaction = settlement.transaction ?? ""
        let response = try? WireJSON.encodeString(settlement)
        let payer = settlement.payer ?? verification.payer ?? payment.from
        let credited = Int64(requirements.maxAmountRequired) ?? 0
        let outcome: BillingRepository.SettleOutcome
        do {
            outcome = try await repository.settlePayment(id: paymentID, transaction: transaction, payer: payer, response: response ?? "{}")
        } catch {
            // Paid on chain but not credited: the payment stays pending (a retry answers 409
            // payment_in_progress) for an operator to credit; docs/METERING.md has the query.
            logger.error("settled payment not credited", metadata: [
                "payment_id": "\(paymentID)", "transaction": "\(transaction)", "payer": "\(payer ?? "")",
                "error": "\(String(reflecting: type(of: error)))",
            ])
            throw error
        }
        switch outcome {
        case .notPending:
            logger.error("settled payment not credited: another attempt finished it first", metadata: [
                "payment_id": "\(paymentID)", "transaction": "\(transaction)", "payer": "\(payer ?? "")",
            ])
            throw APIError(.conflict, code: "payment_in_progress",
                           "another attempt at this payment finished first; check GET /v1/billing before retrying")
        case .duplicateTransaction:
            logger.warning("settled transaction already credited", metadata: ["transaction": "\(transaction)"])
            throw APIError(.conflict, code: "payment_already_credited",
                           "the facilitator settled a transaction that was already credited; nothing was credited again")
        case .credited(let balance):
            logger.info("top-up", metadata: [
                "transaction": "\(transaction)", "payer": "\(payer ?? "")", "credited_micros": "\(credited)", "balance_micros": "\(balance)",
            ])
            var answer = try json(TopUpResult(
                creditedMicros: credited, balanceMicros: balance, balanceUsd: Money.usd(balance), transaction: transaction))
            answer.headers[.xPaymentResponse] = try SettlementResponse(
                success: true, transaction: transaction, network: settlement.network ?? payment.network, payer: payer
            ).headerValue()
            return answer
        }
    }

    static let facilitatorUnavailable = APIError(
        .badGateway, code: "facilitator_unavailable", "the payment facilitator is unavailable; nothing was charged or credited, retry later")

    /// The offered requirement `payment` pays for; a sentence for a 400 otherwise.
    func match(_ payment: PaymentPayload) throws(MalformedPayment) -> PaymentRequirements {
        let configuration = metering.configuration
        guard payment.scheme == "exact" else {
            throw MalformedPayment("the payment scheme must be \"exact\", not \"\(payment.scheme)\"")
        }
        guard payment.network == configuration.network else {
            throw MalformedPayment("the payment must be on \(configuration.network), not \(payment.network)")
        }
        guard payment.authorization != nil else {
            throw MalformedPayment("the payment's payload has no authorization object")
        }
        guard let value = payment.value, !value.isEmpty, value.allSatisfy(\.isASCIIDigit), let amount = Int64(value) else {
            throw MalformedPayment("the payment's authorization.value must be an amount in atomic units, as a decimal string")
        }
        guard let requirements = metering.topUpRequirements.first(where: { $0.maxAmountRequired == String(amount) }) else {
            let offered = configuration.topUpAmountsMicros.map(String.init).joined(separator: ", ")
            throw MalformedPayment("the payment's amount \(value) is not one of the offered amounts (\(offered))")
        }
        guard let to = payment.to, to.lowercased() == requirements.payTo.lowercased() else {
            throw MalformedPayment("the payment's authorization.to must be the payee \(requirements.payTo)")
        }
        guard let from = payment.from, !from.isEmpty else {
            throw MalformedPayment("the payment's authorization.from is missing")
        }
        return requirements
    }

    /// The idempotency key of a payment: `network:payer:nonce` of its authorization (an EIP-3009
    /// authorization can be used once per payer and nonce), or the SHA-256 of the payload's
    /// canonical JSON when it has no nonce.
    static func paymentKey(_ payment: PaymentPayload) -> String {
        if let from = payment.from, let nonce = payment.nonce, !from.isEmpty, !nonce.isEmpty {
            return "\(payment.network):\(from.lowercased()):\(nonce.lowercased())"
        }
        let canonical = (try? WireJSON.encode(payment)) ?? Data()
        return "sha256:" + SHA256.hash(data: canonical).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }
}
