import FerryCore
import FerryPostgres
import Logging
import PostgresNIO

/// The tables the Redis sync writes, and how to get them: created when the user may, used as they are when they
/// exist, and otherwise an error that prints the exact statements an owner must run.
struct RedisSyncTables: Sendable {
    let schema: String
    let config: RedisSyncConfiguration

    /// One table: its name and the statements that create it (the first creates the table itself).
    struct Table: Sendable {
        let name: String
        let statements: [String]
        /// Whether the sync needs UPDATE (upserts) besides SELECT and INSERT.
        let updates: Bool
        /// Used when it exists or can be created; otherwise the sync runs without it and says so (the dead letters
        /// of a key-values-only sync, which earlier versions did not create).
        var optional = false
    }

    var streams: String { SQLIdentifier.qualified(schema, config.streams.table) }
    var keyValues: String { SQLIdentifier.qualified(schema, config.keyValues.table) }
    var deadLetters: String { SQLIdentifier.qualified(schema, "ferry_dead_letters") }

    func mappedTable(_ mapping: StreamMapping) -> String {
        let parts = mapping.table.split(separator: ".", maxSplits: 1).map(String.init)
        return parts.count == 2 ? SQLIdentifier.qualified(parts[0], parts[1]) : SQLIdentifier.qualified(schema, mapping.table)
    }

    /// Everything the configuration needs, in creation order.
    ///
    /// The seed's lookup indexes on `message_id` and `redis_key` are the unique constraints themselves, with that
    /// column first (uniqueness does not depend on the order): a second index on the same column cost a third of
    /// the COPY time of `redis_key_values` and a fifth of `redis_streams` (600,000 rows: 6.0 → 3.9 s and
    /// 5.5 → 4.4 s). Tables made by earlier versions keep the indexes they have.
    var tables: [Table] {
        var result: [Table] = []
        if config.streams.enabled {
            let table = config.streams.table
            result.append(
                Table(
                    name: streams,
                    statements: [
                        """
                        CREATE TABLE IF NOT EXISTS \(streams) (
                          id bigserial PRIMARY KEY,
                          redis_db integer NOT NULL,
                          stream_key text NOT NULL,
                          message_id text NOT NULL,
                          data jsonb NOT NULL,
                          "timestamp" timestamptz NOT NULL,
                          synced_at timestamptz NOT NULL DEFAULT now(),
                          UNIQUE (message_id, stream_key, redis_db)
                        )
                        """,
                        "CREATE INDEX IF NOT EXISTS \(SQLIdentifier.quote(table + "_stream_time")) ON \(streams) (stream_key, \"timestamp\" DESC)",
                    ], updates: config.streams.conflict == .overwrite))
            for mapping in config.streams.mappings {
                let name = mappedTable(mapping)
                let columns = mapping.columns.map { "  \(SQLIdentifier.quote($0.column)) \($0.type),\n" }.joined()
                result.append(
                    Table(
                        name: name,
                        statements: [
                            """
                            CREATE TABLE IF NOT EXISTS \(name) (
                              id bigserial PRIMARY KEY,
                              redis_db integer NOT NULL,
                              stream_key text NOT NULL,
                              message_id text NOT NULL,
                            \(columns)  "timestamp" timestamptz NOT NULL,
                              synced_at timestamptz NOT NULL DEFAULT now(),
                              UNIQUE (message_id, stream_key, redis_db)
                            )
                            """
                        ], updates: config.streams.conflict == .overwrite))
            }
        }
        if config.keyValues.enabled {
            result.append(
                Table(
                    name: keyValues,
                    statements: [
                        """
                        CREATE TABLE IF NOT EXISTS \(keyValues) (
                          id bigserial PRIMARY KEY,
                          redis_db integer NOT NULL,
                          redis_key text NOT NULL,
                          redis_type text NOT NULL,
                          value jsonb,
                          ttl_ms bigint,
                          updated_at timestamptz NOT NULL DEFAULT now(),
                          deleted_at timestamptz,
                          UNIQUE (redis_key, redis_db)
                        )
                        """
                    ], updates: true))
        }
        if config.streams.enabled || config.keyValues.enabled {
            // Rows PostgreSQL rejects, and stream or key names it cannot store (``RejectedNames``).
            result.append(
                Table(
                    name: deadLetters, statements: ControlTables.deadLetterStatements(deadLetters), updates: false,
                    optional: !config.streams.enabled))
        }
        return result
    }

    /// Creates what is missing when this user may; uses existing tables when it may not (and says so); otherwise
    /// throws an error whose fix is the SQL an owner must run.
    func ensure(_ session: PostgresSession, logger: Logger) async throws {
        try await session.withTransaction { connection in
            try await MirrorDDL.lock(connection, logger)
            var user = ""
            var schemaExists = false
            var mayCreateSchema = false
            let rows = try await connection.query(
                """
                SELECT current_user::text, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(schema)),
                  has_database_privilege(current_database(), 'CREATE')
                """, logger: logger)
            for try await (name, exists, create) in rows.decode((String, Bool, Bool).self) {
                user = name
                schemaExists = exists
                mayCreateSchema = create
            }
            if !schemaExists {
                guard mayCreateSchema else {
                    throw FerryError(
                        .permission,
                        "the Redis sync writes to schema \(schema), which does not exist, and user \(user) may not create it",
                        fix: "run as an owner (see docs/POSTGRES_PERMISSIONS.md):\n" + script(tables, user: user))
                }
                try await MirrorDDL.run(
                    "CREATE SCHEMA IF NOT EXISTS \(SQLIdentifier.quote(schema))", connection, logger, what: "create schema \(schema)")
            }
            var mayCreate = false
            let privilege = try await connection.query("SELECT has_schema_privilege(\(schema), 'CREATE')", logger: logger)
            for try await value in privilege.decode(Bool.self) { mayCreate = value }
            var missing: [Table] = []
            var existing: [Table] = []
            for table in tables {
                let found = try await connection.query("SELECT to_regclass(\(table.name))::text", logger: logger)
                var exists = false
                for try await name in found.decode(String?.self) where name != nil { exists = true }
                if exists { existing.append(table) } else { missing.append(table) }
            }
            if !mayCreate {
                for table in missing where table.optional {
                    logger.warning(
                        "cannot create \(table.name): key names PostgreSQL cannot store are logged but not recorded in it",
                        metadata: ["ferry.fix": "run as an owner: \(table.statements.first?.split(separator: "\n").first ?? "")"])
                }
                missing.removeAll { $0.optional }
            }
            if !missing.isEmpty && !mayCreate {
                throw FerryError(
                    .permission,
                    "the Redis sync needs \(missing.map(\.name).joined(separator: ", ")) in schema \(schema), which do not exist, and user \(user) may not create tables there",
                    fix: "run as an owner (see docs/POSTGRES_PERMISSIONS.md):\n" + script(missing, user: user))
            }
            for table in missing {
                for statement in table.statements {
                    try await MirrorDDL.run(statement, connection, logger, what: "create \(table.name)")
                }
                logger.notice("created table", metadata: ["ferry.table": "\(table.name)"])
            }
            var lacking: [Table] = []
            for table in existing {
                let privileges = table.updates ? "SELECT,INSERT,UPDATE" : "SELECT,INSERT"
                let granted = try await connection.query("SELECT has_table_privilege(\(table.name), \(privileges))", logger: logger)
                for try await value in granted.decode(Bool.self) where !value { lacking.append(table) }
            }
            lacking.removeAll { table in
                guard table.optional else { return false }
                logger.warning("no INSERT on \(table.name): key names PostgreSQL cannot store are logged but not recorded in it")
                return true
            }
            if !lacking.isEmpty {
                throw FerryError(
                    .permission,
                    "user \(user) may not write \(lacking.map(\.name).joined(separator: ", "))",
                    fix: "run as an owner (see docs/POSTGRES_PERMISSIONS.md):\n" + grants(lacking, user: user))
            }
            if !existing.isEmpty && !mayCreate {
                logger.notice(
                    "using existing tables; this user may not create tables in the schema, so new ones (a new mapping) need an owner",
                    metadata: ["ferry.schema": "\(schema)", "ferry.user": "\(user)"])
            }
        }
    }

    /// The statements an owner runs to create `tables` and let `user` write them.
    func script(_ tables: [Table], user: String) -> String {
        var lines = ["CREATE SCHEMA IF NOT EXISTS \(SQLIdentifier.quote(schema));"]
        for table in tables { lines += table.statements.map { $0 + ";" } }
        lines.append(grants(tables, user: user))
        return lines.joined(separator: "\n")
    }

    func grants(_ tables: [Table], user: String) -> String {
        var lines = ["GRANT USAGE ON SCHEMA \(SQLIdentifier.quote(schema)) TO \(SQLIdentifier.quote(user));"]
        for table in tables {
            lines.append("GRANT SELECT, INSERT\(table.updates ? ", UPDATE" : "") ON \(table.name) TO \(SQLIdentifier.quote(user));")
        }
        lines.append("GRANT USAGE ON ALL SEQUENCES IN SCHEMA \(SQLIdentifier.quote(schema)) TO \(SQLIdentifier.quote(user));")
        return lines.joined(separator: "\n")
    }
}
