import Foundation

/// The body of the cluster API's operations (`POST /cluster/switchover`, `…/failover`, `…/rejoin/{node}`):
/// `{"to": "node2", "copy": true, "timeout_seconds": 60}`, every field optional. Parsed and range-checked here,
/// before anything acts on it; fuzzed by `Fuzz/` (FuzzClusterRequest).
package struct ClusterRequestBody: Decodable, Sendable, Equatable {
    package var to: String?
    package var copy: Bool?
    package var timeoutSeconds: Int?

    enum CodingKeys: String, CodingKey {
        case to, copy
        case timeoutSeconds = "timeout_seconds"
    }

    package init(to: String? = nil, copy: Bool? = nil, timeoutSeconds: Int? = nil) {
        self.to = to
        self.copy = copy
        self.timeoutSeconds = timeoutSeconds
    }

    /// The largest body read, and the longest timeout an operation takes (a day: a rejoin that copies a large node).
    package static let maximumBytes = 64 * 1024
    package static let maximumTimeout = 86_400

    /// The body from its bytes: empty means every default; anything that is not this JSON object, or names a node
    /// that cannot be one, is an `invalidInput` error saying what to send.
    package static func parse(_ bytes: some Collection<UInt8>) throws(FerryError) -> ClusterRequestBody {
        guard !bytes.isEmpty else { return ClusterRequestBody() }
        guard bytes.count <= maximumBytes else {
            throw FerryError(.tooLarge, "the request body is over \(maximumBytes / 1024) KiB", fix: "send the small JSON body this endpoint takes")
        }
        let body: ClusterRequestBody
        do {
            body = try JSONDecoder().decode(ClusterRequestBody.self, from: Data(bytes))
        } catch {
            throw FerryError(
                .invalidInput, "the request body is not the JSON this endpoint takes",
                fix: "send e.g. {\"to\": \"node2\", \"timeout_seconds\": 60}")
        }
        if let to = body.to {
            guard !to.isEmpty, to.utf8.count <= 63, to.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value < 0x7F }) else {
                throw FerryError(
                    .invalidInput, "\"to\" is not a node name (1 to 63 printable ASCII characters)",
                    fix: "name a node of `ferry cluster status`, e.g. {\"to\": \"node2\"}")
            }
        }
        return body
    }

    /// `timeout_seconds`, range-checked before it becomes a duration.
    package func timeout(default value: Int) throws(FerryError) -> Duration {
        guard let seconds = timeoutSeconds else { return .seconds(value) }
        guard (1...Self.maximumTimeout).contains(seconds) else {
            throw FerryError(
                .invalidInput, "timeout_seconds is \(seconds); it must be between 1 and \(Self.maximumTimeout)",
                fix: "send a timeout in seconds, e.g. {\"timeout_seconds\": 60}, or leave it out for the default (\(value))")
        }
        return .seconds(seconds)
    }
}
