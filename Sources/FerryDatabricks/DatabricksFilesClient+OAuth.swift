import AsyncHTTPClient
import FerryCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

extension DatabricksFilesClient {
    /// The longest access token lifetime taken as given (a year); a longer or non-positive `expires_in` is an error.
    static let longestTokenLifetime: Double = 366 * 86_400

    /// A new access token from `{host}/oidc/v1/token` (client credentials grant, scope `all-apis`, the client id and
    /// secret as HTTP Basic authentication, as the Databricks SDKs send them).
    func fetchToken(clientID: String, clientSecret: Secret) async throws(FerryError) -> DatabricksTokenCache.Token {
        let what = "get an OAuth token for the client \(PrintableText.escaped(clientID))"
        let basic = Data("\(clientID):\(clientSecret.value)".utf8).base64EncodedString()
        let started = ContinuousClock.now
        let response = try await perform(
            .POST, url: configuration.baseURL + "/oidc/v1/token",
            headers: [
                ("Authorization", "Basic " + basic), ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"),
            ],
            body: .bytes(ByteBuffer(string: "grant_type=client_credentials&scope=all-apis")), idempotent: true, bodyLimit: 1 << 20, what: what,
            secrets: [clientSecret, Secret(basic)])
        guard response.status == 200 else { throw tokenFailure(response, clientID: clientID, what: what) }

        struct Answer: Decodable {
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var access_token: String?
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var token_type: String?
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var expires_in: Double?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(response.body.readableBytesView)) else {
            throw unexpected("a token answer that is not the expected JSON", what)
        }
        guard let token = answer.access_token, !token.isEmpty, token.utf8.count <= 64 << 10,
            token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else {
            throw unexpected("a token answer without a usable access_token", what)
        }
        if let type = answer.token_type, type.lowercased() != "bearer" {
            throw unexpected("a token of type \(PrintableText.escaped(String(type.prefix(40)))), not Bearer", what)
        }
        guard let seconds = answer.expires_in, seconds.isFinite, seconds >= 1, seconds <= Self.longestTokenLifetime else {
            throw unexpected("a token answer whose expires_in is missing or out of range", what)
        }
        let lifetime = Duration.milliseconds(Int64(seconds * 1000))
        let margin = min(configuration.tokenRefreshMargin, lifetime / 2)
        logger.debug("got an OAuth token", metadata: ["ferry.databricks.expires_in": "\(Int(seconds))"])
        return DatabricksTokenCache.Token(value: Secret(token), renewAt: started + lifetime - margin)
    }

    private func tokenFailure(_ response: DatabricksResponse, clientID: String, what: String) -> FerryError {
        let detail = self.detail(response)
        switch response.status {
        case 400, 401, 403:
            return FerryError(
                .authentication, "cannot \(what): \(configuration.authority) refused the client credentials (\(detail))",
                fix: "check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET: the service principal's application id and an OAuth secret of it")
        case 404:
            return FerryError(
                .configuration, "cannot \(what): \(configuration.authority) has no OAuth token endpoint /oidc/v1/token (\(detail))",
                fix: "check DATABRICKS_HOST: it must be the workspace URL, not the account console")
        default:
            return failure(response, what, nil, writing: false)
        }
    }
}
