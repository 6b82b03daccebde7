import Foundation
import Hummingbird
import Logging

/// The per-request context: the authenticated user, once `AuthMiddleware` has run.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var user: User?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.user = nil
    }

    /// The authenticated user; routes behind `AuthMiddleware` always have one.
    func requireUser() throws -> User {
        guard let user else { throw APIError.unauthorized }
        return user
    }
}

/// Resolves `Authorization: Bearer <token>` to a user, or answers 401.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let users: UserRepository

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { throw APIError.unauthorized }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty, let user = try await users.authenticate(token: token) else { throw APIError.unauthorized }
        var context = context
        context.user = user
        context.logger[metadataKey: "user"] = "\(user.id)"
        return try await next(request, context)
    }
}
