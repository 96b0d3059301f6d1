package import AsyncHTTPClient
package import FerryCore
import Foundation
import NIOCore
import NIOHTTP1

/// A key's value in etcd with what the agent needs to reason about it.
package struct EtcdValue: Sendable, Equatable {
    package var value: String
    package var modRevision: Int64
    package var createRevision: Int64
    /// The lease the key is attached to (0: none); the key disappears when the lease expires.
    package var lease: Int64

    package init(value: String, modRevision: Int64, createRevision: Int64, lease: Int64) {
        self.value = value
        self.modRevision = modRevision
        self.createRevision = createRevision
        self.lease = lease
    }
}

/// etcd's v3 JSON API (the gRPC gateway) over HTTP: leases, reads, and the compare-and-set transactions the HA agent
/// builds its leader key on. Keys and values are text; the API's base64 and its int64-as-string fields stay inside.
///
/// Several endpoints may be given (the members of an etcd cluster); a request that cannot reach one tries the next.
package struct EtcdClient: Sendable {
    package let endpoints: [String]
    package let timeout: Duration
    let http: HTTPClient

    package init(endpoints: [String], timeout: Duration = .seconds(2), http: HTTPClient = .shared) {
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.timeout = timeout
        self.http = http
    }

    // MARK: Leases

    /// A new lease of `ttl` seconds; returns its id.
    package func grantLease(ttl: Int) async throws -> Int64 {
        struct Reply: Decodable {
            var id: String?
            enum CodingKeys: String, CodingKey { case id = "ID" }
        }
        let reply: Reply = try await call("/v3/lease/grant", ["TTL": "\(ttl)"])
        guard let id = reply.id.flatMap(Int64.init) else { throw unexpected("lease/grant") }
        return id
    }

    /// Renews `lease`; returns the seconds it now has, 0 when it had already expired.
    package func keepAlive(lease: Int64) async throws -> Int {
        struct Reply: Decodable {
            struct Result: Decodable {
                var ttl: String?
                enum CodingKeys: String, CodingKey { case ttl = "TTL" }
            }
            var result: Result?
        }
        let reply: Reply = try await call("/v3/lease/keepalive", ["ID": "\(lease)"])
        return reply.result?.ttl.flatMap(Int.init) ?? 0
    }

    /// Ends `lease` now: every key attached to it is deleted.
    package func revoke(lease: Int64) async throws {
        struct Reply: Decodable {}
        let _: Reply = try await call("/v3/lease/revoke", ["ID": "\(lease)"])
    }

    // MARK: Keys

    package func get(_ key: String) async throws -> EtcdValue? {
        try await range(key, prefix: false).first?.value
    }

    /// Every key under `prefix`, in key order.
    package func list(prefix: String) async throws -> [(key: String, value: EtcdValue)] {
        try await range(prefix, prefix: true)
    }

    /// Every key from `start` up to (not including) `end`, in key order.
    package func list(from start: String, to end: String) async throws -> [(key: String, value: EtcdValue)] {
        try await range(start, end: end)
    }

    private func range(_ key: String, prefix: Bool) async throws -> [(key: String, value: EtcdValue)] {
        try await range(key, end: prefix ? Self.prefixEnd(key) : nil)
    }

    private func range(_ key: String, end: String?) async throws -> [(key: String, value: EtcdValue)] {
        struct Reply: Decodable { var kvs: [KeyValue]? }
        var body = ["key": Self.encode(key)]
        if let end { body["range_end"] = Self.encode(end) }
        let reply: Reply = try await call("/v3/kv/range", body)
        return (reply.kvs ?? []).map { ($0.decodedKey, $0.record) }
    }

    package func put(_ key: String, value: String, lease: Int64? = nil) async throws {
        struct Reply: Decodable {}
        var body = ["key": Self.encode(key), "value": Self.encode(value)]
        if let lease { body["lease"] = "\(lease)" }
        let _: Reply = try await call("/v3/kv/put", body)
    }

    package func delete(_ key: String) async throws {
        struct Reply: Decodable {}
        let _: Reply = try await call("/v3/kv/deleterange", ["key": Self.encode(key)])
    }

    /// Creates `key` only if it does not exist (the leader race); true when this call created it.
    package func create(_ key: String, value: String, lease: Int64?) async throws -> Bool {
        try await transaction(
            compare: ["key": .string(Self.encode(key)), "target": .string("CREATE"), "create_revision": .string("0")],
            success: put(key, value, lease))
    }

    /// Replaces `key`'s value only while it is still `expected` (a renewal or a handover that must not overwrite
    /// someone else's leadership); true when it was replaced.
    package func replace(_ key: String, expected: String, with value: String, lease: Int64?) async throws -> Bool {
        try await transaction(
            compare: ["key": .string(Self.encode(key)), "target": .string("VALUE"), "value": .string(Self.encode(expected))],
            success: put(key, value, lease))
    }

    /// Deletes `key` only while its value is `expected`; true when it was deleted.
    package func delete(_ key: String, ifValue expected: String) async throws -> Bool {
        try await transaction(
            compare: ["key": .string(Self.encode(key)), "target": .string("VALUE"), "value": .string(Self.encode(expected))],
            success: ["request_delete_range": .object(["key": .string(Self.encode(key))])])
    }

    private func put(_ key: String, _ value: String, _ lease: Int64?) -> [String: JSONValue] {
        var put: [String: JSONValue] = ["key": .string(Self.encode(key)), "value": .string(Self.encode(value))]
        if let lease { put["lease"] = .string("\(lease)") }
        return ["request_put": .object(put)]
    }

    private func transaction(compare: [String: JSONValue], success: [String: JSONValue]) async throws -> Bool {
        struct Reply: Decodable { var succeeded: Bool? }
        let body: [String: JSONValue] = ["compare": .array([.object(compare)]), "success": .array([.object(success)])]
        let reply: Reply = try await call("/v3/kv/txn", body)
        return reply.succeeded ?? false
    }

    /// Watches every key under `prefix`, calling `changed` with the keys of each batch of events (an empty list
    /// when the watch is in place). Returns when etcd ends the stream; throws when it cannot be reached. Cancel the
    /// task to stop.
    package func watch(prefix: String, changed: @Sendable ([String]) -> Void) async throws {
        let body: [String: JSONValue] = [
            "create_request": .object(["key": .string(Self.encode(prefix)), "range_end": .string(Self.encode(Self.prefixEnd(prefix)))])
        ]
        let payload = try JSONEncoder().encode(body)
        var failures: [String] = []
        for endpoint in endpoints {
            var request = HTTPClientRequest(url: endpoint + "/v3/watch")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: payload))
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, deadline: .distantFuture)
            } catch {
                failures.append("\(Self.address(endpoint)): \(Self.describe(error))")
                continue
            }
            guard response.status == .ok else {
                throw FerryError(.server, "etcd at \(Self.address(endpoint)) refused /v3/watch: HTTP \(response.status.code)")
            }
            // The gateway writes one JSON message per line; a chunk may hold part of one, or several.
            var pending = [UInt8]()
            for try await chunk in response.body {
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Data(pending[..<newline])
                    pending.removeSubrange(...newline)
                    guard let message = try? JSONDecoder().decode(WatchMessage.self, from: line) else { continue }
                    changed((message.result?.events ?? []).map(\.kv.decodedKey))
                }
            }
            return
        }
        throw FerryError(
            .unreachable, "etcd is unreachable (\(failures.joined(separator: "; ")))",
            fix: "check that etcd runs and that the cluster's etcd endpoints are right")
    }

    struct WatchMessage: Decodable {
        struct Result: Decodable {
            struct Event: Decodable { var kv: KeyValue }
            var events: [Event]?
        }
        var result: Result?
    }

    /// Whether etcd answers `/health` as healthy (for `ferry check` and readiness).
    package func isHealthy() async -> Bool {
        for endpoint in endpoints {
            var request = HTTPClientRequest(url: endpoint + "/health")
            request.method = .GET
            guard let response = try? await http.execute(request, timeout: Self.timeAmount(timeout)),
                let body = try? await response.body.collect(upTo: 64 * 1024)
            else { continue }
            if response.status == .ok, String(buffer: body).contains("\"health\":\"true\"") { return true }
        }
        return false
    }

    /// One endpoint's server version (`GET /version`) and health (`GET /health`), for `ferry check`; throws an
    /// unreachable error naming the address otherwise.
    package func probe(_ endpoint: String) async throws(FerryError) -> (version: String, healthy: Bool) {
        func get(_ path: String) async throws(FerryError) -> String {
            var request = HTTPClientRequest(url: endpoint + path)
            request.method = .GET
            do {
                let response = try await http.execute(request, timeout: Self.timeAmount(timeout))
                return String(buffer: try await response.body.collect(upTo: 64 * 1024))
            } catch {
                throw FerryError(
                    .unreachable, "etcd at \(Self.address(endpoint)) is unreachable: \(Self.describe(error))",
                    fix: "check that etcd runs there and that cluster.etcd lists its client URL (http://host:2379)")
            }
        }
        let version = try await get("/version")
        guard let data = version.data(using: .utf8), let parsed = try? JSONDecoder().decode([String: String].self, from: data),
            let server = parsed["etcdserver"]
        else {
            throw FerryError(
                .protocolViolation, "\(Self.address(endpoint)) does not answer like etcd (GET /version)",
                fix: "point cluster.etcd at etcd's client URL (port 2379 by default)")
        }
        let health = (try? await get("/health")) ?? ""
        return (server, health.contains("\"health\":\"true\""))
    }

    // MARK: Transport

    private func call<Body: Encodable, Reply: Decodable>(_ path: String, _ body: Body) async throws -> Reply {
        let payload = try JSONEncoder().encode(body)
        var failures: [String] = []
        for endpoint in endpoints {
            var request = HTTPClientRequest(url: endpoint + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: payload))
            let response: HTTPClientResponse
            let data: ByteBuffer
            do {
                response = try await http.execute(request, timeout: Self.timeAmount(timeout))
                data = try await response.body.collect(upTo: 16 << 20)
            } catch {
                failures.append("\(Self.address(endpoint)): \(Self.describe(error))")
                continue
            }
            guard response.status == .ok else {
                let failure = try? JSONDecoder().decode(EtcdFailure.self, from: Data(data.readableBytesView))
                let reason = failure?.message ?? failure?.error ?? "HTTP \(response.status.code)"
                throw FerryError(
                    .server, "etcd at \(Self.address(endpoint)) refused \(path): \(reason)",
                    fix: "check etcd's log; Ferry needs etcd 3.4 or later with the v3 API")
            }
            guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(data.readableBytesView)) else { throw unexpected(path) }
            return reply
        }
        throw FerryError(
            .unreachable, "etcd is unreachable (\(failures.joined(separator: "; ")))",
            fix: "check that etcd runs and that the cluster's etcd endpoints are right")
    }

    private func unexpected(_ what: String) -> FerryError {
        FerryError(.protocolViolation, "etcd answered \(what) with something Ferry does not understand", fix: "Ferry needs etcd 3.4 or later")
    }

    /// A request timeout as NIO's `TimeAmount`, clamped to 0...1 hour: a duration from outside (an API body, a flag)
    /// must never overflow the nanosecond count.
    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return .zero }
        guard seconds < 3_600 else { return .hours(1) }
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    package static func address(_ endpoint: String) -> String {
        endpoint.replacingOccurrences(of: "http://", with: "").replacingOccurrences(of: "https://", with: "")
    }

    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connectTimeout") || text.contains("Connection refused") || text.contains("connect(descriptor") {
            return "connection refused or timed out"
        }
        if text.contains("deadlineExceeded") { return "no answer in time" }
        return text
    }

    static func encode(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// The smallest key after every key starting with `prefix` (etcd's `range_end` for a prefix).
    package static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\u{0}"
    }

    struct KeyValue: Decodable {
        var key: String
        var value: String?
        var modRevision: String?
        var createRevision: String?
        var lease: String?

        enum CodingKeys: String, CodingKey {
            case key, value, lease
            case modRevision = "mod_revision"
            case createRevision = "create_revision"
        }

        var decodedKey: String { Data(base64Encoded: key).map { String(decoding: $0, as: UTF8.self) } ?? key }
        var decodedValue: String { value.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? "" }

        var record: EtcdValue {
            EtcdValue(
                value: decodedValue, modRevision: modRevision.flatMap(Int64.init) ?? 0, createRevision: createRevision.flatMap(Int64.init) ?? 0,
                lease: lease.flatMap(Int64.init) ?? 0)
        }
    }
}

/// etcd's error body.
struct EtcdFailure: Decodable {
    var error: String?
    var message: String?
}

/// A JSON value for request bodies.
enum JSONValue: Encodable {
    case string(String)
    case object([String: JSONValue])
    case array([JSONValue])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .object(let object): try container.encode(object)
        case .array(let array): try container.encode(array)
        }
    }
}
