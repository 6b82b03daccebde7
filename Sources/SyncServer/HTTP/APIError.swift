import Foundation
import Hummingbird
import PostgresNIO
import Logging
import SyncEngine

/// An error answered to a client: a status, a stable machine-readable code and a sentence.
/// The body is `ErrorBody` JSON. Messages never echo request bodies or tokens.
public struct APIError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// For a 405: the methods the path takes.
    var allow: String?

    public init(_ status: HTTPResponse.Status, code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    func with(allow methods: String) -> APIError {
        var copy = self
        copy.allow = methods
        return copy
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try WireJSON.encode(ErrorBody(code: code, message: message))
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if let allow { headers[.allow] = allow }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, code: "bad_request", message) }
    static func invalid(_ message: String) -> APIError { APIError(.unprocessableContent, code: "invalid", message) }
    static let unauthorized = APIError(.unauthorized, code: "unauthorized", "send a valid token as 'Authorization: Bearer <token>'")
    static func forbidden(_ message: String) -> APIError { APIError(.forbidden, code: "forbidden", message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, code: "not_found", message) }
    static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "too_large", "the request body is larger than \(limit) bytes; push fewer changes per request")
    }
    static let unavailable = APIError(.serviceUnavailable, code: "unavailable", "the database is unavailable; retry later")
}

/// Turns every error into a JSON response with the right status: `APIError` as it is, known
/// framework errors by their status, anything unexpected as a 500 that says nothing internal.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await translatingErrors(request, context: context, next: next)
        } catch let error as APIError {
            ServerMetrics.error(status: Int(error.status.code), code: error.code)
            throw error
        } catch let error as PaymentRequired {
            ServerMetrics.error(status: 402, code: "payment_required")
            throw error
        }
    }

    private func translatingErrors(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as PaymentRequired {
            // A 402 keeps its x402 body (`x402Version`, `error`, `accepts`), which clients parse.
            throw error
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : error.status == .methodNotAllowed ? "method_not_allowed" : "bad_request"
            throw APIError(error.status, code: code, error.body ?? error.status.reasonPhrase)
        } catch let error as any HTTPResponseError {
            throw APIError(error.status, code: "http_\(error.status.code)", error.status.reasonPhrase)
        } catch is CancellationError {
            throw APIError.unavailable
        } catch let error as PSQLError where [.connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed,
                                               .uncleanShutdown].contains(error.code) {
            // The database is away, not the request at fault: the client should retry later.
            context.logger.warning("database unavailable", metadata: ["code": "\(error.code)"])
            throw APIError.unavailable
        } catch let error as PSQLError where ["40P01", "40001"].contains(error.serverInfo?[.sqlState] ?? "") {
            // PostgreSQL aborted the transaction to break a deadlock (an operator's SQL write and a
            // push on the same rows) or a serialization failure: nothing was applied; retrying works.
            context.logger.warning("transaction aborted by the database", metadata: ["sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"])
            throw APIError(.serviceUnavailable, code: "unavailable", "the database aborted the transaction to resolve a conflict with a concurrent write; nothing was applied, retry")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            throw APIError(.internalServerError, code: "internal", "the server failed; the request was not applied")
        }
    }
}
