import Foundation
import Hummingbird
import SyncEngine

/// A JSON object request body, read strictly: it must be an object, name only known fields,
/// and give each the right type (400 otherwise); values that are well-formed but unacceptable
/// (an empty message, a title too long) are 422. Messages name the field, never echo the value.
struct JSONBody {
    let fields: [String: JSONValue]

    /// Reads the body (413 beyond `limit` bytes) and checks it names only `allowed` fields.
    static func read(_ request: Request, limit: Int, allowed: Set<String>) async throws -> JSONBody {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, code: "too_large", "the request body is larger than \(limit) bytes")
        }
        guard buffer.readableBytes > 0 else { return JSONBody(fields: [:]) }
        let value: JSONValue
        do {
            value = try WireJSON.decode(JSONValue.self, utf8: buffer.readableBytesView)
        } catch {
            throw APIError.badRequest("the body is not valid JSON")
        }
        guard let object = value.objectValue else { throw APIError.badRequest("the body must be a JSON object") }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest(
                "unknown field \"\(unknown.prefix(64))\"; allowed: \(allowed.sorted().joined(separator: ", "))")
        }
        return JSONBody(fields: object)
    }

    /// A string field: absent → `nil` (or 422 when required); wrong type → 400; outside
    /// `length` characters → 422.
    func string(_ name: String, required: Bool = false, length: ClosedRange<Int>) throws -> String? {
        guard let value = fields[name], value != .null else {
            if required { throw APIError.invalid("\"\(name)\" is required") }
            return nil
        }
        guard let text = value.stringValue else { throw APIError.badRequest("\"\(name)\" must be a string") }
        guard length.contains(text.count) else {
            throw APIError.invalid("\"\(name)\" must be \(length.lowerBound) to \(length.upperBound) characters long")
        }
        guard !text.unicodeScalars.contains(where: { $0 == "\u{0}" }) else {
            throw APIError.invalid("\"\(name)\" must not contain NUL characters")
        }
        return text
    }

    /// A field that may be set to a string or explicitly to `null` (to clear it). Absent → `nil`.
    func nullableString(_ name: String, length: ClosedRange<Int>) throws -> JSONValue? {
        guard let value = fields[name] else { return nil }
        if value == .null { return .null }
        return try string(name, length: length).map(JSONValue.string)
    }

    func bool(_ name: String) throws -> Bool? {
        guard let value = fields[name], value != .null else { return nil }
        guard let flag = value.boolValue else { throw APIError.badRequest("\"\(name)\" must be true or false") }
        return flag
    }

    /// A row id chosen by the client: 1–128 characters of `A-Z a-z 0-9 _ - . :` (422 otherwise).
    func id(_ name: String) throws -> String? {
        guard let id = try string(name, length: 1...128) else { return nil }
        guard RowID.isValid(id) else { throw APIError.invalid("\"\(name)\" must be 1-128 characters of A-Z a-z 0-9 _ - . :") }
        return id
    }
}

/// Query parameters and path segments, checked (400 on anything malformed).
struct RequestInput {
    let request: Request
    let context: AppRequestContext

    /// A row id from the path.
    func pathID(_ name: String = "id", noun: String) throws -> String {
        guard let id = context.parameters.get(name), RowID.isValid(id) else {
            throw APIError.badRequest("the \(noun) id must be 1-128 characters of A-Z a-z 0-9 _ - . :")
        }
        return id
    }

    func limit(default value: Int, max: Int) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return value }
        guard let limit = Int(text), (1...max).contains(limit) else {
            throw APIError.badRequest("limit must be an integer from 1 to \(max)")
        }
        return limit
    }

    func cursor() throws -> ChatQueries.Cursor? {
        guard let text = request.uri.queryParameters.get("cursor") else { return nil }
        guard let cursor = ChatQueries.Cursor(token: text) else {
            throw APIError.badRequest("cursor is not one this server gave out; start again without it")
        }
        return cursor
    }

    /// An enumerated query parameter.
    func choice(_ name: String, from allowed: [String]) throws -> String? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard allowed.contains(text) else {
            throw APIError.badRequest("\(name) must be one of: \(allowed.joined(separator: ", "))")
        }
        return text
    }

    /// Refuses query parameters the endpoint does not know, so a typo is not silently ignored.
    func onlyQuery(_ allowed: Set<String>) throws {
        for (name, _) in request.uri.queryParameters where !allowed.contains(String(name)) {
            throw APIError.badRequest("unknown query parameter \"\(name.prefix(64))\"")
        }
    }
}
