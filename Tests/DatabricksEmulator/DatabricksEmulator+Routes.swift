import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

extension DatabricksEmulator {
    func respond(to request: Request) async -> Response {
        let raw = request.head.path ?? "/"
        let rawPath = String(raw.prefix { $0 != "?" })
        let rawQuery = raw.contains("?") ? String(raw.drop { $0 != "?" }.dropFirst()) : ""
        guard let path = Self.percentDecoded(rawPath), let query = Self.form(rawQuery) else {
            return Self.error(400, "INVALID_PARAMETER_VALUE", "The URL is not validly percent-encoded.")
        }
        // The whole body is read before any answer, so an early refusal still leaves the connection usable; past the
        // size limit it is drained, not kept.
        let limit = state.withLock { $0.maximumFileSize }
        var body = ByteBuffer()
        var size = 0
        do {
            for try await chunk in request.body {
                size += chunk.readableBytes
                if size <= limit { body.writeImmutableBuffer(chunk) }
            }
        } catch {
            return Self.error(400, "BAD_REQUEST", "The request body could not be read.")
        }
        let authorization = request.headers[.authorization]
        let received = ReceivedRequest(
            method: request.method.rawValue, path: path, rawPath: raw, query: query,
            authorizationScheme: authorization.flatMap { $0.split(separator: " ").first.map(String.init) }, bodySize: size)
        state.withLock { $0.requests.append(received) }
        logger.trace("databricks emulator: \(received)")

        if path.hasPrefix("/api/2.0/fs/files/") || path.hasPrefix("/api/2.0/fs/directories/") || path == "/oidc/v1/token",
            let scripted = state.withLock({ $0.scripted.isEmpty ? nil : $0.scripted.removeFirst() })
        {
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            if let retryAfter = scripted.retryAfter { headers[.retryAfter] = retryAfter }
            return Response(status: .init(code: scripted.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: scripted.body)))
        }
        switch (request.method, path) {
        case (.get, "/.well-known/databricks-config"):
            return Self.json(200, ["oidc_endpoint": "\(host)/oidc", "workspace_id": "1234567890123456"])
        case (.get, "/oidc/.well-known/oauth-authorization-server"):
            return Self.json(
                200,
                [
                    "issuer": "\(host)/oidc", "authorization_endpoint": "\(host)/oidc/v1/authorize", "token_endpoint": "\(host)/oidc/v1/token",
                    "grant_types_supported": ["client_credentials"],
                ])
        case (.post, "/oidc/v1/token"):
            return issueToken(authorization: authorization, body: body)
        default:
            guard path.hasPrefix("/api/") else { return Self.notAnEndpoint(request.method, path) }
            return api(request.method, path: path, query: query, authorization: authorization, body: body, size: size, limit: limit)
        }
    }

    private func api(
        _ method: HTTPRequest.Method, path: String, query: [String: String], authorization: String?, body: ByteBuffer, size: Int, limit: Int
    ) -> Response {
        let now = Date()
        let token = authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst("Bearer ".count)) : nil }
        let access: (known: Bool, readOnly: Bool, expired: Bool) = state.withLock { state in
            guard let token else { return (false, false, false) }
            if let readOnly = state.tokens[token] { return (true, readOnly, false) }
            if let expiry = state.issued[token] { return (true, false, expiry <= now) }
            return (false, false, false)
        }
        guard access.known else {
            return Self.error(
                401, "UNAUTHENTICATED", token == nil ? "Credential was not sent or was of an unsupported type for this API." : "Invalid access token."
            )
        }
        guard !access.expired else { return Self.error(401, "UNAUTHENTICATED", "Token expired.") }

        if method == .get, path == "/api/2.0/fs/endpoints" {
            return Self.json(200, ["endpoints": [["api": "FILES_API", "api_version": "2.0", "scheme": "http", "hostname": "127.0.0.1:\(port)"]]])
        }
        let filesPrefix = "/api/2.0/fs/files"
        let directoriesPrefix = "/api/2.0/fs/directories"
        let isFiles = path.hasPrefix(filesPrefix + "/")
        let isDirectories = path.hasPrefix(directoriesPrefix + "/")
        guard isFiles || isDirectories else { return Self.notAnEndpoint(method, path) }

        if let failure = state.withLock({ $0.failures.isEmpty ? nil : $0.failures.removeFirst() }) {
            var headers = HTTPFields()
            if let seconds = failure.retryAfter { headers[.retryAfter] = String(seconds) }
            return failure.status == 429
                ? Self.error(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again.", headers: headers)
                : Self.error(failure.status, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable.", headers: headers)
        }
        if access.readOnly, method == .put || method == .delete {
            return Self.error(403, "PERMISSION_DENIED", "User does not have WRITE VOLUME on Volume.")
        }

        let target = String(path.dropFirst(isFiles ? filesPrefix.count : directoriesPrefix.count))
        do throws(EmulatedVolumes.Refusal) {
            switch (isFiles, method) {
            case (true, .put):
                guard size <= limit else {
                    return Self.error(413, "REQUEST_ENTITY_TOO_LARGE", "The file is larger than \(limit) bytes.")
                }
                let overwrite = query["overwrite"].map { $0.lowercased() != "false" } ?? true
                try state.withLock { state throws(EmulatedVolumes.Refusal) in
                    try state.volumes.upload(target, bytes: Array(body.readableBytesView), overwrite: overwrite, at: now)
                }
                return Response(status: .noContent)
            case (true, .get), (true, .head):
                let file = try state.withLock { state throws(EmulatedVolumes.Refusal) in try state.volumes.file(target) }
                var headers = HTTPFields()
                headers[.contentType] = "application/octet-stream"
                headers[.contentLength] = String(file.bytes.count)
                headers[.lastModified] = Self.httpDate(file.modified)
                let content = method == .head ? ByteBuffer() : ByteBuffer(bytes: file.bytes)
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: content))
            case (true, .delete):
                try state.withLock { state throws(EmulatedVolumes.Refusal) in try state.volumes.deleteFile(target) }
                return Response(status: .noContent)
            case (false, .put):
                try state.withLock { state throws(EmulatedVolumes.Refusal) in try state.volumes.createDirectory(target) }
                return Response(status: .noContent)
            case (false, .get):
                return try listing(target, query: query)
            case (false, .head):
                guard case .directory? = try state.withLock({ state throws(EmulatedVolumes.Refusal) in try state.volumes.entry(target) }) else {
                    return Self.error(404, "NOT_FOUND", "")
                }
                return Response(status: .ok)
            case (false, .delete):
                try state.withLock { state throws(EmulatedVolumes.Refusal) in try state.volumes.deleteDirectory(target) }
                return Response(status: .noContent)
            default:
                return Self.notAnEndpoint(method, path)
            }
        } catch {
            if method == .head { return Response(status: .init(code: error.status)) }
            return Self.error(error.status, error.code, error.message)
        }
    }

    /// One page of a directory: at most `page_size` entries (default and maximum 1000); `page_token` is the last name
    /// of the page before, base64-encoded.
    private func listing(_ directory: String, query: [String: String]) throws(EmulatedVolumes.Refusal) -> Response {
        var pageSize = 1000
        if let text = query["page_size"] {
            guard let size = Int(text), size > 0 else {
                throw EmulatedVolumes.Refusal(status: 400, code: "INVALID_PARAMETER_VALUE", message: "page_size must be a positive integer.")
            }
            pageSize = min(size, 1000)
        }
        var after: String?
        if let token = query["page_token"] {
            guard let data = Data(base64Encoded: token), let name = String(data: data, encoding: .utf8) else {
                throw EmulatedVolumes.Refusal(status: 400, code: "INVALID_PARAMETER_VALUE", message: "Invalid page_token.")
            }
            after = name
        }
        let all = try state.withLock { state throws(EmulatedVolumes.Refusal) in try state.volumes.list(directory) }
        let remaining = after.map { name in all.filter { $0.name > name } } ?? all
        let page = remaining.prefix(pageSize)
        var contents: [[String: Any]] = []
        for entry in page {
            var item: [String: Any] = ["path": entry.path, "name": entry.name, "is_directory": entry.file == nil]
            if let file = entry.file {
                item["file_size"] = file.bytes.count
                item["last_modified"] = Int64(file.modified.timeIntervalSince1970 * 1000)
            }
            contents.append(item)
        }
        var answer: [String: Any] = [:]
        if !contents.isEmpty { answer["contents"] = contents }
        if remaining.count > page.count, let last = page.last {
            answer["next_page_token"] = Data(last.name.utf8).base64EncodedString()
        }
        return Self.json(200, answer)
    }

    /// `POST /oidc/v1/token`: the client credentials grant, the client authenticated with HTTP Basic or in the form.
    private func issueToken(authorization: String?, body: ByteBuffer) -> Response {
        guard let form = Self.form(String(buffer: body)) else {
            return Self.json(400, ["error": "invalid_request", "error_description": "The request body is not a valid form."])
        }
        guard form["grant_type"] == "client_credentials" else {
            return Self.json(400, ["error": "unsupported_grant_type", "error_description": "Only client_credentials is supported."])
        }
        var id = form["client_id"]
        var secret = form["client_secret"]
        if let authorization, authorization.hasPrefix("Basic "), let data = Data(base64Encoded: String(authorization.dropFirst("Basic ".count))),
            let pair = String(data: data, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        {
            id = String(pair[..<colon])
            secret = String(pair[pair.index(after: colon)...])
        }
        let token = "emu-oauth-" + UUID().uuidString
        let lifetime: Int? = state.withLock { state in
            guard let id, let secret, state.clients[id] == secret else { return nil }
            state.issued[token] = Date().addingTimeInterval(Double(state.tokenLifetime))
            state.issuedCount += 1
            return state.tokenLifetime
        }
        guard let lifetime else {
            return Self.json(401, ["error": "invalid_client", "error_description": "Client authentication failed"])
        }
        return Self.json(200, ["access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": form["scope"] ?? "all-apis"])
    }

    // MARK: Wire helpers

    static func json(_ status: Int, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: Int, _ code: String, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(status, ["error_code": code, "message": message], headers: headers)
    }

    static func notAnEndpoint(_ method: HTTPRequest.Method, _ path: String) -> Response {
        error(404, "ENDPOINT_NOT_FOUND", "No API found for '\(method.rawValue) \(path)'")
    }

    /// `text` with `%XX` escapes decoded (as UTF-8); nil when an escape is malformed or the bytes are not UTF-8.
    static func percentDecoded(_ text: String, plusIsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else if plusIsSpace, byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// `a=1&b=2` (a query string or a form body) as a dictionary; nil when an escape is malformed.
    static func form(_ text: String) -> [String: String]? {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecoded(String(parts[0]), plusIsSpace: true),
                let value = percentDecoded(parts.count > 1 ? String(parts[1]) : "", plusIsSpace: true)
            else { return nil }
            fields[name] = value
        }
        return fields
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
