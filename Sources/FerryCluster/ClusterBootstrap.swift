import FerryBackup
package import FerryCore
import FerryPostgres
import Foundation
package import Logging
import PostgresNIO

/// `ferry cluster init` for a cluster defined in `ferry.yaml`: prepares the running primary so the agents can build
/// the standbys — the replication role, one physical slot per standby, and the settings replication and
/// `pg_rewind` need (through `ALTER SYSTEM`, so the server's own configuration files stay as they are).
package enum ClusterBootstrap {
    /// What `prepare` did and what is left to the operator.
    package struct Report: Sendable, Codable, Equatable {
        package var primary: String
        /// Each step, e.g. `created role ferry_replication`, `ALTER SYSTEM SET wal_log_hints = on`.
        package var actions: [String] = []
        /// Settings changed that take effect only after PostgreSQL restarts on the primary.
        package var restartNeeded: [String] = []
        /// Things Ferry cannot change for you (pg_hba.conf, listen_addresses, checksums).
        package var warnings: [String] = []
    }

    /// Settings every node needs, with the value Ferry sets when the server's differs. `max_wal_senders` and
    /// `max_replication_slots` are raised, never lowered.
    static func required(nodes: Int) -> [(name: String, value: String, minimum: Int?)] {
        [
            ("wal_level", "replica", nil),
            ("hot_standby", "on", nil),
            ("wal_log_hints", "on", nil),
            ("hot_standby_feedback", "on", nil),
            ("max_wal_senders", "\(nodes + 4)", nodes + 4),
            ("max_replication_slots", "\(nodes + 4)", nodes + 4),
            ("wal_keep_size", "256MB", nil),
            ("max_slot_wal_keep_size", "4GB", nil),
            ("wal_receiver_status_interval", "1s", nil),
            ("wal_sender_timeout", "10s", nil),
            ("wal_receiver_timeout", "10s", nil),
            ("wal_retrieve_retry_interval", "500ms", nil),
        ]
    }

    /// Finds the one primary among the nodes and prepares it. Fails, changing nothing, when no node answers as a
    /// primary or more than one does.
    package static func prepare(_ topology: ClusterTopology, logger: Logger) async throws(FerryError) -> Report {
        let status = await ClusterInspector.inspect(topology.nodes.map { ($0.name, $0.endpoint) }, logger: logger)
        let primaries = status.primaries
        guard let primaryStatus = primaries.first, let primary = topology.node(primaryStatus.name) else {
            let down = status.nodes.filter { $0.role == "down" }.map { "\($0.name) (\($0.address)): \($0.error ?? "unreachable")" }
            throw FerryError(
                .server,
                "no node of the cluster (\(topology.origin)) answers as a primary" + (down.isEmpty ? "" : "; " + down.joined(separator: "; ")),
                fix: "start PostgreSQL on the node that holds the data (usually the first one), then run `ferry cluster init` again")
        }
        guard primaries.count == 1 else {
            throw FerryError(
                .conflict, "\(primaries.count) nodes answer as primaries (\(primaries.map(\.name).joined(separator: ", ")))",
                fix: "keep one primary running; stop the others (their agents copy the primary into them)")
        }
        var report = Report(primary: primary.name)
        do {
            try await PostgresSession.using(primary.endpoint, key: "cluster.nodes.\(primary.name)", logger: logger) { session in
                try await session.withConnection { connection in
                    try await ensureRole(topology.replicationUser, password: topology.replicationPassword, connection, &report, logger: logger)
                    var archive: (repository: String, binary: String)?
                    if let repository = topology.archiveRepository, let binary = topology.archiveBinary { archive = (repository, binary) }
                    try await ensureSettings(nodes: topology.nodes.count, archive: archive, connection, &report, logger: logger)
                    for node in topology.nodes where node.name != primary.name {
                        let rows = try await connection.query(
                            """
                            SELECT count(*)::int8 FROM (SELECT pg_create_physical_replication_slot(\(node.name), true)
                            WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = \(node.name))) AS created
                            """, logger: logger)
                        for try await created in rows.decode(Int64.self) where created > 0 { report.actions.append("created slot \(node.name)") }
                    }
                    try await checkAccess(topology, primary: primary, connection, &report, logger: logger)
                }
            }
        } catch let error as FerryError {
            throw error
        } catch {
            throw FerryError(
                .server, "preparing \(primary.name) (\(primary.endpoint.host):\(primary.endpoint.port)) failed: \(PostgresDiagnosis.reason(error))",
                fix: "cluster.superuser must be a superuser of every node; check its name and password")
        }
        return report
    }

    /// Creates the replication role, or gives an existing one LOGIN REPLICATION and the configured password. The
    /// statement is built by the server's `format()` from bound values, so the password is never spliced into SQL
    /// here nor logged.
    static func ensureRole(
        _ user: String, password: String, _ connection: PostgresSessionConnection, _ report: inout Report, logger: Logger
    ) async throws {
        var exists = false
        for try await found in try await connection.query("SELECT count(*)::int8 FROM pg_roles WHERE rolname = \(user)", logger: logger).decode(
            Int64.self)
        {
            exists = found > 0
        }
        let verb = exists ? "ALTER" : "CREATE"
        var statement = ""
        let rows = try await connection.query(
            "SELECT format('\(unescaped: verb) ROLE %I WITH LOGIN REPLICATION PASSWORD %L', \(user)::text, \(password)::text)", logger: logger)
        for try await text in rows.decode(String.self) { statement = text }
        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        report.actions.append(exists ? "role \(user): LOGIN REPLICATION, password set" : "created role \(user) (LOGIN REPLICATION)")
    }

    /// `ALTER SYSTEM` for every required setting the server does not have, then a reload; settings that need a
    /// restart are reported. With `archive`, WAL archiving into that repository too (through `ferry wal push`); an
    /// `archive_command` that is not Ferry's is left as it is, with a warning.
    static func ensureSettings(
        nodes: Int, archive: (repository: String, binary: String)? = nil, _ connection: PostgresSessionConnection, _ report: inout Report,
        logger: Logger
    ) async throws {
        var current: [String: (setting: String, unit: String?)] = [:]
        let rows = try await connection.query("SELECT name, setting, unit FROM pg_settings", logger: logger)
        for try await (name, setting, unit) in rows.decode((String, String, String?).self) { current[name] = (setting, unit) }
        var changed = false
        if let archive {
            changed = try await ensureArchiving(archive, current: current, connection, &report, logger: logger)
        }
        for wanted in required(nodes: nodes) {
            guard let have = current[wanted.name] else { continue }
            if let minimum = wanted.minimum {
                if (Int(have.setting) ?? 0) >= minimum { continue }
            } else if matches(have.setting, unit: have.unit, wanted.value) {
                continue
            }
            // Names and values come from the fixed list above, never from input.
            try await connection.query(PostgresQuery(unsafeSQL: "ALTER SYSTEM SET \(wanted.name) = '\(wanted.value)'"), logger: logger)
            report.actions.append("ALTER SYSTEM SET \(wanted.name) = '\(wanted.value)'")
            changed = true
        }
        guard changed else { return }
        try await connection.query("SELECT pg_reload_conf()", logger: logger)
        // The reload is asynchronous: give the postmaster a moment before asking what it could not apply.
        try await Task.sleep(for: .milliseconds(300))
        let pending = try await connection.query("SELECT name FROM pg_settings WHERE pending_restart ORDER BY name", logger: logger)
        for try await name in pending.decode(String.self) { report.restartNeeded.append(name) }
    }

    /// The `archive_command` that archives into `repository` through `binary`.
    package static func archiveCommand(repository: String, binary: String) -> String {
        "\(shellWord(binary)) wal push %p --repository \(shellWord(repository))"
    }

    /// `text` as one word for the shell PostgreSQL runs archive_command with: as is when it has nothing the shell
    /// reads specially, else single-quoted.
    static func shellWord(_ text: String) -> String {
        let plain =
            !text.isEmpty
            && text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "/._-:+=@,".unicodeScalars.contains($0)) }
        return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `archive_mode = on` and Ferry's `archive_command`; returns whether anything changed.
    static func ensureArchiving(
        _ archive: (repository: String, binary: String), current: [String: (setting: String, unit: String?)],
        _ connection: PostgresSessionConnection, _ report: inout Report, logger: Logger
    ) async throws -> Bool {
        _ = try BackupRepositories.open(archive.repository)
        let wanted = archiveCommand(repository: archive.repository, binary: archive.binary)
        // pg_settings shows "(disabled)" while archive_mode is off: the configured command is read from the files.
        var command = current["archive_command"]?.setting ?? ""
        if command == "(disabled)" {
            command = ""
            let rows = try await connection.query(
                "SELECT setting FROM pg_file_settings WHERE name = 'archive_command' AND error IS NULL ORDER BY seqno DESC LIMIT 1", logger: logger)
            for try await setting in rows.decode(String?.self) { command = setting ?? "" }
        }
        if !command.isEmpty, command != wanted, !command.contains(" wal push ") {
            report.warnings.append(
                "archive_command is already '\(command)': Ferry leaves another tool's archiving alone; to archive into \(archive.repository), set it to '\(wanted)'"
            )
            return false
        }
        var changed = false
        if command != wanted {
            // The value is bound and quoted by the server's format(): a repository path is never spliced into SQL.
            var statement = ""
            let rows = try await connection.query("SELECT format('ALTER SYSTEM SET archive_command = %L', \(wanted)::text)", logger: logger)
            for try await text in rows.decode(String.self) { statement = text }
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            report.actions.append("ALTER SYSTEM SET archive_command = '\(wanted)'")
            changed = true
        }
        if let mode = current["archive_mode"]?.setting, mode == "off" {
            try await connection.query("ALTER SYSTEM SET archive_mode = 'on'", logger: logger)
            report.actions.append("ALTER SYSTEM SET archive_mode = 'on'")
            changed = true
        }
        if !FileManager.default.isExecutableFile(atPath: archive.binary) {
            report.warnings.append(
                "\(archive.binary) is not a program on this machine: archive_command runs it on every node; install ferry there or set cluster.ferry_binary"
            )
        }
        if archive.repository.hasPrefix("s3://") {
            report.warnings.append(
                "archive_command pushes to \(archive.repository): PostgreSQL's own environment on every node needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. a systemd drop-in), never postgresql.auto.conf"
            )
        }
        return changed
    }

    /// Whether the server's `setting` (in `unit`) is `wanted` (`on`, `replica`, `256MB`, `1s`…).
    static func matches(_ setting: String, unit: String?, _ wanted: String) -> Bool {
        if setting == wanted { return true }
        if wanted == "replica" { return setting == "logical" }
        guard let unit, let have = Double(setting), let want = quantity(wanted), let scale = quantity(unit) else { return false }
        return have * scale == want
    }

    /// `256MB` → bytes, `10s` → milliseconds; nil for anything else.
    static func quantity(_ text: String) -> Double? {
        let units: [(String, Double)] = [
            ("kB", 1024), ("MB", 1_048_576), ("GB", 1_073_741_824), ("TB", 1_099_511_627_776), ("ms", 1), ("s", 1000), ("min", 60_000),
            ("h", 3_600_000),
            ("B", 1),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // pg_settings gives "8kB" as the unit of some settings (WAL blocks).
            if let value = Double(number.isEmpty ? "1" : number) { return value * scale }
        }
        return nil
    }

    /// Warnings about what Ferry does not change: addresses PostgreSQL does not listen on, pg_hba.conf lines the
    /// standbys and `pg_rewind` need, data checksums.
    static func checkAccess(
        _ topology: ClusterTopology, primary: ClusterTopology.Node, _ connection: PostgresSessionConnection, _ report: inout Report, logger: Logger
    ) async throws {
        var listen = ""
        for try await value in try await connection.query("SELECT current_setting('listen_addresses')", logger: logger).decode(String.self) {
            listen = value
        }
        let remote = topology.nodes.contains { !["127.0.0.1", "localhost", "::1"].contains($0.endpoint.host) }
        if remote, listen == "localhost" || listen == "127.0.0.1" || listen.isEmpty {
            report.warnings.append(
                "listen_addresses is '\(listen)' on \(primary.name): the other nodes cannot connect; set it to '*' (or the node's address) and restart"
            )
        }
        var replicationRules = 0
        let rules = try await connection.query(
            """
            SELECT count(*)::int8 FROM pg_hba_file_rules
            WHERE error IS NULL AND 'replication' = ANY(database)
              AND ('all' = ANY(user_name) OR \(topology.replicationUser) = ANY(user_name))
            """, logger: logger)
        for try await count in rules.decode(Int64.self) { replicationRules = Int(count) }
        if replicationRules == 0 {
            report.warnings.append(
                "pg_hba.conf on \(primary.name) has no `replication` line for \(topology.replicationUser): add `host replication \(topology.replicationUser) <standby-network> scram-sha-256` on every node and reload"
            )
        }
        var checksums = ""
        for try await value in try await connection.query("SELECT current_setting('data_checksums')", logger: logger).decode(String.self) {
            checksums = value
        }
        if checksums != "on" {
            report.actions.append("data checksums are off: wal_log_hints lets pg_rewind work without them")
        }
    }
}
