/// The HA cluster `ferry run` serves: the control API (`/cluster…`), and optionally one node's agent.
public struct ClusterConfiguration: Sendable {
    /// A cluster built by `ferry cluster init --local` (its nodes, etcd and scope are read from `cluster.json`
    /// there). Default `.ferry/cluster`.
    public var directory: String = ".ferry/cluster"
    /// The node whose agent `ferry run` runs beside the API; none: the API only (agents run as `ferry agent`).
    public var node: String?
    /// Bearer token the control API requires on every `/cluster` request; without one the API is off.
    public var apiToken: Secret?

    public init() {}
}

extension ClusterConfiguration {
    static func read(_ reader: ConfigReader) -> ClusterConfiguration {
        var cluster = ClusterConfiguration()
        if let directory = reader.string("directory") { cluster.directory = directory }
        cluster.node = reader.string("node")
        cluster.apiToken = reader.secret("api_token")
        if let token = cluster.apiToken, token.value.count < 16 {
            reader.issues.add(
                reader.keyPath("api_token"), "is shorter than 16 characters", fix: "use a long random token, e.g. `openssl rand -hex 24`",
                origin: reader.origin("api_token"))
        }
        reader.finish()
        return cluster
    }
}
