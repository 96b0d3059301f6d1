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
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let encryption { try channel.pipeline.syncOperations.addHandler(TDSPreLoginEncryptionHandler(context: encryption)) }
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
                            group.addTask {
                                var sessionLogger = logger
                                sessionLogger[metadataKey: "tds.client"] = "\(connection.channel.remoteAddress?.description ?? "?")"
                                var session = TDSSession(configuration: configuration, logger: sessionLogger)
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
            try await connection.query("COMMIT", logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

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
