import Crypto
import Foundation
import Testing

/// The generated sources (Sources/FerryAPIContract/Generated, Sources/FerryClient/Generated) belong to openapi.yaml
/// as it is: a spec changed without `make openapi` is a failure naming the command.
@Suite struct ContractTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theGeneratedCodeMatchesTheSpec() throws {
        let spec = try Data(contentsOf: Self.root.appendingPathComponent("openapi.yaml"))
        let digest = SHA256.hash(data: spec).map { String(format: "%02x", $0) }.joined()
        let recorded = try String(
            contentsOf: Self.root.appendingPathComponent("Sources/FerryAPIContract/Generated/openapi.yaml.sha256"), encoding: .utf8)
        #expect(recorded.trimmingCharacters(in: .whitespacesAndNewlines) == digest, "openapi.yaml changed: run `make openapi` and commit the result")
    }
}
