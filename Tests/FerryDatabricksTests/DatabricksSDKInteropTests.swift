import DatabricksEmulator
import FerryCore
import FerryDatabricks
import Foundation
import Testing

/// The official Python databricks-sdk against the emulator: what Ferry uploads the SDK downloads byte for byte, and
/// what the SDK uploads Ferry downloads byte for byte, signed in with a token and with OAuth M2M.
@Suite struct DatabricksSDKInteropTests {
    enum Mode: String, CaseIterable { case pat, oauth }

    @Test(arguments: Mode.allCases)
    func theSDKAndFerryReadEachOthersFiles(_ mode: Mode) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-databricks-sdk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var generator = SeededBytes(seed: mode == .pat ? 1 : 2)
        let ferryBytes = (0..<(1 << 20) + 17).map { _ in generator.next() }
        let sdkBytes = (0..<(300 << 10) + 3).map { _ in generator.next() }
        let upload = directory.appendingPathComponent("sdk-upload.bin")
        let downloaded = directory.appendingPathComponent("sdk-download.bin")
        try Data(sdkBytes).write(to: upload)

        try await EmulatedWorkspace.with { workspace in
            let emulator = workspace.emulator
            emulator.addOAuthClient(id: "ferry-sp", secret: "sdk-oauth-secret")
            let folder = EmulatedWorkspace.volume + "/interop \(mode.rawValue)/ünïcode"
            let ferryPath = folder + "/from ferry.parquet"
            let sdkPath = folder + "/from sdk #1.parquet"
            let configuration =
                mode == .pat
                ? try workspace.configuration() : try workspace.configuration(.oauth(clientID: "ferry-sp", clientSecret: Secret("sdk-oauth-secret")))
            try await workspace.withClient(configuration) { client in
                try await client.upload(ferryBytes, to: ferryPath, overwrite: false)
            }
            let (first, second) = mode == .pat ? (EmulatedWorkspace.token, "") : ("ferry-sp", "sdk-oauth-secret")
            let result = try await PythonDatabricksSDK.run(
                [
                    "-c", PythonDatabricksSDK.script, mode.rawValue, emulator.host, first, second, ferryPath, sdkPath, folder, downloaded.path,
                    upload.path,
                ], in: directory)
            try #require(result.status == 0, "databricks-sdk failed (is it installed? run scripts/setup.sh):\n\(result.output)")
            let line = try #require(result.output.split(separator: "\n").last { $0.hasPrefix("RESULT ") })
            let answer = try JSONSerialization.jsonObject(with: Data(line.dropFirst("RESULT ".count).utf8)) as? [String: Any]
            #expect(answer?["names"] as? [String] == ["from ferry.parquet", "from sdk #1.parquet"])
            #expect(answer?["size"] as? Int == sdkBytes.count)
            #expect(try [UInt8](Data(contentsOf: downloaded)) == ferryBytes)
            #expect(emulator.file(sdkPath) == sdkBytes)
            try await workspace.withClient(configuration) { client in
                let bytes = try await client.download(sdkPath)
                #expect(bytes == sdkBytes)
            }
            // The SDK went through the Files API paths, not a presigned-URL detour.
            let paths = emulator.requests.map { "\($0.method) \($0.path)" }
            #expect(paths.contains("PUT /api/2.0/fs/files" + sdkPath))
            #expect(paths.contains("GET /api/2.0/fs/files" + ferryPath))
            #expect(!paths.contains { $0.contains("create-download-url") || $0.contains("create-upload") })
            if mode == .oauth { #expect(paths.filter { $0 == "POST /oidc/v1/token" }.count >= 2) }
        }
    }
}
