package import FerryPostgresNode

/// Drives one node's PostgreSQL for its agent (a ``LocalCluster``'s, or a defined cluster's data directory): `pg_ctl` to start, stop and fence, `pg_promote`,
/// `primary_conninfo` rewritten and reloaded to follow, `pg_rewind` or `pg_basebackup` to rejoin.
package struct LocalNodeController: NodeController {
    package let instance: PostgresInstance
    package let replicationUser: String
    package let replicationPassword: String

    package init(instance: PostgresInstance, cluster: LocalCluster) {
        self.init(instance: instance, replicationUser: cluster.replicationUser, replicationPassword: cluster.replicationPassword)
    }

    package init(instance: PostgresInstance, replicationUser: String, replicationPassword: String) {
        self.instance = instance
        self.replicationUser = replicationUser
        self.replicationPassword = replicationPassword
    }

    package var dataDirectory: String { instance.dataDirectory }
    package var isRunning: Bool { instance.isRunning }
    package var startsAsStandby: Bool { instance.hasStandbySignal }

    package func start() async throws { try await instance.start() }

    package func promote() async throws {
        _ = try await instance.psql("SELECT pg_promote(true, 30)")
    }

    package func follow(host: String, port: Int, slot: String) async throws {
        try configureStandby(host: host, port: port, slot: slot)
        _ = try await instance.psql("SELECT pg_reload_conf()")
    }

    package func configureStandby(host: String, port: Int, slot: String) throws {
        try instance.configureStandby(host: host, port: port, user: replicationUser, password: replicationPassword, slot: slot)
    }

    package func rewind(host: String, port: Int) async throws -> String {
        // pg_rewind reads the source's files through SQL functions only a superuser may call: every node of a local
        // cluster shares the template's superuser.
        try await instance.rewind(host: host, port: port, user: instance.user, password: instance.password)
    }

    package func copy(host: String, port: Int, slot: String) async throws {
        try await instance.copyFrom(host: host, port: port, user: replicationUser, password: replicationPassword, slot: slot)
    }

    package func controlData() async -> (checkpoint: UInt64, timeline: Int)? { await instance.controlData() }

    package func fence() async { await instance.stopImmediately() }

    package func shutdown() async { await instance.stop() }
}
