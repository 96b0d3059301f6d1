import DatabricksEmulator
import FerryCore
import Testing

@testable import FerryDatabricks

/// Every number in an answer comes from the server: a malformed or hostile one is an error, never a crash.
@Suite struct DatabricksHostileAnswerTests {
    static let volume = EmulatedWorkspace.volume

    @Test(arguments: [
        #"{"contents":[{"path":"/Volumes/main/default/landing/a","is_directory":false,"file_size":-1,"name":"a"}]}"#,
        #"{"contents":[{"path":"/Volumes/main/default/landing/a","is_directory":false,"file_size":1e30,"name":"a"}]}"#,
        #"{"contents":[{"path":"/Volumes/main/default/landing/a","is_directory":false,"file_size":"12","name":"a"}]}"#,
        #"{"contents":[{"path":"/Volumes/main/default/landing/a","last_modified":99999999999999999,"name":"a"}]}"#,
        #"{"contents":[{"path":"/Volumes/main/default/landing/a","last_modified":-5,"name":"a"}]}"#,
        #"{"contents":[{"is_directory":true,"name":"a"}]}"#,
        #"{"contents":{"path":"x"}}"#,
        #"not json at all"#,
        #"[1,2,3]"#,
    ])
    func aBrokenListingIsAProtocolError(_ body: String) async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            emulator.answerNext(status: 200, body: body)
            let error = await ferryError { _ = try await client.list(Self.volume) }
            #expect(error?.code == .protocolViolation, "\(String(describing: error))")
        }
    }

    @Test func aListingThatLoopsIsStopped() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            let page = #"{"contents":[{"path":"/Volumes/main/default/landing/a","name":"a","file_size":1}],"next_page_token":"again"}"#
            emulator.answerNext(status: 200, body: page)
            emulator.answerNext(status: 200, body: page)
            let error = await ferryError { _ = try await client.list(Self.volume) }
            #expect(error?.code == .protocolViolation)
            #expect(error?.message.contains("next_page_token") == true)
        }
    }

    @Test(arguments: [
        #"{"access_token":"t","token_type":"Bearer","expires_in":-1}"#,
        #"{"access_token":"t","token_type":"Bearer","expires_in":0}"#,
        #"{"access_token":"t","token_type":"Bearer","expires_in":1e308}"#,
        #"{"access_token":"t","token_type":"Bearer","expires_in":"3600"}"#,
        #"{"access_token":"t","token_type":"Bearer"}"#,
        #"{"token_type":"Bearer","expires_in":3600}"#,
        #"{"access_token":"","token_type":"Bearer","expires_in":3600}"#,
        #"{"access_token":"a b","token_type":"Bearer","expires_in":3600}"#,
        #"{"access_token":"t","token_type":"MAC","expires_in":3600}"#,
        #"<html>"#,
    ])
    func aBrokenTokenAnswerIsAProtocolError(_ body: String) async throws {
        try await EmulatedWorkspace.with { workspace in
            workspace.emulator.addOAuthClient(id: "sp", secret: "client-secret-value")
            workspace.emulator.answerNext(status: 200, body: body)
            try await workspace.withClient(try workspace.configuration(.oauth(clientID: "sp", clientSecret: Secret("client-secret-value")))) {
                client in
                let error = await ferryError { _ = try await client.list(Self.volume) }
                #expect(error?.code == .protocolViolation, "\(String(describing: error))")
                #expect(error.map { !"\($0)".contains("client-secret-value") } == true)
            }
        }
    }

    @Test func anErrorMessageEchoingTheTokenIsBlanked() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            let token = EmulatedWorkspace.token
            let control = #"\u001b[2J"#  // JSON for ESC [2J, which the message must not carry raw
            emulator.answerNext(status: 400, body: #"{"error_code":"BAD_REQUEST","message":"token \#(token) is odd \#(control)"}"#)
            let error = try #require(await ferryError { _ = try await client.download(Self.volume + "/a") })
            #expect(error.code == .invalidInput)
            #expect(error.message.contains("BAD_REQUEST") && error.message.contains("token *** is odd"))
            #expect(!"\(error)".contains(token) && !"\(error)".contains("\u{1b}"))
            #expect(error.message.contains("\\x1b[2J"))
        }
    }

    @Test func aGarbageRetryAfterFallsBackToTheBackoff() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            emulator.answerNext(status: 429, body: #"{"error_code":"REQUEST_LIMIT_EXCEEDED"}"#, retryAfter: "whenever")
            let started = ContinuousClock.now
            try await client.upload([1], to: Self.volume + "/g", overwrite: true)
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(emulator.file(Self.volume + "/g") == [1])
        }
    }

    @Test func byteCountsAreRangeChecked() {
        #expect(DatabricksFilesClient.byteCount("0") == 0)
        #expect(DatabricksFilesClient.byteCount("5368709120") == 5 << 30)
        for text in ["", "-1", "+1", "1.5", "12a", " 1", "99999999999999999999", "0x10"] {
            #expect(DatabricksFilesClient.byteCount(text) == nil, "\(text)")
        }
    }
}
