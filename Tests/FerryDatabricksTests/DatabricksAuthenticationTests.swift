import DatabricksEmulator
import FerryCore
import FerryDatabricks
import Foundation
import Testing

@Suite struct DatabricksAuthenticationTests {
    static let volume = EmulatedWorkspace.volume

    @Test func aPersonalAccessTokenIsSentAsBearer() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            try await client.upload([1], to: Self.volume + "/a", overwrite: true)
            #expect(emulator.requests.map(\.authorizationScheme) == ["Bearer"])
            #expect(emulator.issuedTokenCount == 0)
        }
    }

    @Test func aWrongTokenIsAnAuthenticationErrorWithoutTheToken() async throws {
        try await EmulatedWorkspace.with { workspace in
            let secret = "dapi-wrong-0123456789abcdef"
            try await workspace.withClient(try workspace.configuration(.token(Secret(secret)))) { client in
                let error = try #require(await ferryError { try await client.upload([1], to: Self.volume + "/a", overwrite: true) })
                #expect(error.code == .authentication)
                #expect(error.message.contains("UNAUTHENTICATED"))
                #expect(error.fix?.contains("DATABRICKS_TOKEN") == true)
                #expect(!"\(error)".contains(secret) && !String(reflecting: error).contains(secret))
                // Not retried: a refused token stays refused.
                #expect(workspace.emulator.requests.count == 1)
            }
        }
    }

    @Test func aReadOnlyTokenGetsPermissionDeniedOnWrites() async throws {
        try await EmulatedWorkspace.with { workspace in
            workspace.emulator.addToken("dapi-reader", readOnly: true)
            try await workspace.withClient(try workspace.configuration(.token(Secret("dapi-reader")))) { client in
                let error = try #require(await ferryError { try await client.upload([1], to: Self.volume + "/a", overwrite: true) })
                #expect(error.code == .permission)
                #expect(error.message.contains("PERMISSION_DENIED"))
                #expect(error.fix?.contains("WRITE VOLUME on main.default.landing") == true)
                #expect(try await client.list(Self.volume).isEmpty)
            }
        }
    }

    @Test func oauthTokensAreCachedAndRenewedBeforeExpiry() async throws {
        try await EmulatedWorkspace.with { workspace in
            let emulator = workspace.emulator
            emulator.addOAuthClient(id: "ferry-sp", secret: "oauth-secret-value")
            // A long lifetime first: how long the requests take (a loaded machine) cannot matter.
            emulator.setTokenLifetime(seconds: 3600)
            var configuration = try workspace.configuration(.oauth(clientID: "ferry-sp", clientSecret: Secret("oauth-secret-value")))
            configuration.tokenRefreshMargin = .milliseconds(500)
            try await workspace.withClient(configuration) { client in
                // Several requests at once share one token.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<4 { group.addTask { try await client.upload([UInt8(index)], to: Self.volume + "/f\(index)", overwrite: true) } }
                    try await group.waitForAll()
                }
                _ = try await client.list(Self.volume)
                #expect(emulator.issuedTokenCount == 1)
                let token = try #require(emulator.requests.first)
                #expect(token.method == "POST" && token.path == "/oidc/v1/token" && token.authorizationScheme == "Basic")
            }
            // A fresh client with a short-lived token: past renewAt (lifetime 2 s − margin 0.5 s) the next request gets
            // a new token first.
            emulator.setTokenLifetime(seconds: 2)
            try await workspace.withClient(configuration) { client in
                _ = try await client.list(Self.volume)
                #expect(emulator.issuedTokenCount >= 2)
                let deadline = ContinuousClock.now + .seconds(30)
                while emulator.issuedTokenCount < 3, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(250))
                    _ = try await client.metadata(Self.volume + "/f0")
                }
                #expect(emulator.issuedTokenCount >= 3, "the token was renewed before it expired")
                #expect(emulator.requests.filter { $0.path.hasPrefix("/api/") }.allSatisfy { $0.authorizationScheme == "Bearer" })
            }
        }
    }

    @Test func anExpiredOAuthTokenIsReplacedOnce() async throws {
        try await EmulatedWorkspace.with { workspace in
            let emulator = workspace.emulator
            emulator.addOAuthClient(id: "ferry-sp", secret: "oauth-secret-value")
            // The workspace ends the token while the client still holds it as valid (no timing involved: a loaded
            // machine must not expire a second token mid-test).
            let configuration = try workspace.configuration(.oauth(clientID: "ferry-sp", clientSecret: Secret("oauth-secret-value")))
            try await workspace.withClient(configuration) { client in
                _ = try await client.list(Self.volume)
                #expect(emulator.issuedTokenCount == 1)
                emulator.expireIssuedTokens()
                _ = try await client.list(Self.volume)
                #expect(emulator.issuedTokenCount == 2, "one new token after the 401, then the request is retried")
                _ = try await client.list(Self.volume)
                #expect(emulator.issuedTokenCount == 2, "the new token is kept")
            }
        }
    }

    @Test func aWrongClientSecretIsAClearErrorWithoutTheSecret() async throws {
        try await EmulatedWorkspace.with { workspace in
            workspace.emulator.addOAuthClient(id: "ferry-sp", secret: "the-right-secret")
            let secret = "the-wrong-secret-42"
            try await workspace.withClient(try workspace.configuration(.oauth(clientID: "ferry-sp", clientSecret: Secret(secret)))) { client in
                let error = try #require(await ferryError { _ = try await client.list(Self.volume) })
                #expect(error.code == .authentication)
                #expect(error.message.contains("invalid_client") && error.message.contains("ferry-sp"))
                #expect(error.fix?.contains("DATABRICKS_CLIENT_SECRET") == true)
                let basic = Data("ferry-sp:\(secret)".utf8).base64EncodedString()
                for text in ["\(error)", String(reflecting: error), error.fix ?? ""] {
                    #expect(!text.contains(secret) && !text.contains(basic))
                }
                #expect(!workspace.emulator.requests.contains { $0.path.hasPrefix("/api/") })
            }
        }
    }
}
