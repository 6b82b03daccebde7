import Foundation
import HTTPTypes
import Hummingbird

/// The web client (`Web/`: plain HTML, ES module and CSS, no build step), served by the server
/// itself: `GET /` is the page, `GET /app/<file>` its script and style. The files are read once
/// from the package's resource bundle.
enum WebClient {
    struct Asset: Sendable {
        let contentType: String
        let bytes: ByteBuffer
    }

    static let assets: [String: Asset] = {
        var assets: [String: Asset] = [:]
        for (name, type) in [("index.html", "text/html; charset=utf-8"), ("app.js", "text/javascript; charset=utf-8"),
                             ("style.css", "text/css; charset=utf-8")] {
            let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Web")
                ?? Bundle.module.url(forResource: name, withExtension: nil)
            if let url, let data = try? Data(contentsOf: url) {
                assets[name] = Asset(contentType: type, bytes: ByteBuffer(bytes: data))
            }
        }
        return assets
    }()

    /// The page may load only its own script and style, talk only to this server, and be framed
    /// by nobody.
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
    ]

    static func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/") { _, _ in try response("index.html") }
        router.get("app/{file}") { _, context in try response(context.parameters.get("file") ?? "") }
    }

    static func response(_ name: String) throws -> Response {
        guard let asset = assets[name] else { throw APIError.notFound("no file \(name)") }
        var headers = HTTPFields()
        headers[.contentType] = asset.contentType
        headers[.cacheControl] = "no-cache"
        for (field, value) in securityHeaders { headers[field] = value }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.bytes))
    }
}
