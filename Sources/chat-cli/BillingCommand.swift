import ArgumentParser
import ChatClient
import Foundation
import LocalStore
import SyncEngine

/// `chat-cli billing`: the prepaid balance on the server, through the REST API (`ChatClient`).
struct Billing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show your prepaid balance on the server and its newest entries.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await handled {
            let replica = try store.open()
            guard let server = try serverConfiguration(replica) else {
                throw CLIError("No server is configured; run `chat-cli login --server URL` first.")
            }
            let summary = try await restCall { try await ChatClient(baseURL: server.url, token: server.token).billing() }
            if json { return try printJSON(summary) }
            guard summary.metering else { print("Metering is off on \(server.url): replies are not charged."); return }
            print("Balance:  \(summary.balanceUsd.map { "$\($0)" } ?? "-") (\(summary.balanceMicros ?? 0) micro-USD)")
            if let minimum = summary.minimumMicros { print("Minimum:  \(minimum) micro-USD before a reply is refused with 402") }
            for entry in summary.ledger ?? [] {
                let kind = entry["kind"]?.stringValue ?? "?"
                let amount = entry["amountMicros"]?.intValue ?? 0
                print("  \(kind)  \(amount) micro-USD  \(entry["model"]?.stringValue ?? "")")
            }
        }
    }
}

/// Runs a REST call, turning `ChatClientError` into the one sentence the CLI prints.
func restCall<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ChatClientError {
        switch error {
        case .unauthorized:
            throw CLIError("The server refused the token; run `chat-cli login --server URL` with a valid one.")
        case .unreachable:
            throw CLIError("Cannot reach the server; check it is running, then try again.")
        case .paymentRequired(let body):
            throw CLIError("The balance is too low (\(body.error)); top up through POST /v1/billing/top-up.")
        default:
            throw CLIError("\(error.description.prefix(1).uppercased())\(error.description.dropFirst()).")
        }
    }
}
