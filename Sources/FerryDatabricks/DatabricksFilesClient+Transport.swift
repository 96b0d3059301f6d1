import AsyncHTTPClient
import FerryCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

/// A request's body, which every try sends whole again.
enum RequestBody: Sendable {
    case none
    case bytes(ByteBuffer)
    /// A local file of `size` bytes, read from its start by each try.
    case file(String, size: Int64)

    var httpBody: HTTPClientRequest.Body? {
        switch self {
        case .none: return nil
        case .bytes(let buffer): return .bytes(buffer)
        case .file(let path, let size): return .stream(FileChunks(path: path), length: .known(size))
        }
    }
}

/// An answer from the workspace: its status, headers and body, with Databricks' error code and message when the body
/// is an error document (`{"error_code", "message"}`, or OAuth's `{"error", "error_description"}`).
struct DatabricksResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// How many tries it took.
    var tries: Int
    /// The secrets the request carried, to blank in anything quoted from the answer.
    var secrets: [Secret]

    var isSuccess: Bool { (200..<300).contains(status) }

    private struct ErrorDocument: Decodable {
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var error_code: String?
        var message: String?
        var error: String?
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var error_description: String?
    }

    /// Databricks' error code and message, if the body is an error document.
    var error: (code: String?, message: String?) {
        guard status >= 300, body.readableBytes > 0, body.readableBytes <= 1 << 20,
            let document = try? JSONDecoder().decode(ErrorDocument.self, from: Data(body.readableBytesView))
        else { return (nil, nil) }
        return (document.error_code ?? document.error, document.message ?? document.error_description)
    }
}

extension DatabricksFilesClient {
    /// Sends a Files API request signed in with the configured credentials. With OAuth, a 401 drops the cached token
    /// and the request is sent once more with a new one (a token can be revoked before its expiry).
    func send(
        _ method: HTTPMethod, _ apiPath: String, query: [(String, String)] = [], headers: [(String, String)] = [], body: RequestBody = .none,
        idempotent: Bool = true, bodyLimit: Int = 16 << 20, what: String
    ) async throws(FerryError) -> DatabricksResponse {
        let url = configuration.baseURL + apiPath + Self.queryString(query)
        var renewed = false
        while true {
            let token = try await bearerToken()
            var all = headers
            all.append(("Authorization", "Bearer " + token.value))
            let response = try await perform(
                method, url: url, headers: all, body: body, idempotent: idempotent, bodyLimit: bodyLimit, what: what,
                secrets: configuration.authentication.secrets + [token])
            if response.status == 401, case .oauth = configuration.authentication, !renewed {
                await tokens.invalidate(token)
                renewed = true
                continue
            }
            return response
        }
    }

    /// The bearer token: the personal access token, or the cached (or a new) OAuth access token.
    func bearerToken() async throws(FerryError) -> Secret {
        switch configuration.authentication {
        case .token(let token):
            return token
        case .oauth(let clientID, let clientSecret):
            return try await tokens.token { () async throws(FerryError) -> DatabricksTokenCache.Token in
                try await self.fetchToken(clientID: clientID, clientSecret: clientSecret)
            }
        }
    }

    /// Sends one request, trying again on 429 and 503 (after `Retry-After`, else the backoff) and on connection
    /// failures (for a request that is not `idempotent`, only when the connection was never made).
    func perform(
        _ method: HTTPMethod, url: String, headers: [(String, String)], body: RequestBody, idempotent: Bool, bodyLimit: Int, what: String,
        secrets: [Secret]
    ) async throws(FerryError) -> DatabricksResponse {
        let retry = configuration.retry
        var attempt = 0
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers = HTTPHeaders(headers)
            request.headers.replaceOrAdd(name: "User-Agent", value: "ferry")
            request.body = body.httpBody
            do {
                let answer = try await http.execute(request, timeout: .nanoseconds(Int64(configuration.requestTimeout.seconds * 1e9)))
                let status = Int(answer.status.code)
                logger.trace(
                    "databricks request", metadata: ["ferry.databricks.method": "\(method.rawValue)", "ferry.databricks.status": "\(status)"])
                if status == 429 || status == 503, retry.allowsRetry(after: attempt) {
                    // Read the small error body so the connection can serve the next try.
                    _ = try? await answer.body.collect(upTo: 1 << 20)
                    let delay = RetryAfter.delay(answer.headers.first(name: "Retry-After"), maximum: retry.maximum) ?? retry.delay(attempt: attempt)
                    logger.debug(
                        "Databricks answered \(status); trying again",
                        metadata: ["ferry.databricks.delay": "\(delay)", "ferry.databricks.try": "\(attempt + 1)"])
                    try await pause(delay, what: what)
                    attempt += 1
                    continue
                }
                if method != .HEAD, status == 200, let length = answer.headers.first(name: "Content-Length") {
                    guard let count = Self.byteCount(length) else {
                        throw unexpected("an invalid Content-Length (\(PrintableText.escaped(String(length.prefix(40)))))", what)
                    }
                    guard count <= bodyLimit else {
                        throw FerryError(
                            .tooLarge, "cannot \(what) from \(configuration.authority): it has \(count) bytes, over the limit of \(bodyLimit)",
                            fix: "raise maximumDownloadBytes, or download the file in another way")
                    }
                }
                let collected: ByteBuffer
                do {
                    collected = try await answer.body.collect(upTo: bodyLimit)
                } catch is NIOTooManyBytesError {
                    throw FerryError(
                        .tooLarge, "cannot \(what) from \(configuration.authority): the answer is over the limit of \(bodyLimit) bytes",
                        fix: "raise maximumDownloadBytes, or download the file in another way")
                }
                return DatabricksResponse(status: status, headers: answer.headers, body: collected, tries: attempt + 1, secrets: secrets)
            } catch let error as FerryError {
                throw error
            } catch let error as FileChunks.ReadError {
                throw FerryError(
                    .invalidInput, "cannot \(what): \(error)", fix: "check that the local file is not changed or removed while it uploads")
            } catch {
                if Task.isCancelled { throw FerryError(.cancelled, "\(what) was cancelled", underlying: error) }
                if let timeout = Self.timeout(error) {
                    throw FerryError(
                        .timeout, "cannot \(what) at \(configuration.authority): \(timeout)",
                        fix: "check the network to \(configuration.authority); for large files, raise requestTimeout", underlying: error)
                }
                let notConnected = Self.neverConnected(error)
                if idempotent || notConnected, retry.allowsRetry(after: attempt) {
                    let delay = retry.delay(attempt: attempt)
                    logger.debug(
                        "Databricks request failed; trying again",
                        metadata: ["ferry.databricks.error": "\(NetworkErrorText.describe(error))", "ferry.databricks.try": "\(attempt + 1)"])
                    try await pause(delay, what: what)
                    attempt += 1
                    continue
                }
                throw FerryError(
                    .unreachable,
                    "cannot \(what): \(configuration.authority) did not answer (\(NetworkErrorText.describe(error)), \(attempt + 1) \(attempt == 0 ? "try" : "tries"))",
                    fix: "check DATABRICKS_HOST (\(configuration.baseURL)) and this machine's network access to it", underlying: error)
            }
        }
    }

    private func pause(_ delay: Duration, what: String) async throws(FerryError) {
        do {
            try await Task.sleep(for: delay)
        } catch {
            throw FerryError(.cancelled, "\(what) was cancelled")
        }
    }

    /// What timed out, or nil when `error` is not a timeout.
    static func timeout(_ error: any Error) -> String? {
        guard let error = error as? HTTPClientError else { return nil }
        switch error {
        case .deadlineExceeded: return "the request did not finish before its deadline"
        case .readTimeout: return "the server stopped sending"
        case .writeTimeout: return "the server stopped reading"
        default: return nil
        }
    }

    /// Whether the request failed before a connection was made (so nothing of it reached the server).
    static func neverConnected(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) { return true }
        // NIOConnectionError (NIOPosix, not imported here) is described by FerryCore.
        let text = NetworkErrorText.describe(error)
        return text.hasPrefix("connection refused") || text.hasPrefix("cannot resolve host") || text == "cannot connect"
            || text == "host unreachable"
    }

    static func queryString(_ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return "" }
        return "?" + query.map { VolumePath.percentEncoded($0.0) + "=" + VolumePath.percentEncoded($0.1) }.joined(separator: "&")
    }
}
