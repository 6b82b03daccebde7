import Hummingbird

/// Answers 405 with an `Allow` header when the path exists but not for the request's method
/// (Hummingbird's router reports every miss as 404).
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Route templates (`/v1/sessions/{id}`) split into segments, with their methods.
    let routes: [(segments: [Substring], methods: [HTTPRequest.Method])]

    init(routes: [(path: String, method: HTTPRequest.Method)]) {
        var byPath: [String: [HTTPRequest.Method]] = [:]
        for route in routes { byPath[route.path, default: []].append(route.method) }
        self.routes = byPath.sorted { $0.key < $1.key }.map { path, methods in
            (path.split(separator: "/"), methods.sorted { $0.rawValue < $1.rawValue })
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let segments = request.uri.path.split(separator: "/")
            guard let route = routes.first(where: { Self.matches($0.segments, segments) }) else { throw error }
            let allowed = route.methods.map(\.rawValue).joined(separator: ", ")
            throw APIError(.methodNotAllowed, code: "method_not_allowed", "\(request.method) is not allowed here; use \(allowed)")
                .with(allow: allowed)
        }
    }

    static func matches(_ template: [Substring], _ path: [Substring]) -> Bool {
        template.count == path.count && zip(template, path).allSatisfy { pattern, segment in
            (pattern.hasPrefix("{") && pattern.hasSuffix("}")) || pattern == segment
        }
    }
}
