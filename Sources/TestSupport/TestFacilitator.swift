import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import SyncEngine
import SyncServer

/// A real x402 facilitator over HTTP on 127.0.0.1, for tests of top-ups. It checks no chain:
///
/// - `POST /verify`: valid when the payload's `signature` is `TestFacilitator.validSignature`,
///   `authorization.value` equals the requirements' `maxAmountRequired`, `authorization.to` their
///   `payTo` and the network matches; otherwise `isValid: false` with an x402 `invalidReason`.
/// - `POST /settle`: the same checks, then `success: true` with a transaction hash derived from
///   the nonce (settling the same nonce again returns the same transaction), except for the payer
///   `TestFacilitator.brokePayer`, whose settlement fails with `insufficient_funds`.
/// - `GET /supported`: the `exact` scheme on `base-sepolia`.
///
/// It counts the calls, can answer 503 on chosen paths, can wait before answering (to widen race
/// windows), and can be stopped and started again on the same port to simulate an outage.
public final class TestFacilitator: Sendable {
    /// The signature the facilitator accepts.
    public static let validSignature = "0x" + String(repeating: "5a", count: 65)
    /// A payee address for tests.
    public static let payTo = "0x00000000000000000000000000000000000000B0"
    /// A payer whose payments verify but fail to settle.
    public static let brokePayer = "0x00000000000000000000000000000000000000DE"

    public let port: Int
    /// The base URL to configure (`http://127.0.0.1:<port>`).
    public var url: String { "http://127.0.0.1:\(port)" }

    /// What the handlers share with the test, across restarts.
    final class Core: Sendable {
        struct State {
            var verifyCalls = 0
            var settleCalls = 0
            var delay: Duration = .zero
            var unavailablePaths: Set<String> = []
            var server: Task<Void, any Error>?
        }

        let state = Mutex(State())
    }

    let core: Core

    init(port: Int, core: Core) {
        self.port = port
        self.core = core
    }

    public var verifyCalls: Int { core.state.withLock { $0.verifyCalls } }
    public var settleCalls: Int { core.state.withLock { $0.settleCalls } }

    /// Waits this long before answering `/verify` and `/settle`.
    public func setDelay(_ delay: Duration) { core.state.withLock { $0.delay = delay } }

    /// Answers HTTP 503 on these paths (`"verify"`, `"settle"`) until changed.
    public func setUnavailable(_ paths: Set<String>) { core.state.withLock { $0.unavailablePaths = paths } }

    /// Runs a facilitator for the duration of `body`, then stops it.
    @discardableResult
    public static func withFacilitator<T: Sendable>(_ body: (TestFacilitator) async throws -> T) async throws -> T {
        let core = Core()
        let (task, port) = try await launch(port: 0, core: core)
        core.state.withLock { $0.server = task }
        let facilitator = TestFacilitator(port: port, core: core)
        do {
            let result = try await body(facilitator)
            await facilitator.stop()
            return result
        } catch {
            await facilitator.stop()
            throw error
        }
    }

    /// Stops serving and waits until the port is closed: connections are refused until `start()`.
    public func stop() async {
        guard let task = core.state.withLock({ state -> Task<Void, any Error>? in
            defer { state.server = nil }
            return state.server
        }) else { return }
        task.cancel()
        _ = await task.result
    }

    /// Serves again on the same port.
    public func start() async throws {
        guard core.state.withLock({ $0.server == nil }) else { return }
        let (task, _) = try await Self.launch(port: port, core: core)
        core.state.withLock { $0.server = task }
    }

    static func launch(port: Int, core: Core) async throws -> (Task<Void, any Error>, Int) {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let router = Router()
        router.post("verify") { request, _ -> Response in try await answer(request, path: "verify", core: core) }
        router.post("settle") { request, _ -> Response in try await answer(request, path: "settle", core: core) }
        router.get("supported") { _, _ -> Response in
            jsonResponse(["kinds": [["x402Version": 1, "scheme": "exact", "network": "base-sepolia"]]] as JSONValue)
        }
        var logger = Logger(label: "test-facilitator")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "test-facilitator"),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger)
        let task = Task {
            defer { portContinuation.finish() }
            try await app.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let bound = await iterator.next(), bound > 0 else {
            task.cancel()
            _ = await task.result
            throw ProcessFailure("the test facilitator did not start on port \(port)")
        }
        return (task, bound)
    }

    static func answer(_ request: Request, path: String, core: Core) async throws -> Response {
        let (delay, unavailable) = core.state.withLock { state -> (Duration, Bool) in
            if path == "verify" { state.verifyCalls += 1 } else { state.settleCalls += 1 }
            return (state.delay, state.unavailablePaths.contains(path))
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        if unavailable {
            return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "facilitator overloaded")))
        }
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        guard let call = try? WireJSON.decode(FacilitatorRequest.self, from: Data(body.readableBytesView)) else {
            return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "not a facilitator request")))
        }
        let payment = call.paymentPayload
        let requirements = call.paymentRequirements
        let payer = payment.from
        let reason: String? =
            if payment.payload["signature"]?.stringValue != Self.validSignature { "invalid_exact_evm_payload_signature" }
            else if payment.network != requirements.network { "invalid_network" }
            else if payment.value != requirements.maxAmountRequired { "invalid_exact_evm_payload_authorization_value" }
            else if payment.to?.lowercased() != requirements.payTo.lowercased() { "invalid_exact_evm_payload_recipient_mismatch" }
            else { nil }
        if path == "verify" {
            return jsonResponse(VerifyResponse(isValid: reason == nil, payer: payer, invalidReason: reason))
        }
        if let reason {
            return jsonResponse(SettleResponse(success: false, payer: payer, transaction: "", network: payment.network, errorReason: reason))
        }
        if payer?.lowercased() == Self.brokePayer.lowercased() {
            return jsonResponse(SettleResponse(
                success: false, payer: payer, transaction: "", network: payment.network, errorReason: "insufficient_funds"))
        }
        return jsonResponse(SettleResponse(
            success: true, payer: payer, transaction: Self.transaction(nonce: payment.nonce ?? ""), network: payment.network))
    }

    /// The transaction hash settling `nonce` gets: `0x` and 64 hex digits derived from it.
    public static func transaction(nonce: String) -> String {
        let hex = nonce.lowercased().hasPrefix("0x") ? String(nonce.dropFirst(2)) : nonce
        let digits = String(hex.lowercased().filter(\.isHexDigit).reversed())
        return "0x" + String((digits + String(repeating: "0", count: 64)).prefix(64))
    }

    /// A fresh random nonce: `0x` and 64 hex digits.
    public static func newNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return "0x" + (0..<4).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// A signed-looking `exact` payment of `valueMicros` USDC atomic units to `payTo`.
    public static func payment(
        valueMicros: Int64, payTo: String = TestFacilitator.payTo, from: String = "0x00000000000000000000000000000000000000A1",
        nonce: String = TestFacilitator.newNonce(), network: String = "base-sepolia", signature: String = TestFacilitator.validSignature
    ) -> PaymentPayload {
        PaymentPayload(scheme: "exact", network: network, payload: [
            "signature": .string(signature),
            "authorization": [
                "from": .string(from), "to": .string(payTo), "value": .string(String(valueMicros)),
                "validAfter": "0", "validBefore": "9999999999", "nonce": .string(nonce),
            ],
        ])
    }

    /// The `X-PAYMENT` header for `payment(...)`.
    public static func paymentHeader(
        valueMicros: Int64, payTo: String = TestFacilitator.payTo, from: String = "0x00000000000000000000000000000000000000A1",
        nonce: String = TestFacilitator.newNonce(), network: String = "base-sepolia", signature: String = TestFacilitator.validSignature
    ) throws -> String {
        try payment(valueMicros: valueMicros, payTo: payTo, from: from, nonce: nonce, network: network, signature: signature).headerValue()
    }
}

private func jsonResponse(_ value: some Encodable) -> Response {
    let data = (try? WireJSON.encode(value)) ?? Data("{}".utf8)
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

