import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import SyncEngine

/// `GET /v1/sync/live`: a WebSocket on which the server tells a device whenever the user's
/// change sequence moves (`LiveMessage`): with the changes themselves when the device asked
/// for them (`?changes=1`), with a poke otherwise. The upgrade is authenticated like every
/// request; without a valid token, or without an upgrade, the request reaches the router
/// (401 / 426).
enum LiveEndpoint {
    static let path = "/v1/sync/live"

    static func serverBuilder(users: UserRepository, hub: LiveHub) -> HTTPServerBuilder {
        .http1WebSocketUpgrade { request, _, logger in
            let target = request.path?.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false) ?? []
            guard target.first.map(String.init) == path, let (token, viaSubprotocol) = Self.token(request.headerFields),
                  let user = try await users.authenticate(token: token)
            else { return .dontUpgrade }
            let wantsChanges = target.count == 2 && target[1].split(separator: "&").contains("changes=1")
            let current = try await users.serverCursor(userID: user.id)
            // A browser that sent its token as a subprotocol must get one of its subprotocols back.
            var headers = HTTPFields()
            if viaSubprotocol { headers[.secWebSocketProtocol] = subprotocol }
            return .upgrade(headers) { inbound, outbound, _ in
                let (id, messages) = await hub.subscribe(userID: user.id, current: current, wantsChanges: wantsChanges)
                logger.debug("live channel opened", metadata: ["user": "\(user.id)"])
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // Reading keeps pings answered and tells us when the device goes away.
                        do { for try await _ in inbound {} } catch {}
                    }
                    group.addTask {
                        for await text in messages {
                            do { try await outbound.write(.text(text)) } catch { return }
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
                await hub.unsubscribe(userID: user.id, id: id)
            }
        }
    }

    /// The subprotocol a browser offers beside `chat-store.bearer.<token>`: browsers cannot set
    /// an `Authorization` header on a WebSocket.
    static let subprotocol = "chat-store"
    static let bearerPrefix = "chat-store.bearer."

    /// The token of an upgrade request: `Authorization: Bearer …`, or the `chat-store.bearer.…`
    /// subprotocol (then `true`).
    static func token(_ headers: HTTPFields) -> (String, Bool)? {
        if let header = headers[.authorization], header.hasPrefix("Bearer ") {
            return (String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces), false)
        }
        let offered = headers[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard offered.contains(subprotocol), let bearer = offered.first(where: { $0.hasPrefix(bearerPrefix) }) else { return nil }
        return (String(bearer.dropFirst(bearerPrefix.count)), true)
    }

    /// The plain-HTTP side of the route: reached when the request is not a WebSocket upgrade.
    static func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("sync/live") { _, _ -> Response in
            throw APIError(.upgradeRequired, code: "upgrade_required", "open this endpoint as a WebSocket")
        }
    }
}
