import DatabricksEmulator
import FerryCore
import FerryDatabricks
import Foundation
import Testing

@Suite struct DatabricksFilesClientTests {
    static let volume = EmulatedWorkspace.volume

    @Test func everyOperationAgainstTheEmulator() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            let directory = Self.volume + "/orders/2024"
            try await client.createDirectory(directory)
            try await client.createDirectory(directory)  // idempotent, like mkdir -p
            let bytes = Array("id,total\n1,9.50\n".utf8)
            try await client.upload(bytes, to: directory + "/part-0.csv", overwrite: false)
            #expect(emulator.file(directory + "/part-0.csv") == bytes)
            #expect(try await client.download(directory + "/part-0.csv") == bytes)

            let metadata = try await client.metadata(directory + "/part-0.csv")
            #expect(metadata.size == Int64(bytes.count))
            #expect(metadata.path == directory + "/part-0.csv")
            let modified = try #require(metadata.lastModified)
            #expect(abs(modified.timeIntervalSinceNow) < 120)

            try await client.upload([], to: directory + "/empty", overwrite: false)
            #expect(try await client.download(directory + "/empty") == [])
            try await client.createDirectory(directory + "/sub")
            let entries = try await client.list(directory)
            #expect(entries.map(\.name) == ["empty", "part-0.csv", "sub"])
            #expect(entries.map(\.isDirectory) == [false, false, true])
            #expect(entries.map(\.size) == [0, Int64(bytes.count), nil])
            #expect(entries[1].path == directory + "/part-0.csv")
            #expect(entries[1].lastModified != nil)

            try await client.delete(directory + "/part-0.csv")
            #expect(emulator.file(directory + "/part-0.csv") == nil)
            let gone = await ferryError { _ = try await client.download(directory + "/part-0.csv") }
            #expect(gone?.code == .notFound)
            let headGone = await ferryError { _ = try await client.metadata(directory + "/part-0.csv") }
            #expect(headGone?.code == .notFound)

            // A directory with entries is refused; emptied, it goes.
            let notEmpty = await ferryError { try await client.deleteDirectory(directory) }
            #expect(notEmpty?.code == .conflict)
            try await client.delete(directory + "/empty")
            try await client.deleteDirectory(directory + "/sub")
            try await client.deleteDirectory(directory)
            #expect(try await client.list(Self.volume + "/orders").isEmpty)

            // The requests went to Databricks' paths with a bearer token.
            let methods = emulator.requests.map { "\($0.method) \($0.path)" }
            #expect(methods.contains("PUT /api/2.0/fs/directories\(directory)"))
            #expect(methods.contains("PUT /api/2.0/fs/files\(directory)/part-0.csv"))
            #expect(methods.contains("HEAD /api/2.0/fs/files\(directory)/part-0.csv"))
            #expect(methods.contains("DELETE /api/2.0/fs/directories\(directory)"))
            #expect(emulator.requests.allSatisfy { $0.authorizationScheme == "Bearer" })
            let upload = try #require(emulator.requests.first { $0.method == "PUT" && $0.path.hasSuffix("part-0.csv") })
            #expect(upload.query["overwrite"] == "false")
        }
    }

    @Test func listsEveryPage() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            let directory = Self.volume + "/many"
            let names = (0..<7).map { "file-\($0)" }
            for name in names { try await client.upload([1], to: directory + "/" + name, overwrite: true) }
            emulator.clearRequests()
            let entries = try await client.list(directory, pageSize: 3)
            #expect(entries.map(\.name) == names)
            let pages = emulator.requests.filter { $0.path.hasPrefix("/api/2.0/fs/directories") }
            #expect(pages.count == 3)
            #expect(pages.map { $0.query["page_size"] } == ["3", "3", "3"])
            #expect(pages[0].query["page_token"] == nil && pages[1].query["page_token"] != nil)
        }
    }

    @Test func overwriteOnlyWhenAsked() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            let path = Self.volume + "/result.parquet"
            try await client.upload([1, 2, 3], to: path, overwrite: false)
            let error = try #require(await ferryError { try await client.upload([4, 5], to: path, overwrite: false) })
            #expect(error.code == .conflict)
            #expect(error.message.contains("ALREADY_EXISTS") && error.message.contains(path) && error.message.contains("127.0.0.1"))
            #expect(error.fix?.contains("overwrite") == true)
            #expect(emulator.file(path) == [1, 2, 3])
            try await client.upload([4, 5], to: path, overwrite: true)
            #expect(emulator.file(path) == [4, 5])
        }
    }

    @Test func aMissingVolumeSaysHowToCreateIt() async throws {
        try await EmulatedWorkspace.withClient { _, client in
            let error = try #require(
                await ferryError { try await client.upload([1], to: "/Volumes/main/default/missing/a.parquet", overwrite: true) })
            #expect(error.code == .notFound)
            #expect(error.message.contains("RESOURCE_DOES_NOT_EXIST"))
            #expect(error.message.contains("/Volumes/main/default/missing"))
            #expect(error.fix?.contains("CREATE VOLUME main.default.missing") == true)
            let directory = try #require(await ferryError { try await client.createDirectory("/Volumes/main/default/missing/dir") })
            #expect(directory.code == .notFound && directory.fix?.contains("CREATE VOLUME") == true)
            let listing = try #require(await ferryError { _ = try await client.list("/Volumes/main/default/missing") })
            #expect(listing.code == .notFound)
        }
    }

    @Test func refusesBadPathsBeforeAnyRequest() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            for path in ["/Volumes/main/default/landing/../../secret", "relative/file", "/Volumes/main/default/landing/a\u{7}b", "/tmp/file"] {
                let error = await ferryError { try await client.upload([1], to: path, overwrite: true) }
                #expect(error?.code == .invalidInput, "\(path)")
                let read = await ferryError { _ = try await client.download(path) }
                #expect(read?.code == .invalidInput, "\(path)")
            }
            #expect(emulator.requests.isEmpty)
        }
    }

    @Test func encodesSpacesAndUnicodeInNames() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            let directory = Self.volume + "/exports 2024/ünïcödé 日本"
            let path = directory + "/résumé #1 (final)?.parquet"
            try await client.upload(Array("x".utf8), to: path, overwrite: false)
            #expect(emulator.file(path) == Array("x".utf8))
            let request = try #require(emulator.requests.last)
            #expect(request.path == "/api/2.0/fs/files" + path)
            #expect(
                request.rawPath.hasPrefix(
                    "/api/2.0/fs/files/Volumes/main/default/landing/exports%202024/%C3%BCn%C3%AFc%C3%B6d%C3%A9%20%E6%97%A5%E6%9C%AC/"))
            #expect(request.rawPath.contains("r%C3%A9sum%C3%A9%20%231%20%28final%29%3F.parquet?overwrite=false"))
            #expect(try await client.download(path) == Array("x".utf8))
            #expect(try await client.list(directory).map(\.name) == ["résumé #1 (final)?.parquet"])
        }
    }

    @Test func aBigFileStreamsFromDiskAndRoundTrips() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-databricks-\(UUID().uuidString).bin").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        var generator = SeededBytes(seed: 21)
        let bytes = (0..<(20 << 20)).map { _ in generator.next() }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        try await EmulatedWorkspace.withClient { emulator, client in
            let path = Self.volume + "/big/extract.parquet"
            try await client.upload(file: file, to: path, overwrite: false)
            #expect(emulator.file(path)?.count == bytes.count)
            #expect(emulator.file(path) == bytes)
            #expect(try await client.metadata(path).size == Int64(bytes.count))
            let downloaded = try await client.download(path)
            #expect(downloaded.count == bytes.count)
            #expect(downloaded == bytes)
        }
    }

    @Test func aTooLargeUploadIsRefused() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            emulator.setMaximumFileSize(1000)
            let error = try #require(
                await ferryError { try await client.upload(Array(repeating: 7, count: 5000), to: Self.volume + "/big", overwrite: true) })
            #expect(error.code == .tooLarge)
            #expect(emulator.file(Self.volume + "/big") == nil)
            // The connection still serves the next request.
            try await client.upload([1], to: Self.volume + "/small", overwrite: true)
        }
    }

    @Test func aMissingLocalFileIsAClearError() async throws {
        try await EmulatedWorkspace.withClient { emulator, client in
            let error = try #require(
                await ferryError { try await client.upload(file: "/nonexistent/out.parquet", to: Self.volume + "/x", overwrite: true) })
            #expect(error.code == .invalidInput)
            #expect(error.message.contains("/nonexistent/out.parquet"))
            #expect(emulator.requests.isEmpty)
        }
    }

    @Test func aDownloadOverTheLimitIsRefused() async throws {
        try await EmulatedWorkspace.with { workspace in
            try await workspace.withClient { client in
                try await client.upload(Array(repeating: 1, count: 4096), to: Self.volume + "/f", overwrite: true)
            }
            var configuration = try workspace.configuration()
            configuration.maximumDownloadBytes = 1024
            try await workspace.withClient(configuration) { client in
                let error = await ferryError { _ = try await client.download(Self.volume + "/f") }
                #expect(error?.code == .tooLarge)
            }
        }
    }
}

/// Reproducible pseudo-random bytes (xorshift), so a failure can be replayed.
struct SeededBytes {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt8 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state >> 32)
    }
}
