public import FerrySandbox

/// Drives one node of a ``LocalCluster`` for its agent: promote with `pg_promote`, follow by rewriting
/// `primary_conninfo` and reloading, fence with an immediate stop.
public struct LocalNodeController: NodeController {
    public let instance: PostgresInstance
    public let replicationUser: String
    public let replicationPassword: String

    public init(instance: PostgresInstance, cluster: LocalCluster) {
        self.instance = instance
        replicationUser = cluster.replicationUser
        replicationPassword = cluster.replicationPassword
    }

    public func promote() async throws {
        _ = try await instance.psql("SELECT pg_promote(true, 30)")
    }

    public func follow(host: String, port: Int, slot: String) async throws {
        try instance.updateSettings([
            "primary_conninfo": "'host=\(host) port=\(port) user=\(replicationUser) password=\(replicationPassword) application_name=\(slot)'",
            "primary_slot_name": "'\(slot)'",
        ])
        _ = try await instance.psql("SELECT pg_reload_conf()")
    }

    public func fence() async {
        await instance.stopImmediately()
    }

    public func shutdown() async {
        await instance.stop()
    }
}
