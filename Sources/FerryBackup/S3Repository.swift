import AsyncHTTPClient
import Crypto
package import FerryCore
import Foundation
import NIOCore

/// A repository in an S3 bucket, on AWS or an S3-compatible store (`AWS_ENDPOINT_URL_S3`): the path `a/b` is the
/// object `<prefix>/a/b`, and directories are key prefixes.
///
/// - A PUT stores an object whole or not at all. `write(replacing: false)` is S3's conditional write
///   (`If-None-Match: *`): of two writers, one stores and the other gets 412 and learns it.
/// - `list` is ListObjectsV2 with the delimiter `/`, page after page; `remove` deletes the object, then every object
///   under `path/` a thousand at a time (DeleteObjects).
/// - `lock(for:)` creates `backup.lock` conditionally (S3RepositoryLock.swift).
/// - 500, 502, 503, 504, 429 and connection failures are tried again with backoff and jitter (3 tries); 403, a
///   missing bucket and a wrong region are errors that name the bucket and the fix.
///
/// The protocol is synchronous and so is this: each call runs its request on the HTTP client's event loop and waits
/// on the calling thread, which must not be an event loop (callers are worker threads and CLI commands).
package final class S3Repository: BackupRepository {
    package let configuration: S3Configuration
    /// This repository's own client and connection pool, shut down when the repository goes.
    let http: HTTPClient

    package var location: String { configuration.location }

    /// The repository at `s3://bucket/prefix`, with credentials, region and endpoint from `environment`.
    package convenience init(location: String, environment: [String: String]) throws(FerryError) {
        self.init(configuration: try S3Configuration(location: location, environment: environment))
    }

    package init(configuration: S3Configuration) {
        self.configuration = configuration
        var settings = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(60)))
        settings.timeout.write = .seconds(60)
        // A refused connection fails the try at once; `send` tries again, with its own backoff.
        settings.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: settings)
    }

    deinit {
        // The non-blocking shutdown: the last reference may go on any thread.
        http.shutdown { _ in }
    }

    package func read(_ path: String) throws(FerryError) -> [UInt8]? {
        let what = "read \(path)"
        let response = try send("GET", key: try key(path), what: what)
        switch response.status {
        case 200: return response.body
        case 404 where response.errorCode != "NoSuchBucket": return nil
        default: throw failure(response, what)
        }
    }

    /// A PUT; without `replacing`, a conditional one. A try that stored the object but lost its answer is tried
    /// again and then finds the object there (false): callers that need to know compare the content (as WALArchive does).
    @discardableResult
    package func write(_ path: String, _ bytes: [UInt8], replacing: Bool = true) throws(FerryError) -> Bool {
        let what = "write \(path)"
        var headers = [(name: "Content-Type", value: "application/octet-stream")]
        if !replacing { headers.append((name: "If-None-Match", value: "*")) }
        let response = try send("PUT", key: try key(path), headers: headers, body: bytes, what: what)
        switch response.status {
        case 200: return true
        case 412 where !replacing: return false
        default: throw failure(response, what)
        }
    }

    package func list(_ directory: String) throws(FerryError) -> [String] {
        let prefix = try key(directory) + "/"
        var names = Set<String>()
        var token: String?
        repeat {
            let page = try listPage(prefix: prefix, delimiter: true, token: token, what: "list \(directory)")
            for key in page.all("Key", in: "Contents") where key.hasPrefix(prefix) {
                names.insert(String(key.dropFirst(prefix.count)))
            }
            for common in page.all("Prefix", in: "CommonPrefixes") where common.hasPrefix(prefix) {
                let name = common.dropFirst(prefix.count)
                names.insert(String(name.hasSuffix("/") ? name.dropLast() : name))
            }
            token = try nextToken(page, what: "list \(directory)")
        } while token != nil
        // A zero-length `directory/` object (a console's folder marker) is not an entry.
        names.remove("")
        return names.sorted()
    }

    package func remove(_ path: String) throws(FerryError) {
        let what = "remove \(path)"
        let key = try key(path)
        let response = try send("DELETE", key: key, what: what)
        guard (200..<300).contains(response.status) || response.status == 404 && response.errorCode != "NoSuchBucket" else {
            throw failure(response, what)
        }
        // Each round lists the first thousand keys left under the directory and deletes them, until none is left.
        var previous: [String] = []
        while true {
            let page = try listPage(prefix: key + "/", delimiter: false, token: nil, what: what)
            let keys = page.all("Key", in: "Contents").filter { $0.hasPrefix(key + "/") }
            if keys.isEmpty { return }
            guard keys != previous else {
                throw FerryError(
                    .server, "cannot \(what) in \(location): \(keys.count) objects under it are still listed after they were deleted",
                    fix: "check the bucket's object lock and retention settings, which keep objects from being deleted")
            }
            try deleteObjects(keys, what: what)
            previous = keys
        }
    }

    // MARK: Requests

    /// The object key of a repository path; refused when it is absolute, empty or climbs out (`..`), as a local
    /// repository's paths are.
    func key(_ path: String) throws(FerryError) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw FerryError(.invalidInput, "\"\(PrintableText.escaped(path))\" is not a path inside the repository")
        }
        return configuration.key(path)
    }

    /// One page (up to 1,000 keys) of ListObjectsV2 under `prefix`; with `delimiter`, rolled up at the next `/`.
    private func listPage(prefix: String, delimiter: Bool, token: String?, what: String) throws(FerryError) -> S3XML {
        var query = [(name: "list-type", value: "2"), (name: "prefix", value: prefix)]
        if delimiter { query.append((name: "delimiter", value: "/")) }
        if let token { query.append((name: "continuation-token", value: token)) }
        let response = try send("GET", key: nil, query: query, what: what)
        guard response.status == 200 else { throw failure(response, what) }
        guard let page = S3XML(response.body), page.elements.contains(where: { $0.name == "IsTruncated" }) else {
            throw unexpected("ListObjectsV2", what)
        }
        return page
    }

    private func nextToken(_ page: S3XML, what: String) throws(FerryError) -> String? {
        guard page.first("IsTruncated") == "true" else { return nil }
        guard let token = page.first("NextContinuationToken"), !token.isEmpty else { throw unexpected("ListObjectsV2 (truncated, no token)", what) }
        return token
    }

    /// DeleteObjects for up to 1,000 keys (quiet: only failures are answered); one DELETE each on a store without it.
    private func deleteObjects(_ keys: [String], what: String) throws(FerryError) {
        var body = #"<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>"#
        for key in keys { body += "<Object><Key>\(S3XML.escape(key))</Key></Object>" }
        body += "</Delete>"
        let bytes = Array(body.utf8)
        let headers = [
            (name: "Content-Type", value: "application/xml"),
            // DeleteObjects requires an integrity header.
            (name: "Content-MD5", value: Data(Insecure.MD5.hash(data: bytes)).base64EncodedString()),
        ]
        let response = try send("POST", key: nil, query: [(name: "delete", value: "")], headers: headers, body: bytes, what: what)
        if response.status == 501 || response.errorCode == "NotImplemented" {
            for key in keys {
                let single = try send("DELETE", key: key, what: what)
                guard (200..<300).contains(single.status) || single.status == 404 else { throw failure(single, what) }
            }
            return
        }
        guard response.status == 200 else { throw failure(response, what) }
        guard let reply = S3XML(response.body) else { throw unexpected("DeleteObjects", what) }
        if let key = reply.all("Key", in: "Error").first {
            let code = reply.all("Code", in: "Error").first ?? "?"
            let message = reply.all("Message", in: "Error").first ?? ""
            throw FerryError(
                .server,
                "cannot \(what) in \(location): \(PrintableText.escaped(key)) was not deleted (\(PrintableText.escaped(code)): \(scrubbed(message)))",
                fix: code == "AccessDenied" ? "grant the key's user s3:DeleteObject on the bucket \(configuration.bucket)" : "run the command again")
        }
    }

    private func unexpected(_ reply: String, _ what: String) -> FerryError {
        FerryError(
            .protocolViolation, "cannot \(what) in \(location): \(configuration.server) answered \(reply) with something Ferry does not understand",
            fix: "check that the endpoint is an S3-compatible store (AWS_ENDPOINT_URL_S3)")
    }
}
