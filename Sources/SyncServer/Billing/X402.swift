import Foundation
import HTTPTypes
import Hummingbird
import SyncEngine

// x402 version 1 on the wire: https://github.com/coinbase/x402 (docs/METERING.md has examples).

extension HTTPField.Name {
    /// The client's signed payment: base64 of a `PaymentPayload` JSON.
    public static let xPayment = Self("X-PAYMENT")!
    /// The settlement, on a successful top-up: base64 of a `SettlementResponse` JSON.
    public static let xPaymentResponse = Self("X-PAYMENT-RESPONSE")!
    /// The cost of the reply, USD with six decimals (`0.001250`).
    public static let xCostUSD = Self("x-cost-usd")!
    /// The balance after the reply, USD with six decimals; negative when the reply overdrew it.
    public static let xBalanceRemaining = Self("x-balance-remaining")!
}

/// One way to pay, as offered in a 402 body's `accepts`.
public struct PaymentRequirements: Codable, Sendable, Equatable {
    public var scheme: String
    public var network: String
    /// Atomic units of `asset`, as a decimal string (USDC: micro-USD).
    public var maxAmountRequired: String
    public var resource: String
    public var description: String
    public var mimeType: String
    public var payTo: String
    public var maxTimeoutSeconds: Int
    public var asset: String
    public var extra: JSONValue?

    public init(scheme: String, network: String, maxAmountRequired: String, resource: String, description: String,
                mimeType: String, payTo: String, maxTimeoutSeconds: Int, asset: String, extra: JSONValue?) {
        self.scheme = scheme
        self.network = network
        self.maxAmountRequired = maxAmountRequired
        self.resource = resource
        self.description = description
        self.mimeType = mimeType
        self.payTo = payTo
        self.maxTimeoutSeconds = maxTimeoutSeconds
        self.asset = asset
        self.extra = extra
    }
}

/// The body of a 402: `{"x402Version":1,"error":"…","accepts":[…]}`.
public struct PaymentRequiredBody: Codable, Sendable, Equatable {
    public var x402Version: Int
    public var error: String
    public var accepts: [PaymentRequirements]

    public init(x402Version: Int = 1, error: String, accepts: [PaymentRequirements]) {
        self.x402Version = x402Version
        self.error = error
        self.accepts = accepts
    }
}

/// The 402 answer. `ErrorMiddleware` lets it through unchanged, so its body stays the x402 shape
/// (not the `{"error":{code,message}}` of `APIError`).
public struct PaymentRequired: Error, HTTPResponseError, Sendable, Equatable, CustomStringConvertible {
    public var body: PaymentRequiredBody

    public init(_ body: PaymentRequiredBody) { self.body = body }

    public var status: HTTPResponse.Status { .init(code: 402, reasonPhrase: "Payment Required") }
    public var description: String { "402 payment required: \(body.error)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try json(body, status: status)
    }
}

/// The decoded `X-PAYMENT` header. `payload` is kept as sent; for the `exact` EVM scheme it is
/// `{"signature": "0x…", "authorization": {"from","to","value","validAfter","validBefore","nonce"}}`.
public struct PaymentPayload: Codable, Sendable, Equatable {
    public var x402Version: Int
    public var scheme: String
    public var network: String
    public var payload: JSONValue

    public init(x402Version: Int = 1, scheme: String, network: String, payload: JSONValue) {
        self.x402Version = x402Version
        self.scheme = scheme
        self.network = network
        self.payload = payload
    }

    var authorization: [String: JSONValue]? { payload["authorization"]?.objectValue }
    /// The payer's address (`authorization.from`).
    public var from: String? { authorization?["from"]?.stringValue }
    /// The payee's address (`authorization.to`).
    public var to: String? { authorization?["to"]?.stringValue }
    /// The amount in atomic units (`authorization.value`, a decimal string).
    public var value: String? { authorization?["value"]?.stringValue ?? authorization?["value"]?.intValue.map(String.init) }
    /// The authorization's one-time nonce.
    public var nonce: String? { authorization?["nonce"]?.stringValue }

    /// The header's text: base64 of the JSON.
    public func headerValue() throws -> String { try WireJSON.encode(self).base64EncodedString() }

    /// Decodes an `X-PAYMENT` header; the error is a sentence for a 400.
    public static func decodeHeader(_ text: String) throws(MalformedPayment) -> PaymentPayload {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.utf8.count <= 16_384 else {
            throw MalformedPayment("the X-PAYMENT header must be base64 JSON of at most 16 KiB")
        }
        let padded = text + String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: padded) else { throw MalformedPayment("the X-PAYMENT header is not base64") }
        let payment: PaymentPayload
        do {
            payment = try WireJSON.decode(PaymentPayload.self, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted = error, (try? JSONSerialization.jsonObject(with: data)) == nil {
                throw MalformedPayment("the X-PAYMENT header is not base64 of JSON")
            }
            throw MalformedPayment("the X-PAYMENT header is not an x402 payment: \(error.summary)")
        } catch {
            throw MalformedPayment("the X-PAYMENT header is not base64 of JSON")
        }
        guard payment.x402Version == 1 else {
            throw MalformedPayment("x402Version \(payment.x402Version) is not supported; this server speaks x402 version 1")
        }
        guard payment.payload.objectValue != nil else { throw MalformedPayment("the payment's payload must be a JSON object") }
        return payment
    }
}

/// An `X-PAYMENT` header the server cannot use (answered 400); `message` is one sentence.
public struct MalformedPayment: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The `X-PAYMENT-RESPONSE` header's content.
public struct SettlementResponse: Codable, Sendable, Equatable {
    public var success: Bool
    public var transaction: String
    public var network: String
    public var payer: String?

    public init(success: Bool, transaction: String, network: String, payer: String?) {
        self.success = success
        self.transaction = transaction
        self.network = network
        self.payer = payer
    }

    /// base64 of the JSON.
    public func headerValue() throws -> String { try WireJSON.encode(self).base64EncodedString() }

    public static func decodeHeader(_ text: String) throws -> SettlementResponse {
        guard let data = Data(base64Encoded: text) else { throw MalformedPayment("the X-PAYMENT-RESPONSE header is not base64") }
        return try WireJSON.decode(SettlementResponse.self, from: data)
    }
}

/// What `POST {facilitator}/verify` and `/settle` are sent.
public struct FacilitatorRequest: Codable, Sendable, Equatable {
    public var x402Version: Int
    public var paymentPayload: PaymentPayload
    public var paymentRequirements: PaymentRequirements

    public init(x402Version: Int = 1, paymentPayload: PaymentPayload, paymentRequirements: PaymentRequirements) {
        self.x402Version = x402Version
        self.paymentPayload = paymentPayload
        self.paymentRequirements = paymentRequirements
    }
}

/// `POST /verify`'s answer.
public struct VerifyResponse: Codable, Sendable, Equatable {
    public var isValid: Bool
    public var payer: String?
    public var invalidReason: String?

    public init(isValid: Bool, payer: String?, invalidReason: String? = nil) {
        self.isValid = isValid
        self.payer = payer
        self.invalidReason = invalidReason
    }
}

/// `POST /settle`'s answer.
public struct SettleResponse: Codable, Sendable, Equatable {
    public var success: Bool
    public var payer: String?
    public var transaction: String?
    public var network: String?
    public var errorReason: String?

    public init(success: Bool, payer: String?, transaction: String?, network: String?, errorReason: String? = nil) {
        self.success = success
        self.payer = payer
        self.transaction = transaction
        self.network = network
        self.errorReason = errorReason
    }
}
