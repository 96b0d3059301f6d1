import FerryCore
import Foundation
import Testing

/// `ferry token new` and `ferry token check`: a token printed once with its hash, a file with it accepted, a plaintext
/// token refused with exit 2 and the command, without repeating the token.
@Suite struct TokenCLITests {
    @Test func aNewTokenGoesIntoThePermissionsFileAsItsHash() async throws {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try await FerryProcess.run(["token", "new", "--name", "analytics", "--json"], in: directory)
        #expect(made.status == 0, "\(made.stderr)")
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: String])
        let token = try #require(fields["token"])
        let hash = try #require(fields["token_sha256"])
        #expect(token.hasPrefix("ferry_") && hash.count == 64)
        try """
        users:
          - name: analytics
            token_sha256: \(hash)
            permissions:
              - table: sales.ventas
                access: read
                max_delete_rows: 10
        """.write(toFile: directory + "/permissions.yaml", atomically: true, encoding: .utf8)
        let checked = try await FerryProcess.run(["token", "check", "permissions.yaml"], in: directory)
        #expect(
            checked.status == 0 && checked.stdout.contains("analytics") && checked.stdout.contains("table sales.ventas read"),
            "\(checked.stdout)\(checked.stderr)")
        #expect(!checked.stdout.contains(token))

        try "users:\n  - name: old\n    token: the-plain-secret\n".write(toFile: directory + "/plain.yaml", atomically: true, encoding: .utf8)
        let refused = try await FerryProcess.run(["token", "check", "plain.yaml"], in: directory)
        #expect(refused.status == 2, "a configuration error: \(refused.stderr)")
        #expect(refused.stderr.contains("plaintext") && refused.stderr.contains("ferry token new --name old"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("the-plain-secret"))
        let badName = try await FerryProcess.run(["token", "new", "--name", "no spaces"], in: directory)
        #expect(badName.status != 0 && badName.stderr.contains("--name"), "\(badName.stderr)")
    }
}
