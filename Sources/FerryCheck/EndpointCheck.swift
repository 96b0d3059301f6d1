/// The outcome of trying one configured server.
package struct EndpointCheck: Sendable {
    package enum Status: String, Sendable, CaseIterable {
        case ok
        case unreachable
        case authenticationFailed = "authentication_failed"
        case databaseMissing = "database_missing"
        case permissionMissing = "permission_missing"
        /// A protected mirror that roles other than Ferry's can write.
        case mirrorWritable = "mirror_writable"
        case error
    }

    /// The key in the configuration (`postgres`, `redis`, `sources.erp`).
    package var name: String
    /// `postgresql`, `redis`, `sqlserver`.
    package var kind: String
    /// `host:port`.
    package var address: String
    package var status: Status
    /// Round trip of a trivial command once connected.
    package var latency: Duration?
    /// Server version and user on success; the problem otherwise.
    package var detail: String
    /// What to do, when something is wrong.
    package var fix: String?
    /// Problems that do not stop Ferry but deserve attention (e.g. Redis may evict keys).
    package var warnings: [String] = []

    package init(name: String, kind: String, address: String, status: Status, latency: Duration? = nil, detail: String, fix: String? = nil) {
        self.name = name
        self.kind = kind
        self.address = address
        self.status = status
        self.latency = latency
        self.detail = detail
        self.fix = fix
    }

    package var isOK: Bool { status == .ok }
}
