package import FerryCore
import Foundation

/// Where a Databricks workspace is and how Ferry signs in to it; reading it from the environment is in
/// `DatabricksConfiguration+Environment.swift`.
package struct DatabricksConfiguration: Sendable {
    /// How requests are signed in.
    package enum Authentication: Sendable, CustomStringConvertible {
        /// A personal access token (`Authorization: Bearer <token>`).
        case token(Secret)
        /// OAuth machine-to-machine: a service principal's client id and secret, exchanged at `{host}/oidc/v1/token`
        /// for an access token that is cached and renewed before it expires.
        case oauth(clientID: String, clientSecret: Secret)

        package var description: String {
            switch self {
            case .token: return "a personal access token"
            case .oauth(let clientID, _): return "the OAuth client \(PrintableText.escaped(clientID))"
            }
        }

        /// The secrets to blank in any text that came from the server.
        var secrets: [Secret] {
            switch self {
            case .token(let token): return [token]
            case .oauth(_, let secret): return [secret]
            }
        }
    }

    /// The workspace's base URL, `scheme://host[:port]` (no path), and its `host[:port]` for messages.
    package let baseURL: String
    package let authority: String
    package var authentication: Authentication
    /// 429 and 503 answers, and connection failures, are tried again: 3 tries in all, 1 s base, 60 s maximum, unless
    /// the answer's `Retry-After` says how long to wait (capped at `maximum`). Tests shorten `base`.
    package var retry = Backoff(base: .seconds(1), maximum: .seconds(60), maxRetries: 2)
    /// The deadline of one request, upload or download included. Default 10 minutes (the Files API takes up to 5 GiB).
    package var requestTimeout: Duration = .seconds(600)
    /// The largest file `download` holds in memory. Default 1 GiB.
    package var maximumDownloadBytes = 1 << 30
    /// How long before its expiry an OAuth access token is renewed (at most half its lifetime). Default 60 s.
    package var tokenRefreshMargin: Duration = .seconds(60)

    /// `host` is `https://adb-123.azuredatabricks.net` (a bare host name means https) or, for the emulator,
    /// `http://127.0.0.1:PORT`.
    package init(host: String, authentication: Authentication) throws(FerryError) {
        var text = host.trimmingCharacters(in: .whitespaces)
        if !text.contains("://") { text = "https://" + text }
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let name = url.host, !name.isEmpty, url.user == nil, url.password == nil, url.path.isEmpty, url.query == nil,
            url.fragment == nil
        else {
            throw FerryError(
                .configuration, "\"\(PrintableText.escaped(host))\" is not a Databricks workspace URL",
                fix: "set DATABRICKS_HOST to the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net")
        }
        let authority = url.port.map { "\(name):\($0)" } ?? name
        self.baseURL = "\(scheme)://\(authority)"
        self.authority = authority
        self.authentication = authentication
    }
}
