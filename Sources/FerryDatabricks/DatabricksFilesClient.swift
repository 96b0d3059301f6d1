package import AsyncHTTPClient
package import FerryCore
import Foundation
package import Logging
import NIOCore
import NIOHTTP1

/// A client of the Databricks Files API (`/api/2.0/fs/...`) for Unity Catalog volumes: directories, uploads (from
/// memory or streamed from a file), downloads, metadata, listings and deletes.
///
/// - Paths are checked first (``VolumePath``) and each segment is percent-encoded in the URL.
/// - Sign-in is a personal access token or OAuth machine-to-machine (``DatabricksConfiguration/Authentication``); an
///   OAuth token is cached and renewed before it expires, and fetched again once when the service refuses it early.
/// - 429 and 503 are tried again after `Retry-After` or the backoff (3 tries in all), and so are connection failures
///   for requests that can be repeated: an upload always sends its whole body again (bytes in memory, or the file read
///   from its start); an upload without `overwrite` is tried again only when its connection was never made, as a lost
///   answer to a try that stored the file would turn into ALREADY_EXISTS.
/// - Errors are ``FerryError``s naming the workspace, the path and Databricks' own error code, with a fix; no token or
///   secret is ever in a message or a log line.
///
/// Made with `init(configuration:logger:)`, the client owns its `HTTPClient` and `shutdown()` must be called after its
/// last request; made with `init(configuration:http:logger:)`, it shares the caller's, which the caller shuts down
/// (``makeHTTPClient()`` has the settings this client expects).
package final class DatabricksFilesClient: Sendable {
    package let configuration: DatabricksConfiguration
    let http: HTTPClient
    private let ownsHTTP: Bool
    let logger: Logger
    let tokens = DatabricksTokenCache()

    /// A client with its own connection pool; call `shutdown()` when done.
    package convenience init(configuration: DatabricksConfiguration, logger: Logger) {
        self.init(configuration: configuration, http: Self.makeHTTPClient(), owned: true, logger: logger)
    }

    /// A client on the caller's `http`, which it does not shut down.
    package convenience init(configuration: DatabricksConfiguration, http: HTTPClient, logger: Logger) {
        self.init(configuration: configuration, http: http, owned: false, logger: logger)
    }

    private init(configuration: DatabricksConfiguration, http: HTTPClient, owned: Bool, logger: Logger) {
        self.configuration = configuration
        self.http = http
        self.ownsHTTP = owned
        var logger = logger
        logger[metadataKey: "ferry.databricks.host"] = "\(configuration.authority)"
        self.logger = logger
    }

    /// Shuts down the client's own `HTTPClient` (nothing for a shared one). No request may follow.
    package func shutdown() async {
        guard ownsHTTP else { return }
        do {
            try await http.shutdown()
        } catch {
            logger.debug("shutting down the HTTP client: \(error)")
        }
    }

    /// An HTTP client for this one: no redirects (the Authorization header must not follow one elsewhere), and a
    /// refused connection fails its try at once instead of being retried inside the pool until the deadline, so the
    /// client's own retries and messages apply. The caller shuts it down (`shutdown()`).
    package static func makeHTTPClient() -> HTTPClient {
        var settings = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(120)))
        settings.timeout.write = .seconds(120)
        settings.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: settings)
    }

    /// Creates `path` and any missing parent (as `mkdir -p`); an existing directory is fine.
    package func createDirectory(_ path: String) async throws(FerryError) {
        let path = try VolumePath(path)
        let what = "create the directory \(path)"
        let response = try await send(.PUT, "/api/2.0/fs/directories" + path.encoded, what: what)
        guard response.isSuccess else { throw failure(response, what, path, writing: true) }
    }

    /// Stores `bytes` as the file `path` (its volume must exist; missing directories are created). Without
    /// `overwrite`, an existing file is a `.conflict` error.
    package func upload(_ bytes: [UInt8], to path: String, overwrite: Bool) async throws(FerryError) {
        let path = try VolumePath(path, insideVolume: true)
        try await upload(.bytes(ByteBuffer(bytes: bytes)), to: path, overwrite: overwrite)
    }

    /// Stores the local file `file` as `path`, streamed from disk (re-read from its start if the upload is tried again).
    package func upload(file: String, to path: String, overwrite: Bool) async throws(FerryError) {
        let path = try VolumePath(path, insideVolume: true)
        let size: Int64
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            guard attributes[.type] as? FileAttributeType == .typeRegular, let bytes = (attributes[.size] as? NSNumber)?.int64Value else {
                throw FileChunks.ReadError(path: file, reason: "it is not a regular file")
            }
            size = bytes
        } catch {
            throw FerryError(
                .invalidInput, "cannot upload \"\(PrintableText.escaped(file))\" to \(path): it cannot be read (\(error.localizedDescription))",
                fix: "check that the file exists and is readable", underlying: error)
        }
        guard size <= Self.maximumUploadBytes else {
            throw FerryError(
                .tooLarge, "cannot upload \"\(PrintableText.escaped(file))\" to \(path): it has \(size) bytes, over the Files API's 5 GiB",
                fix: "split the output into smaller files")
        }
        try await upload(.file(file, size: size), to: path, overwrite: overwrite)
    }

    /// The largest file the Files API takes in one PUT.
    package static let maximumUploadBytes: Int64 = 5 << 30

    private func upload(_ body: RequestBody, to path: VolumePath, overwrite: Bool) async throws(FerryError) {
        let what = "upload \(path)"
        let response = try await send(
            .PUT, "/api/2.0/fs/files" + path.encoded, query: [("overwrite", overwrite ? "true" : "false")],
            headers: [("Content-Type", "application/octet-stream")], body: body, idempotent: overwrite, what: what)
        guard response.isSuccess else { throw failure(response, what, path, writing: true) }
    }

    /// The whole file `path`, up to `configuration.maximumDownloadBytes`.
    package func download(_ path: String) async throws(FerryError) -> [UInt8] {
        let path = try VolumePath(path, insideVolume: true)
        let what = "download \(path)"
        let response = try await send(
            .GET, "/api/2.0/fs/files" + path.encoded, headers: [("Accept", "application/octet-stream")],
            bodyLimit: configuration.maximumDownloadBytes, what: what)
        guard response.status == 200 else { throw failure(response, what, path, writing: false) }
        return Array(response.body.readableBytesView)
    }

    /// The size and modification time of the file `path`.
    package func metadata(_ path: String) async throws(FerryError) -> DatabricksFileMetadata {
        let path = try VolumePath(path, insideVolume: true)
        let what = "read the metadata of \(path)"
        let response = try await send(.HEAD, "/api/2.0/fs/files" + path.encoded, what: what)
        guard response.status == 200 else { throw failure(response, what, path, writing: false) }
        guard let size = response.headers.first(name: "Content-Length").flatMap(Self.byteCount) else {
            throw unexpected("a file's metadata without a valid Content-Length", what)
        }
        return DatabricksFileMetadata(
            path: path.description, size: size, lastModified: response.headers.first(name: "Last-Modified").flatMap(RetryAfter.httpDate),
            contentType: response.headers.first(name: "Content-Type"))
    }

    /// The entries of the directory `path`, every page of them (`pageSize` per request; nil: the service's default).
    package func list(_ directory: String, pageSize: Int? = nil) async throws(FerryError) -> [DatabricksDirectoryEntry] {
        let path = try VolumePath(directory)
        let what = "list \(path)"
        var entries: [DatabricksDirectoryEntry] = []
        var token: String?
        var seen = Set<String>()
        repeat {
            var query: [(String, String)] = []
            if let pageSize { query.append(("page_size", String(pageSize))) }
            if let token { query.append(("page_token", token)) }
            let response = try await send(.GET, "/api/2.0/fs/directories" + path.encoded, query: query, what: what)
            guard response.status == 200 else { throw failure(response, what, path, writing: false) }
            let page = try DatabricksListing.decode(response.body, what: what, client: self)
            entries += page.entries
            token = page.nextPageToken
            if let token, !seen.insert(token).inserted {
                throw unexpected("a listing whose next_page_token repeats an earlier one", what)
            }
        } while token != nil
        return entries
    }

    /// Deletes the file `path`.
    package func delete(_ path: String) async throws(FerryError) {
        let path = try VolumePath(path, insideVolume: true)
        let what = "delete \(path)"
        let response = try await send(.DELETE, "/api/2.0/fs/files" + path.encoded, what: what)
        guard response.isSuccess else { throw failure(response, what, path, writing: false) }
    }

    /// Deletes the empty directory `path` (the Files API refuses one that has entries).
    package func deleteDirectory(_ path: String) async throws(FerryError) {
        let path = try VolumePath(path)
        let what = "delete the directory \(path)"
        let response = try await send(.DELETE, "/api/2.0/fs/directories" + path.encoded, what: what)
        guard response.isSuccess else { throw failure(response, what, path, writing: false) }
    }

    /// A count of bytes from a header: decimal digits only, within Int64.
    static func byteCount(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return Int64(text)
    }
}
