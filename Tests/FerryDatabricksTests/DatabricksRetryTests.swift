import DatabricksEmulator
import FerryCore
import Foundation
import Testing

@testable import FerryDatabricks

@Suite struct DatabricksRetryTests {
    static let volume = EmulatedWorkspace.volume

    @Test func waitsAsRetryAfterSaysThenSucceeds() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            emulator.failNext(1, status: 429, retryAfter: 1)
            let started = ContinuousClock.now
            try await client.upload([1, 2], to: Self.volume + "/r", overwrite: false)
            let waited = ContinuousClock.now - started
            // Retry-After: 1 was honoured (the test backoff alone is 20 ms).
            #expect(waited >= .milliseconds(950))
            #expect(waited < .seconds(10))
            #expect(emulator.requests.count == 2)
            #expect(emulator.file(Self.volume + "/r") == [1, 2])
        }
    }

    @Test func threeUnavailableAnswersAreAClearError() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            emulator.failNext(3, status: 503)
            let error = try #require(await ferryError { _ = try await client.download(Self.volume + "/missing") })
            #expect(error.code == .server)
            #expect(error.message.contains("TEMPORARILY_UNAVAILABLE") && error.message.contains("3 tries"), "\(error)")
            #expect(error.message.contains("127.0.0.1") && error.message.contains(Self.volume + "/missing"))
            #expect(emulator.requests.count == 3)
            // The fourth request goes through.
            let after = await ferryError { _ = try await client.download(Self.volume + "/missing") }
            #expect(after?.code == .notFound)
        }
    }

    @Test func aStreamedUploadIsSentWholeAgainOnRetry() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-databricks-\(UUID().uuidString).bin").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        var generator = SeededBytes(seed: 7)
        let bytes = (0..<(3 << 20)).map { _ in generator.next() }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        try await EmulatedWorkspace.withClient { emulator, client in
            emulator.failNext(2, status: 503, retryAfter: 0)
            try await client.upload(file: file, to: Self.volume + "/s.bin", overwrite: true)
            #expect(emulator.requests.map(\.bodySize) == [bytes.count, bytes.count, bytes.count])
            #expect(emulator.file(Self.volume + "/s.bin") == bytes)
        }
    }

    @Test func aRefusedConnectionIsUnreachableAfterThreeTries() async throws {
        // A port that was just free: nothing listens there.
        let emulator = DatabricksEmulator()
        try await emulator.start()
        let host = emulator.host
        await emulator.stop()
        var configuration = try DatabricksConfiguration(host: host, authentication: .token(Secret("dapi-unused-secret")))
        configuration.retry.base = .milliseconds(10)
        let client = DatabricksFilesClient(configuration: configuration, logger: emulator.logger)
        let error = await ferryError { _ = try await client.download(Self.volume + "/x") }
        // Nothing reached the server, so even an upload that must not store twice is tried again.
        let upload = await ferryError { try await client.upload([1], to: Self.volume + "/x", overwrite: false) }
        await client.shutdown()
        for error in [error, upload] {
            #expect(error?.code == .unreachable)
            #expect(error?.message.contains("3 tries") == true, "\(String(describing: error))")
            #expect(error?.message.contains("connection refused") == true, "\(String(describing: error))")
            #expect(error?.fix?.contains("DATABRICKS_HOST") == true)
            #expect(error.map { !"\($0)".contains("dapi-unused-secret") } == true)
        }
    }

    @Test func parsesRetryAfter() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let maximum = Duration.seconds(60)
        #expect(RetryAfter.delay("3", now: now, maximum: maximum) == .seconds(3))
        #expect(RetryAfter.delay("0", now: now, maximum: maximum) == .zero)
        #expect(RetryAfter.delay("600", now: now, maximum: maximum) == maximum)
        #expect(RetryAfter.delay("99999999999999999999999", now: now, maximum: maximum) == maximum)
        #expect(RetryAfter.delay("-5", now: now, maximum: maximum) == nil)
        #expect(RetryAfter.delay("soon", now: now, maximum: maximum) == nil)
        #expect(RetryAfter.delay("", now: now, maximum: maximum) == nil)
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        #expect(RetryAfter.delay("Tue, 14 Nov 2023 22:13:30 GMT", now: now, maximum: maximum) == .seconds(10))
        #expect(RetryAfter.delay("Tue, 14 Nov 2023 22:00:00 GMT", now: now, maximum: maximum) == .zero)
        #expect(RetryAfter.delay("Fri, 31 Dec 9999 23:59:59 GMT", now: now, maximum: maximum) == maximum)
    }
}
