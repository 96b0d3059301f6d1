package import FerryCore

/// Where an S3 repository lives and how to reach it: the bucket and key prefix of `s3://bucket/prefix`, the region,
/// an endpoint for S3-compatible stores, the credentials, and the lock's and retries' timings. Read from the
/// environment by `init(location:environment:)` (S3Configuration+Environment.swift).
package struct S3Configuration: Sendable {
    /// An access key, as the AWS tools take it from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`. The secret parts print as `***`.
    package struct Credentials: Sendable {
        package var accessKeyID: String
        package var secretAccessKey: Secret
        /// Temporary credentials' session token (STS, instance roles).
        package var sessionToken: Secret?

        package init(accessKeyID: String, secretAccessKey: Secret, sessionToken: Secret? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// An S3-compatible store's address (`http://127.0.0.1:9000`): a scheme, a host and a port, no path.
    package struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        package var secure: Bool
        package var host: String
        package var port: Int?

        package init(secure: Bool, host: String, port: Int? = nil) {
            self.secure = secure
            self.host = host
            self.port = port
        }

        /// The Host header: the port only when it is not the scheme's default.
        package var authority: String {
            let bracketed = host.contains(":") ? "[\(host)]" : host
            guard let port, port != (secure ? 443 : 80) else { return bracketed }
            return "\(bracketed):\(port)"
        }

        package var description: String { (secure ? "https://" : "http://") + authority }
    }

    package var bucket: String
    /// The keys' prefix, without a leading or trailing `/`; empty for the bucket's root.
    package var prefix: String
    /// Default `us-east-1`.
    package var region: String
    /// An S3-compatible store; nil for AWS (`https://s3.<region>.amazonaws.com`).
    package var endpoint: Endpoint?
    package var credentials: Credentials
    /// A lock whose object was last written this long ago is taken over: its holder died without releasing it (a
    /// holder rewrites it every `lockRefreshInterval`). Default 6 hours.
    package var lockStaleAfter: Duration = .seconds(6 * 3600)
    /// How often a held lock is rewritten, so that a long backup's lock never looks stale. Default 30 minutes.
    package var lockRefreshInterval: Duration = .seconds(30 * 60)
    /// 500, 502, 503, 504, 429 and connection failures are tried again: 3 tries in all by default.
    package var retry = Backoff(base: .milliseconds(200), maximum: .seconds(2), maxRetries: 2)

    package init(bucket: String, prefix: String = "", region: String = "us-east-1", endpoint: Endpoint? = nil, credentials: Credentials) {
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.endpoint = endpoint
        self.credentials = credentials
    }

    /// `s3://bucket/prefix`, for messages.
    package var location: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }

    /// Path-style addressing (`host/bucket/key`) with an endpoint, which S3-compatible stores expect, and for bucket
    /// names that are not DNS labels; virtual-hosted (`bucket.s3.<region>.amazonaws.com/key`) on AWS otherwise.
    var pathStyle: Bool { endpoint != nil || !Self.isDNSCompatible(bucket) }

    /// The request's scheme and Host header.
    var server: Endpoint {
        if let endpoint { return endpoint }
        let domain = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        let host = "s3.\(region).\(domain)"
        return Endpoint(secure: true, host: pathStyle ? host : "\(bucket).\(host)")
    }

    /// The URI-encoded path of `key` (a full key, prefix included); nil for the bucket itself.
    func path(of key: String?) -> String {
        let base = pathStyle ? "/" + S3Signer.uriEncode(bucket, encodeSlash: true) : ""
        guard let key else { return base.isEmpty ? "/" : base }
        return base + "/" + S3Signer.uriEncode(key, encodeSlash: false)
    }

    /// The full key of a repository path.
    func key(_ path: String) -> String { prefix.isEmpty ? path : prefix + "/" + path }

    /// Lower-case letters, digits, hyphens, 3 to 63 characters, no dots (TLS wildcards do not cover them).
    static func isDNSCompatible(_ bucket: String) -> Bool {
        let bytes = Array(bucket.utf8)
        guard (3...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-")
        }
    }
}
