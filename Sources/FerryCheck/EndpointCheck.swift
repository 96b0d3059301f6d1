/// The outcome of trying one configured server.
public struct EndpointCheck: Sendable {
    public enum Status: String, Sendable, CaseIterable {
        case ok
        case unreachable
        case authenticationFailed = "authentication_failed"
        case databaseMissing = "database_missing"
        case permissionMissing = "permission_missing"
        case error
    }

    /// The key in the configuration (`postgres`, `redis`, `sources.erp`).
    public var name: String
    /// `postgresql`, `redis`, `sqlserver`.
    public var kind: String
    /// `host:port`.
    public var address: String
    public var status: Status
    /// Round trip of a trivial command once connected.
    public var latency: Duration?
    /// Server version and user on success; the problem otherwise.
    public var detail: String
    /// What to do, when something is wrong.
    public var fix: String?
    /// Problems that do not stop Ferry but deserve attention (e.g. Redis may evict keys).
    public var warnings: [String] = []

    public init(name: String, kind: String, address: String, status: Status, latency: Duration? = nil, detail: String, fix: String? = nil) {
        self.name = name
        self.kind = kind
        self.address = address
        self.status = status
        self.latency = latency
        self.detail = detail
        self.fix = fix
    }

    public var isOK: Bool { status == .ok }
}
