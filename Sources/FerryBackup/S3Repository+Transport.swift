import AsyncHTTPClient
import Crypto
import FerryCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An answer from the store: its status, the headers Ferry reads, the body, and S3's error code and message when the
/// body is an error document.
struct S3Response: Sendable {
    var status: Int
    var body: [UInt8]
    var etag: String?
    var lastModified: String?
    var date: String?
    var bucketRegion: String?
    var errorCode: String?
    var errorMessage: String?
    /// The region an `AuthorizationHeaderMalformed` error names.
    var errorRegion: String?

    init(status: Int, body: [UInt8], headers: HTTPHeaders = [:]) {
        self.status = status
        self.body = body
        etag = headers.first(name: "ETag")
        lastModified = headers.first(name: "Last-Modified")
        date = headers.first(name: "Date")
        bucketRegion = headers.first(name: "x-amz-bucket-region")
        if status >= 300, let error = S3XML(body) {
            errorCode = error.first("Code", in: "Error")
            errorMessage = error.first("Message", in: "Error")
            errorRegion = error.first("Region", in: "Error")
        }
    }
}

extension S3Repository {
    /// Sends a signed request about `key` (nil: the bucket itself) and returns the store's answer, whatever its status;
    /// tries again on 500, 502, 503, 504, 429, a conditional write's conflict and connection failures.
    func send(
        _ method: String, key: String?, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)] = [],
        body: [UInt8] = [], what: String
    ) throws(FerryError) -> S3Response {
        try perform(
            method, server: configuration.server, path: configuration.path(of: key), query: query, headers: headers, body: body,
            signer: S3Signer(credentials: configuration.credentials, region: configuration.region), what: what)
    }

    /// Sends one signed request to `server`, waiting on this thread.
    func perform(
        _ method: String, server: S3Configuration.Endpoint, path: String, query: [(name: String, value: String)],
        headers: [(name: String, value: String)], body: [UInt8], signer: S3Signer, what: String
    ) throws(FerryError) -> S3Response {
        // Waiting on an event loop would stop the loop that has to answer.
        precondition(MultiThreadedEventLoopGroup.currentEventLoop == nil, "S3Repository waits for its requests: call it off NIO's event loops")
        let payloadHash = S3Signer.hex(SHA256.hash(data: body))
        let queryString = S3Signer.canonicalQuery(query)
        let url = server.description + path + (queryString.isEmpty ? "" : "?" + queryString)
        let hasBody = method == "PUT" || method == "POST"
        var attempt = 0
        while true {
            let request: HTTPClient.Request
            do {
                var all = HTTPHeaders(headers.map { ($0.name, $0.value) })
                let signed = signer.sign(
                    S3Signer.Request(method: method, host: server.authority, path: path, query: query, headers: headers, payloadHash: payloadHash),
                    at: Date())
                for header in signed { all.add(name: header.name, value: header.value) }
                request = try HTTPClient.Request(
                    url: url, method: HTTPMethod(rawValue: method), headers: all, body: hasBody ? .bytes(body) : nil)
            } catch {
                throw FerryError(
                    .configuration, "cannot \(what) in \(location): \(server) does not make a URL (\(error))", fix: "check AWS_ENDPOINT_URL_S3")
            }
            let answer: HTTPClient.Response
            do {
                answer = try http.execute(request: request).wait()
            } catch {
                if configuration.retry.allowsRetry(after: attempt) {
                    Self.pause(configuration.retry.delay(attempt: attempt))
                    attempt += 1
                    continue
                }
                throw FerryError(
                    .unreachable,
                    "cannot \(what) in \(location): \(server.authority) did not answer (\(NetworkErrorText.describe(error)), \(attempt + 1) tries)",
                    fix: configuration.endpoint == nil
                        ? "check this machine's network access to \(server.authority)"
                        : "check that the store runs at \(server) (AWS_ENDPOINT_URL_S3) and that this machine reaches it",
                    underlying: error)
            }
            let response = S3Response(
                status: Int(answer.status.code), body: answer.body.map { Array($0.readableBytesView) } ?? [], headers: answer.headers)
            if Self.isTransient(response), configuration.retry.allowsRetry(after: attempt) {
                Self.pause(configuration.retry.delay(attempt: attempt))
                attempt += 1
                continue
            }
            return response
        }
    }

    /// Worth another try: the store is overloaded or failed inside, or a conditional write raced another
    /// (`ConditionalRequestConflict`, which S3 asks to retry).
    static func isTransient(_ response: S3Response) -> Bool {
        [500, 502, 503, 504, 429].contains(response.status) || (response.status == 409 && response.errorCode == "ConditionalRequestConflict")
    }

    private static func pause(_ delay: Duration) {
        Thread.sleep(forTimeInterval: delay.seconds)
    }

    /// The error for an answer the caller cannot use, naming the bucket and what to do. S3's message is quoted, with
    /// any credential it might echo blanked.
    func failure(_ response: S3Response, _ what: String) -> FerryError {
        let bucket = configuration.bucket
        let code = response.errorCode ?? ""
        let detail =
            code.isEmpty ? "HTTP \(response.status)" : "\(PrintableText.escaped(code))" + (response.errorMessage.map { ": " + scrubbed($0) } ?? "")
        let failed = "cannot \(what) in \(location)"
        switch (response.status, code) {
        case (_, "SignatureDoesNotMatch"), (_, "InvalidAccessKeyId"), (_, "InvalidToken"), (_, "ExpiredToken"), (_, "TokenRefreshRequired"):
            return FerryError(
                .permission, "\(failed): the store refused the credentials (\(detail))",
                fix: "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN, which expires, for temporary credentials)")
        case (403, _):
            let objects = "arn:aws:s3:::\(bucket)/" + (configuration.prefix.isEmpty ? "*" : configuration.prefix + "/*")
            return FerryError(
                .permission, "\(failed): access to the bucket \(bucket) was denied (\(detail))",
                fix: "grant the key's user s3:ListBucket on arn:aws:s3:::\(bucket) and s3:GetObject, s3:PutObject, s3:DeleteObject on \(objects)")
        case (404, "NoSuchBucket"):
            return FerryError(
                .notFound, "\(failed): there is no bucket \(bucket) at \(configuration.server)",
                fix: configuration.endpoint == nil
                    ? "create the bucket, or correct its name in the repository location (and AWS_REGION)"
                    : "create the bucket, or correct its name in the repository location (and AWS_ENDPOINT_URL_S3)")
        case (301, _), (307, _), (400, "AuthorizationHeaderMalformed"), (400, "IllegalLocationConstraintException"):
            let region = response.bucketRegion ?? response.errorRegion
            return FerryError(
                .configuration,
                "\(failed): the bucket \(bucket) is \(region.map { "in the region \(PrintableText.escaped($0))" } ?? "in another region"), not \(configuration.region)",
                fix: "set AWS_REGION=\(region.map(PrintableText.escaped) ?? "<the bucket's region>")")
        case (501, _), (_, "NotImplemented"):
            return FerryError(
                .unsupported, "\(failed): the store does not support the request (\(detail))",
                fix: "Ferry needs ListObjectsV2 and conditional writes (If-None-Match, If-Match): use AWS S3 or a store that has them")
        case (500..., _), (429, _):
            return FerryError(
                .server, "\(failed): the store failed (\(detail)) in each of \(1 + (configuration.retry.maxRetries ?? 0)) tries",
                fix: "try again later; if it persists, check the store's health")
        default:
            return FerryError(.server, "\(failed): \(detail)", fix: "check the bucket's settings and the store's logs")
        }
    }

    /// S3's text with control characters escaped and the secret key and session token, were they echoed, blanked.
    func scrubbed(_ message: String) -> String {
        var text = String(message.prefix(300))
        for secret in [configuration.credentials.secretAccessKey.value, configuration.credentials.sessionToken?.value ?? ""] where secret.count >= 4 {
            text = text.replacingOccurrences(of: secret, with: "***")
        }
        return PrintableText.escaped(text)
    }
}
