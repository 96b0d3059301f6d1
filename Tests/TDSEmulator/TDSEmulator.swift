package import Logging
import NIOCore
import NIOPosix
import NIOSSL
package import PostgresNIO

/// A SQL Server as far as a TDS client can tell: it speaks TDS 7.2–7.4 on a loopback port and answers from a real
/// PostgreSQL database. SQL Server itself cannot run on these machines; the emulator lets the SQL Server connector be
/// tested end to end, and FreeTDS's `tsql` and python-tds check that it follows the protocol, not one client.
///
/// What it covers is in `TSQLTranslator` (the T-SQL subset) and `TDSColumn` (the types). Logins are checked against
/// `Configuration.logins`; the database named at login must be `Configuration.database`.
package final class TDSEmulator: Sendable {
    package struct Configuration: Sendable {
        /// Where the tables live: each TDS session opens its own connection with these settings.
        package var postgres: PostgresConnection.Configuration
        /// The database name clients log in to.
        package var database: String
        /// Login name → password.
        package var logins: [String: String]
        package var serverName = "FERRY-TDS-EMULATOR"
        /// PEM files of a certificate and its key: the emulator then forces encryption (TLS for the whole session), as
        /// a SQL Server with "Force Encryption" on. nil: it answers "encryption not supported".
        package var tls: (certificate: String, key: String)?
        /// With `tls`: encryption as a SQL Server with a certificate but without "Force Encryption" offers it — a client
        /// that does not ask for it gets the login alone encrypted (TLS dropped after LOGIN7), one that asks gets the
        /// whole session, one without TLS gets none.
        package var loginOnlyEncryption = false
        /// Each session's task runs on its connection's event loop, so rows go from PostgreSQL to the client without
        /// changing threads (cheaper: for `ferry bench`, where the emulator has a process of its own). Off, sessions
        /// run on Swift's task pool and the emulator's few loop threads only move bytes, which keeps many sessions at
        /// once responsive (the tests).
        package var sessionsOnEventLoops = false
        /// Answers a query that was served before from memory (see ``TDSResultCache``): for `ferry bench`'s client
        /// comparison only, never for the tests.
        package var resultCache: TDSResultCache?

        package init(postgres: PostgresConnection.Configuration, database: String, logins: [String: String]) {
            self.postgres = postgres
            self.database = database
            self.logins = logins
        }
    }

    package let port: Int
    /// What it was started with (to start it again on the same port).
    package let configuration: Configuration
    private let serverChannel: any Channel
    private let accepting: Task<Void, Never>

    private init(port: Int, configuration: Configuration, serverChannel: any Channel, accepting: Task<Void, Never>) {
        self.port = port
        self.configuration = configuration
        self.serverChannel = serverChannel
        self.accepting = accepting
    }

    /// Listens on 127.0.0.1 (a free port unless `port` is given) and serves until `close()`.
    package static func start(_ configuration: Configuration, port: Int = 0, logger: Logger) async throws -> TDSEmulator {
        try await installCatalog(configuration, logger: logger)
        let encryption = try configuration.tls.map { tls in
            var settings = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem)))
            // TDS 7 wraps a TLS 1.2 handshake in its packets (TLS 1.3 came with TDS 8, which clients ask for otherwise).
            settings.maximumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: settings)
        }
        let server = try await ServerBootstrap(group: Self.eventLoops)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let encryption {
                        try channel.pipeline.syncOperations.addHandler(
                            TDSPreLoginEncryptionHandler(context: encryption, forced: !configuration.loginOnlyEncryption))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(TDSMessageDecoder()))
                    return try NIOAsyncChannel<TDSMessage, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let boundPort = server.channel.localAddress?.port ?? port
        let accepting = Task {
            await withDiscardingTaskGroup { group in
                do {
                    try await server.executeThenClose { connections in
                        for try await connection in connections {
                            let loop = connection.channel.eventLoop
                            group.addTask(executorPreference: configuration.sessionsOnEventLoops ? LoopExecutor(loop) : nil) {
                                var sessionLogger = logger
                                sessionLogger[metadataKey: "tds.client"] = "\(connection.channel.remoteAddress?.description ?? "?")"
                                var session = TDSSession(configuration: configuration, logger: sessionLogger, eventLoop: loop)
                                await session.run(connection)
                            }
                        }
                    }
                } catch {
                    logger.debug("TDS emulator stopped accepting: \(error)")
                }
                group.cancelAll()
            }
        }
        return TDSEmulator(port: boundPort, configuration: configuration, serverChannel: server.channel, accepting: accepting)
    }

    /// The emulator's own event loops, shared by every emulator in the process: its sessions run on them (with their
    /// PostgreSQL connections), and a session encoding rows must not hold up the loops of the Ferry code under test.
    static let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// The parts of SQL Server's catalog Ferry reads, as a `sys` schema in the PostgreSQL database: `OBJECT_ID(name)`
    /// (a name written `[schema].[name]`, `dbo.` being the session's own schema) and `sys.partitions` (a table's row
    /// count as PostgreSQL estimates it; none for a table never analysed, as for a view).
    static func installCatalog(_ configuration: Configuration, logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(configuration: configuration.postgres, id: 0, logger: logger)
        do {
            try await connection.query("BEGIN", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(7305)", logger: logger)
            try await connection.query("CREATE SCHEMA IF NOT EXISTS sys", logger: logger)
            try await connection.query(
                #"""
                CREATE OR REPLACE FUNCTION sys.object_id(name text) RETURNS oid LANGUAGE sql STABLE AS $$
                  SELECT to_regclass(regexp_replace(regexp_replace(name, '^(\[dbo\]|dbo)\.', '', 'i'), '[\[\]]', '"', 'g'))::oid $$
                """#, logger: logger)
            // Every write commits at once here: no row version is held by an open transaction.
            try await connection.query(
                #"CREATE OR REPLACE FUNCTION sys.min_active_rowversion() RETURNS bytea LANGUAGE sql IMMUTABLE AS $$ SELECT '\xffffffffffffffff'::bytea $$"#,
                logger: logger)
            // COLLATIONPROPERTY(name, 'CodePage'): the emulator's 8-bit text is Latin-1 (code page 1252), or UTF-8.
            try await connection.query(
                """
                CREATE OR REPLACE FUNCTION sys.collationproperty(name text, property text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
                  SELECT CASE WHEN name IS NULL OR lower(property) <> 'codepage' THEN NULL WHEN name ILIKE '%utf8%' THEN 65001 ELSE 1252 END $$
                """, logger: logger)
            try await connection.query(
                """
                CREATE OR REPLACE VIEW sys.partitions AS
                  SELECT c.oid AS object_id, 1 AS index_id, CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS rows
                  FROM pg_class c WHERE c.relkind IN ('r', 'p')
                """, logger: logger)
            for statement in changeTrackingCatalog {
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                } catch let error as PSQLError {
                    logger.error("installing the catalog: \(error.serverInfo?[.message] ?? "?") in \(statement.prefix(80))")
                    throw error
                }
            }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// SQL Server's Change Tracking, as PostgreSQL functions in the `sys` schema. `SELECT sys.enable_change_tracking('t')`
    /// is `ALTER TABLE t ENABLE CHANGE_TRACKING`: a log table `"ct log of t"` beside `t` (the primary key, the version
    /// of the key's last change, the version that created it, the last operation) kept by a trigger, and beside it too
    /// the functions the translator turns `CHANGETABLE(CHANGES t, v)` and `CHANGETABLE(VERSION t, (keys), (values))`
    /// into (found through the session's search path, as `t` is). A transaction's
    /// changes share one version, taken from a clock row it keeps locked until it ends, so versions follow commit order
    /// as SQL Server's do. `sys.change_tracking_cleanup('t', v)` forgets the changes up to `v`, as retention does.
    static let changeTrackingCatalog = [
        "CREATE TABLE IF NOT EXISTS sys.change_tracking_clock (version bigint NOT NULL)",
        "INSERT INTO sys.change_tracking_clock SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sys.change_tracking_clock)",
        """
        CREATE TABLE IF NOT EXISTS sys.change_tracking_tables (
          object_id oid PRIMARY KEY, log text NOT NULL, min_valid_version bigint NOT NULL)
        """,
        """
        CREATE OR REPLACE FUNCTION sys.change_tracking_current_version() RETURNS bigint LANGUAGE sql STABLE AS $$
          SELECT version FROM sys.change_tracking_clock $$
        """,
        """
        CREATE OR REPLACE FUNCTION sys.change_tracking_min_valid_version(object oid) RETURNS bigint LANGUAGE sql STABLE AS $$
          SELECT min_valid_version FROM sys.change_tracking_tables WHERE object_id = object $$
        """,
        """
        CREATE OR REPLACE FUNCTION sys.change_tracking_next_version() RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
          held text := current_setting('ferry.ct_version', true);
          mine text := txid_current()::text;
          taken bigint;
        BEGIN
          IF held IS NOT NULL AND split_part(held, ':', 1) = mine THEN RETURN split_part(held, ':', 2)::bigint; END IF;
          UPDATE sys.change_tracking_clock SET version = version + 1 RETURNING version INTO taken;
          PERFORM set_config('ferry.ct_version', mine || ':' || taken, true);
          RETURN taken;
        END $$
        """,
        """
        CREATE OR REPLACE FUNCTION sys.change_tracking_record() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          log text := TG_ARGV[0];
          keys text[] := TG_ARGV[1]::text[];
          version bigint := sys.change_tracking_next_version();
          key_list text := (SELECT string_agg(format('%I', k), ', ') FROM unnest(keys) AS k);
          from_row text := (SELECT string_agg(format('r.%I', k), ', ') FROM unnest(keys) AS k);
          upsert text;
        BEGIN
          upsert := format(
            'INSERT INTO %s AS l (%s, ferry_version, ferry_created, ferry_op) SELECT %s, $2, $2, $3 FROM (SELECT ($1).*) AS r '
            || 'ON CONFLICT (%s) DO UPDATE SET ferry_version = EXCLUDED.ferry_version, '
            || 'ferry_created = CASE WHEN l.ferry_op = ''D'' THEN EXCLUDED.ferry_created ELSE l.ferry_created END, '
            || 'ferry_op = CASE WHEN EXCLUDED.ferry_op = ''D'' THEN ''D'' WHEN l.ferry_op = ''D'' THEN ''I'' ELSE ''U'' END',
            log, key_list, from_row, key_list);
          IF TG_OP = 'DELETE' THEN
            EXECUTE upsert USING OLD, version, 'D';
          ELSIF TG_OP = 'INSERT' THEN
            EXECUTE upsert USING NEW, version, 'I';
          ELSIF EXISTS (SELECT 1 FROM unnest(keys) AS k WHERE to_jsonb(OLD) -> k IS DISTINCT FROM to_jsonb(NEW) -> k) THEN
            EXECUTE upsert USING OLD, version, 'D';
            EXECUTE upsert USING NEW, version, 'I';
          ELSE
            EXECUTE upsert USING NEW, version, 'U';
          END IF;
          RETURN NULL;
        END $$
        """,
        """
        CREATE OR REPLACE FUNCTION sys.enable_change_tracking(tbl regclass) RETURNS void LANGUAGE plpgsql AS $f$
        DECLARE
          rel text := (SELECT relname FROM pg_class WHERE oid = tbl);
          space text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl);
          keys text[];
          key_definitions text;
          key_types text;
          key_list text;
          log text;
          matches text;
        BEGIN
          SELECT array_agg(a.attname::text ORDER BY k.ord),
                 string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY k.ord),
                 string_agg(format_type(a.atttypid, a.atttypmod), ', ' ORDER BY k.ord),
                 string_agg(format('l.%I = $%s', a.attname, k.ord), ' AND ' ORDER BY k.ord)
            INTO keys, key_definitions, key_types, matches
            FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = tbl AND i.indisprimary;
          IF keys IS NULL THEN
            RAISE EXCEPTION 'Cannot enable change tracking on table ''%''. Change tracking requires a primary key on the table.', rel;
          END IF;
          key_list := (SELECT string_agg(format('%I', k), ', ') FROM unnest(keys) AS k);
          log := format('%I.%I', space, 'ct log of ' || rel);
          EXECUTE format(
            'CREATE TABLE %s (%s, ferry_version bigint NOT NULL, ferry_created bigint NOT NULL, ferry_op char(1) NOT NULL, PRIMARY KEY (%s))',
            log, key_definitions, key_list);
          EXECUTE format(
            'CREATE TRIGGER ferry_change_tracking AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION sys.change_tracking_record(%L, %L)',
            tbl, log, keys);
          EXECUTE format(
            'CREATE FUNCTION %I.%I(since bigint) RETURNS TABLE ("SYS_CHANGE_VERSION" bigint, "SYS_CHANGE_CREATION_VERSION" bigint, '
            || '"SYS_CHANGE_OPERATION" char(1), "SYS_CHANGE_COLUMNS" bytea, "SYS_CHANGE_CONTEXT" bytea, %s) LANGUAGE sql STABLE AS %L',
            space, 'changes of ' || rel, key_definitions,
            format('SELECT l.ferry_version, l.ferry_created, CASE WHEN l.ferry_op = ''D'' THEN ''D'' WHEN $1 IS NULL OR l.ferry_created > $1 '
              || 'THEN ''I'' ELSE ''U'' END::char(1), NULL::bytea, NULL::bytea, %s FROM %s AS l WHERE $1 IS NULL OR l.ferry_version > $1',
              (SELECT string_agg(format('l.%I', k), ', ') FROM unnest(keys) AS k), log));
          EXECUTE format(
            'CREATE FUNCTION %I.%I(%s) RETURNS TABLE ("SYS_CHANGE_VERSION" bigint, "SYS_CHANGE_CONTEXT" bytea) LANGUAGE sql STABLE AS %L',
            space, 'version of ' || rel, key_types,
            format('SELECT (SELECT l.ferry_version FROM %s AS l WHERE %s AND l.ferry_op <> ''D''), NULL::bytea', log, matches));
          INSERT INTO sys.change_tracking_tables VALUES (tbl, log, (SELECT version FROM sys.change_tracking_clock));
        END $f$
        """,
        """
        CREATE OR REPLACE FUNCTION sys.change_tracking_cleanup(tbl regclass, through bigint) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
          EXECUTE format('DELETE FROM %s WHERE ferry_version <= $1', (SELECT log FROM sys.change_tracking_tables WHERE object_id = tbl)) USING through;
          UPDATE sys.change_tracking_tables SET min_valid_version = greatest(min_valid_version, through) WHERE object_id = tbl;
        END $$
        """,
    ]

    /// Stops listening and ends every session.
    package func close() async {
        // Closing the listener ends the accept loop after every accepted connection was handed to a session (which
        // then ends: the loop cancels them); cancelling the loop would drop queued connections, which NIO traps on.
        // Accepting stops first: a connection accepted while the listener closes would be dropped unserved, which NIO
        // traps on (seen on CI). With reads off, nothing more is accepted; what the kernel still holds is refused.
        try? await serverChannel.setOption(ChannelOptions.autoRead, value: false)
        try? await serverChannel.close()
        await accepting.value
    }
}

/// Runs a session's task on its connection's event loop (the emulator's sessions never block: every wait is async).
private final class LoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
