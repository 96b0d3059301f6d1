package import FerryCore
import FerryPostgres
package import Logging
import PostgresNIO

/// The server side of a base backup: `pg_backup_start` and `pg_backup_stop` in one session held open between them.
package protocol BackupServer: Sendable {
    func start(label: String) async throws(FerryError) -> BackupStart
    func stop() async throws(FerryError) -> BackupStop
}

package struct BackupStart: Sendable, Equatable {
    package var lsn: String
    package var inRecovery: Bool
    package var serverVersion: Int
    package var walSegmentSize: Int
    package var archiveMode: String
    package var archiveCommand: String

    package init(lsn: String, inRecovery: Bool, serverVersion: Int, walSegmentSize: Int, archiveMode: String, archiveCommand: String) {
        self.lsn = lsn
        self.inRecovery = inRecovery
        self.serverVersion = serverVersion
        self.walSegmentSize = walSegmentSize
        self.archiveMode = archiveMode
        self.archiveCommand = archiveCommand
    }
}

package struct BackupStop: Sendable, Equatable {
    package var lsn: String
    package var label: String
    package var tablespaceMap: String?

    package init(lsn: String, label: String, tablespaceMap: String?) {
        self.lsn = lsn
        self.label = label
        self.tablespaceMap = tablespaceMap
    }
}

/// A PostgreSQL 15+ server (primary or standby) over Ferry's session.
package final class PostgresBackupServer: BackupServer {
    private let session: PostgresSession
    private let logger: Logger

    package init(endpoint: PostgresEndpoint, logger: Logger) {
        self.session = PostgresSession(endpoint: endpoint, key: "postgres", logger: logger)
        self.logger = logger
    }

    package func start(label: String) async throws(FerryError) -> BackupStart {
        do {
            return try await session.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT current_setting('server_version_num')::int, pg_is_in_recovery(),
                           (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
                           current_setting('archive_mode'), current_setting('archive_command')
                    """, logger: logger)
                var start = BackupStart(lsn: "", inRecovery: false, serverVersion: 0, walSegmentSize: 0, archiveMode: "", archiveCommand: "")
                for try await (version, recovery, segment, mode, command) in rows.decode((Int32, Bool, Int64, String, String).self) {
                    start = BackupStart(
                        lsn: "", inRecovery: recovery, serverVersion: Int(version), walSegmentSize: Int(segment), archiveMode: mode,
                        archiveCommand: command)
                }
                guard start.serverVersion >= 150000 else {
                    throw FerryError(
                        .unsupported, "the server runs PostgreSQL \(start.serverVersion / 10000); Ferry's backups need 15 or newer",
                        fix: "upgrade the server, or back it up with pg_basebackup")
                }
                // A checkpoint at once (`fast`): the backup starts now rather than at the next scheduled checkpoint.
                let started = try await connection.query("SELECT pg_backup_start(\(label), true)::text", logger: logger)
                for try await lsn in started.decode(String.self) { start.lsn = lsn }
                return start
            }
        } catch {
            throw Self.diagnosed(error, doing: "start the backup (pg_backup_start)", endpoint: session.endpoint)
        }
    }

    package func stop() async throws(FerryError) -> BackupStop {
        do {
            defer { Task { [session] in await session.close() } }
            return try await session.withConnection { connection in
                // Ferry waits for the archive itself, with a deadline (pg_backup_stop's own wait has none).
                let rows = try await connection.query("SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)", logger: logger)
                for try await (lsn, label, map) in rows.decode((String, String, String?).self) {
                    return BackupStop(lsn: lsn, label: label, tablespaceMap: map)
                }
                throw FerryError(.server, "pg_backup_stop returned no row")
            }
        } catch {
            throw Self.diagnosed(error, doing: "stop the backup (pg_backup_stop)", endpoint: session.endpoint)
        }
    }

    package func close() async { await session.close() }

    static func diagnosed(_ error: any Error, doing action: String, endpoint: PostgresEndpoint) -> FerryError {
        if let ferry = error as? FerryError { return ferry }
        let described = PostgresDiagnosis.reason(error)
        var failure = FerryError(.server, "cannot \(action) on \(endpoint.host):\(endpoint.port): \(described)")
        if described.contains("permission denied") || described.contains("must be superuser") {
            failure.code = .permission
            failure.fix =
                "connect as a superuser, or GRANT EXECUTE ON FUNCTION pg_backup_start, pg_backup_stop TO the backup user, and run ferry where it can read the data directory"
        } else {
            failure.fix = "check that the server is up and reachable (ferry check), and that --host/--port/--user name it"
        }
        return failure
    }
}
