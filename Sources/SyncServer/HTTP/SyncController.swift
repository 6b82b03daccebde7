import ChatModel
import Foundation
import Hummingbird
import Logging
import SyncEngine

/// `/v1/sync/*` and `/v1/me`: the sync protocol over HTTP.
struct SyncController {
    let repository: any SyncRepository
    let users: UserRepository
    let configuration: ServerConfiguration
    let validator: ChangeValidator

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("sync/push", use: push)
        group.get("sync/pull", use: pull)
        group.get("sync/digests", use: digests)
        group.get("me", use: me)
    }

    @Sendable func push(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maxPushBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.tooLarge(configuration.maxPushBytes)
        }
        let push = try decodePush(body)
        guard push.protocolVersion == SyncProtocol.version else {
            throw APIError(.badRequest, code: "unsupported_protocol",
                           "sync protocol \(push.protocolVersion) is not supported; this server speaks \(SyncProtocol.version)")
        }
        guard push.changes.count <= SyncProtocol.maxPushChanges else {
            throw APIError.tooLarge(configuration.maxPushBytes).with(
                message: "a push carries at most \(SyncProtocol.maxPushChanges) changes; this one has \(push.changes.count)")
        }
        guard push.replicaID != ServerReplica.replicaID else {
            throw APIError.invalid("the replica id \"\(ServerReplica.replicaID)\" is the server's own; give this device its own id")
        }
        var seen = Set<RowKey>()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (position, change) in push.changes.enumerated() {
            do throws(ValidationError) {
                try validator.validate(change, nowMillis: now)
            } catch {
                throw APIError.invalid("change \(position): \(error.message)")
            }
            guard seen.insert(change.key).inserted else {
                throw APIError.invalid("change \(position): the batch names \(change.table)/\(change.id) twice; send each row once")
            }
        }
        let response: PushResponse
        do {
            response = try await repository.push(userID: user.id, request: push)
        } catch let rejection as PushRejection {
            switch rejection {
            case .forbidden(let message): throw APIError.forbidden(message)
            case .unprocessable(let message): throw APIError.invalid(message)
            }
        }
        ServerMetrics.pushed(
            changes: push.changes.count, applied: response.results.filter { $0.outcome != .unchanged }.count, conflicts: response.conflicts)
        context.logger.info("push", metadata: [
            "replica": "\(push.replicaID)", "changes": "\(push.changes.count)",
            "applied": "\(response.results.filter { $0.outcome != .unchanged }.count)", "conflicts": "\(response.conflicts)",
        ])
        return try json(response)
    }

    @Sendable func pull(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let query = request.uri.queryParameters
        let version = try integer(query, "protocolVersion", default: Int64(SyncProtocol.version))
        guard version == Int64(SyncProtocol.version) else {
            throw APIError(.badRequest, code: "unsupported_protocol",
                           "sync protocol \(version) is not supported; this server speaks \(SyncProtocol.version)")
        }
        let cursor = try integer(query, "cursor", default: 0)
        let limit = try integer(query, "limit", default: 500)
        guard cursor >= 0 else { throw APIError.badRequest("cursor must be 0 or more") }
        guard (1...Int64(SyncProtocol.maxPullLimit)).contains(limit) else {
            throw APIError.badRequest("limit must be between 1 and \(SyncProtocol.maxPullLimit)")
        }
        do {
            let page = try await repository.pull(userID: user.id, cursor: cursor, limit: Int(limit))
            ServerMetrics.pulled(rows: page.changes.count)
            return try json(page)
        } catch PullRejection.cursorExpired {
            throw APIError(.gone, code: "cursor_expired",
                           "deletes newer than this cursor were pruned (retention window); pull again from cursor 0")
        }
    }

    /// Per-session digests of the user's rows, for `chat-cli doctor` to compare with its own.
    @Sendable func digests(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let snapshot = try await repository.snapshot(userID: user.id)
        return try json(DigestsResponse(cursor: snapshot.cursor, sessions: try SessionDigests.compute(snapshot.states)))
    }

    @Sendable func me(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.requireUser()
        return try json(WhoAmI(userID: user.id, name: user.name, serverCursor: try await users.serverCursor(userID: user.id)))
    }

    private func decodePush(_ body: ByteBuffer) throws -> PushRequest {
        do {
            return try WireJSON.decode(PushRequest.self, utf8: body.readableBytesView)
        } catch let error as DecodingError {
            throw APIError.badRequest("the body is not a valid push request: \(error.summary)")
        } catch {
            throw APIError.badRequest("the body is not valid JSON")
        }
    }

    private func integer(_ query: Parameters, _ name: String, default value: Int64) throws -> Int64 {
        guard let text = query.get(name) else { return value }
        guard let number = Int64(text) else { throw APIError.badRequest("\(name) must be an integer") }
        return number
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try WireJSON.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

extension APIError {
    func with(message: String) -> APIError { APIError(status, code: code, message) }
}

extension DecodingError {
    /// Where and why decoding failed, without the offending value.
    var summary: String {
        func path(_ context: Context) -> String {
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "at the top level" : "at \(path)"
        }
        switch self {
        case .typeMismatch(_, let context): return "wrong type \(path(context))"
        case .valueNotFound(_, let context): return "missing value \(path(context))"
        case .keyNotFound(let key, let context): return "missing key \"\(key.stringValue)\" \(path(context))"
        case .dataCorrupted(let context): return "\(context.debugDescription) \(path(context))"
        @unknown default: return "malformed"
        }
    }
}
