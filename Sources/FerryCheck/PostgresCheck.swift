import FerryCore
import FerryPostgres
import Logging
import PostgresNIO

/// Connects to PostgreSQL, measures a round trip, and checks the privileges Ferry needs.
struct PostgresCheck {
    let name: String
    let endpoint: PostgresEndpoint
    let sourceTables: [String]
    /// Protected mirrors in this database (the target): only Ferry's role may write them.
    var mirrors: [(schema: String, table: String)] = []
    let logger: Logger

    func run() async -> EndpointCheck {
        let address = endpoint.address
        let result = EndpointCheck(name: name, kind: "postgresql", address: address, status: .ok, detail: "")
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: try endpoint.connectionConfiguration(), id: 1, logger: logger)
        } catch {
            return failed(result, PostgresDiagnosis.diagnose(error, endpoint: endpoint, key: name))
        }
        let checked = await inspect(connection, result)
        try? await connection.close()
        return checked
    }

    private func inspect(_ connection: PostgresConnection, _ result: EndpointCheck) async -> EndpointCheck {
        var result = result
        let address = endpoint.address
        do {
            result.latency = try await measure { _ = try await connection.query("SELECT 1", logger: logger).collect() }
            let schema = endpoint.schema
            let rows = try await connection.query(
                """
                SELECT current_setting('server_version'), current_user,
                       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(schema)),
                       CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(schema))
                            THEN has_schema_privilege(\(schema), 'USAGE') ELSE false END,
                       CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(schema))
                            THEN has_schema_privilege(\(schema), 'CREATE') ELSE false END,
                       has_database_privilege(current_database(), 'CREATE')
                """,
                logger: logger
            ).collect()
            guard let row = rows.first else { return failed(result, FerryError(.server, "PostgreSQL at \(address) returned no row")) }
            let (version, user, schemaExists, usage, create, createSchema) = try row.decode((String, String, Bool, Bool, Bool, Bool).self)
            result.detail = "PostgreSQL \(version), user \(user)"
            if !schemaExists {
                if createSchema {
                    result.warnings.append("schema \"\(schema)\" does not exist yet; Ferry will create it")
                } else {
                    return failed(
                        result,
                        FerryError(
                            .permission,
                            "schema \"\(schema)\" does not exist and user \"\(user)\" may not create it",
                            fix:
                                "run `CREATE SCHEMA \(SQLIdentifier.quote(schema)) AUTHORIZATION \(SQLIdentifier.quote(user))` as an administrator, or fix \(name).schema"
                        )
                    )
                }
            } else if !usage {
                return failed(
                    result,
                    FerryError(
                        .permission, "user \"\(user)\" has no USAGE on schema \"\(schema)\"",
                        fix: "run `GRANT USAGE ON SCHEMA \(SQLIdentifier.quote(schema)) TO \(SQLIdentifier.quote(user))`")
                )
            } else if !create {
                result.warnings.append(
                    "user \"\(user)\" may not create tables in schema \"\(schema)\"; Ferry will only use tables that exist (see docs/POSTGRES_PERMISSIONS.md)"
                )
            }
            for table in sourceTables {
                // Each part as written, like the source reads it (`erp.VW_VENTAS` is not `erp.vw_ventas`).
                let relation = PostgresTableSource.quoteQualified(table)
                let rows = try await connection.query(
                    "SELECT to_regclass(\(relation)) IS NOT NULL, CASE WHEN to_regclass(\(relation)) IS NULL THEN false ELSE has_table_privilege(to_regclass(\(relation)), 'SELECT') END",
                    logger: logger
                ).collect()
                let (exists, canSelect) = try rows.first!.decode((Bool, Bool).self)
                if !exists {
                    return failed(
                        result,
                        FerryError(
                            .permission, "source table \"\(table)\" does not exist or is not visible to \"\(user)\"",
                            fix: "check the pipeline's source.table and the search_path"))
                }
                if !canSelect {
                    return failed(
                        result,
                        FerryError(
                            .permission, "user \"\(user)\" may not read \"\(table)\"",
                            fix: "run `GRANT SELECT ON \(relation) TO \(SQLIdentifier.quote(user))`"))
                }
            }
            if let problem = try await unprotectedMirror(connection) {
                var failure = failed(result, problem)
                failure.status = .mirrorWritable
                return failure
            }
        } catch {
            return failed(result, PostgresDiagnosis.diagnose(error, endpoint: endpoint, key: name))
        }
        return result
    }

    /// The first protected mirror that roles other than Ferry's may write (or that Ferry's role does not own).
    /// Superusers are left out (no privilege binds them) and so are built-in roles; roles that write through
    /// membership (of Ferry's role, of `pg_write_all_data`) are named.
    private func unprotectedMirror(_ connection: PostgresConnection) async throws -> FerryError? {
        for mirror in mirrors {
            let table = SQLIdentifier.qualified(mirror.schema, mirror.table)
            let rows = try await connection.query(
                """
                SELECT pg_catalog.pg_get_userbyid(c.relowner)::text, pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE'), current_user::text,
                       coalesce((SELECT string_agg(r.rolname::text, ', ' ORDER BY r.rolname) FROM pg_catalog.pg_roles r
                                 WHERE r.oid <> c.relowner AND r.oid >= 16384 AND NOT r.rolsuper AND r.rolname <> current_user
                                   AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')), '')
                FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(\(table))
                """,
                logger: logger
            ).collect()
            guard let row = rows.first else { continue }  // not created yet
            let (owner, ownerRights, user, writers) = try row.decode((String, Bool, String, String).self)
            let name = "\(mirror.schema).\(mirror.table)"
            if !ownerRights {
                return FerryError(
                    .conflict,
                    "the mirror \(name) belongs to role \"\(owner)\", not to \"\(user)\" (Ferry's role): privileges cannot keep other writers out",
                    fix: "run `ALTER TABLE \(table) OWNER TO \(SQLIdentifier.quote(user))` as its owner, or set protect_mirror: false")
            }
            if !writers.isEmpty {
                let roles = writers.split(separator: ", ").map { SQLIdentifier.quote(String($0)) }.joined(separator: ", ")
                return FerryError(
                    .conflict, "roles other than Ferry's can write the mirror \(name): \(writers)",
                    fix:
                        "run `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON \(table) FROM \(roles)` (ferry sync revokes direct grants itself as it starts); a role that writes through membership of another (Ferry's role, pg_write_all_data) needs `REVOKE thatrole FROM …`; let them edit the companion (companion.editors)"
                )
            }
        }
        return nil
    }

    private func failed(_ result: EndpointCheck, _ error: FerryError) -> EndpointCheck {
        var result = result
        result.status = error.code.checkStatus
        result.detail = error.message
        result.fix = error.fix
        return result
    }
}

/// Runs `body` three times and returns the median duration.
func measure(_ body: () async throws -> Void) async throws -> Duration {
    var samples: [Duration] = []
    let clock = ContinuousClock()
    for _ in 0..<3 {
        samples.append(try await clock.measure { try await body() })
    }
    return samples.sorted()[1]
}
