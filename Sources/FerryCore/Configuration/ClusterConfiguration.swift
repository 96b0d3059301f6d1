/// The HA cluster: a local one built by `ferry cluster init --local` (`directory`), or one defined node by node
/// here (`nodes`, with `etcd` and the credentials), whose agents run beside each PostgreSQL (`ferry agent --config
/// … --node NAME`, or `ferry run` with `node`). `ferry run` also serves the control API when `api_token` is set.
package struct ClusterConfiguration: Sendable {
    /// One node of a defined cluster.
    package struct Node: Sendable, Equatable {
        package var name: String
        /// How the other nodes and Ferry reach its PostgreSQL.
        package var host: String
        package var port: Int = 5432
        /// Its data directory (needed on the host whose agent runs it); an empty or missing one is filled with a
        /// copy of the primary when the agent first starts.
        package var dataDirectory: String?
        /// Its configuration files, when they live apart from the data (Debian's `/etc/postgresql/15/main`, whose
        /// `postgresql.conf` sets `data_directory`).
        package var configDirectory: String?
        /// PostgreSQL's programs (default: found like the sandbox's, `FERRY_PG_BINDIR` or /usr/lib/postgresql/*/bin).
        package var binDirectory: String?

        package init(name: String, host: String) {
            self.name = name
            self.host = host
        }
    }

    /// A user name and password.
    package struct Credentials: Sendable, Equatable {
        package var user: String
        package var password: Secret?
    }

    /// A cluster built by `ferry cluster init --local` (its nodes, etcd and scope are read from `cluster.json`
    /// there). Default `.ferry/cluster`. Ignored when `nodes` are listed.
    package var directory: String = ".ferry/cluster"
    /// The node whose agent `ferry run` runs beside the API; none: the API only (agents run as `ferry agent`).
    package var node: String?
    /// Bearer token the control API requires on every `/cluster` request; without one the API is off.
    package var apiToken: Secret?

    /// A defined cluster's nodes.
    package var nodes: [Node] = []
    /// The agents' key prefix in etcd: `/ferry/<scope>/`. Default `ferry`.
    package var scope = "ferry"
    /// etcd's client URLs (v3 API).
    package var etcd: [String] = []
    /// The role standbys stream with (`ferry cluster init` creates it).
    package var replication: Credentials?
    /// The role the agents, `pg_rewind` and the commands use on every node.
    package var superuser: Credentials?
    /// Where each agent keeps its pid, the watchdog's state and PostgreSQL's start log. Default `.ferry/cluster-state`.
    package var stateDirectory = ".ferry/cluster-state"
    /// Seconds of the leader lease. Default 3.
    package var ttl = 3
    /// Synchronous replication: commits wait for this many standbys (0, the default: asynchronous).
    package var synchronous = 0
    /// In synchronous mode, keep commits waiting while no standby streams. Default false.
    package var synchronousStrict = false
    /// The backup repository every node archives its WAL into (`archive_command = 'ferry wal push %p …'`, set by
    /// `ferry cluster init`). Default: `backup.repository` when ferry.yaml has a `backup:` section.
    package var archiveRepository: String?
    /// The `ferry` program PostgreSQL's archive_command runs on every node (default: the one running `ferry cluster
    /// init`); PostgreSQL's account must be able to run it.
    package var ferryBinary: String?

    package init() {}

    /// Whether the nodes are listed here rather than in a local cluster's directory.
    package var isDefined: Bool { !nodes.isEmpty }
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
        if let scope = reader.string("scope") { cluster.scope = scope }
        cluster.etcd = reader.strings("etcd") ?? []
        if let state = reader.string("state_directory") { cluster.stateDirectory = state }
        if let ttl = reader.int("ttl", range: 1...60, fix: "use a lease of 1 to 60 seconds (3 is the default)") { cluster.ttl = ttl }
        if let count = reader.int("synchronous", range: 0...16) { cluster.synchronous = count }
        if let strict = reader.bool("synchronous_strict") { cluster.synchronousStrict = strict }
        cluster.archiveRepository = reader.string("archive_repository")
        cluster.ferryBinary = reader.string("ferry_binary")
        if let binary = cluster.ferryBinary, !binary.hasPrefix("/") {
            reader.issues.add(
                reader.keyPath("ferry_binary"), "\"\(PrintableText.escaped(binary))\" is not an absolute path",
                fix: "give the full path PostgreSQL runs it by, e.g. /usr/local/bin/ferry", origin: reader.origin("ferry_binary"))
        }
        for (key, path) in [("replication", \ClusterConfiguration.replication), ("superuser", \ClusterConfiguration.superuser)] {
            let section = reader.section(key)
            guard section.isPresent else { continue }
            if let user = section.string("user", required: "name the role, e.g. `user: \(key == "replication" ? "replicator" : "postgres")`") {
                cluster[keyPath: path] = Credentials(user: user, password: section.secret("password"))
            }
            section.finish()
        }
        var names: Set<String> = []
        for nodeReader in reader.sections("nodes") {
            guard let name = nodeReader.string("name", required: "name the node, e.g. `name: node1`"),
                let host = nodeReader.string("host", required: "give the address other nodes reach it at, e.g. `host: 10.0.0.11`")
            else {
                nodeReader.finish()
                continue
            }
            if !name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }) || name.first?.isNumber == true {
                nodeReader.issues.add(
                    nodeReader.keyPath("name"), "\"\(name)\" cannot name a replication slot",
                    fix: "use lowercase letters, digits and `_`, e.g. node1",
                    origin: nodeReader.origin("name"))
            }
            if !names.insert(name).inserted {
                nodeReader.issues.add(nodeReader.keyPath("name"), "\"\(name)\" names two nodes", fix: "give every node its own name")
            }
            var node = Node(name: name, host: host)
            if let port = nodeReader.int("port", range: 1...65535) { node.port = port }
            node.dataDirectory = nodeReader.string("data_directory")
            node.binDirectory = nodeReader.string("bin_directory")
            node.configDirectory = nodeReader.string("config_directory")
            nodeReader.finish()
            cluster.nodes.append(node)
        }
        if cluster.isDefined {
            if cluster.etcd.isEmpty {
                reader.issues.add(reader.keyPath("etcd"), "missing", fix: "list etcd's client URLs, e.g. `etcd: [http://10.0.0.5:2379]`")
            }
            if cluster.replication == nil {
                reader.issues.add(
                    reader.keyPath("replication"), "missing",
                    fix: "name the role standbys stream with: `replication: {user: replicator, password: ...}`")
            }
            if cluster.superuser == nil {
                reader.issues.add(
                    reader.keyPath("superuser"), "missing", fix: "name the superuser the agents use: `superuser: {user: postgres, password: ...}`")
            }
            if let node = cluster.node, !names.contains(node) {
                reader.issues.add(
                    reader.keyPath("node"), "\"\(node)\" is not one of the nodes",
                    fix: "use one of: \(cluster.nodes.map(\.name).joined(separator: ", "))")
            }
        }
        reader.finish()
        return cluster
    }
}
