import FerryCore
import FerryPostgres
import Logging
import PostgresNIO

/// Who may do what to a pipeline's mirror and companion tables.
///
/// With `protect_mirror`, protection comes from privileges first: the mirror belongs to Ferry's role, and every
/// write privilege another role holds on it (granted to a role or to PUBLIC) is revoked as the pipeline starts.
/// Roles named in `target.readers` get SELECT; roles in `companion.editors` get SELECT on the mirror and may edit
/// the companion. The `ferry_protect` trigger is the second line: it refuses a write by any role that does not hold
/// the owner's privileges, whatever `ferry.sync` says. Superusers and members of Ferry's role (or of
/// `pg_write_all_data`) can still write; `ferry check` names them.
enum MirrorPrivileges {
    /// The trigger function's body: a write passes only with `ferry.sync = on` set by a role that holds the
    /// table owner's privileges (Ferry's own sessions).
    static let protectFunctionBody = """
        BEGIN
          IF current_setting('ferry.sync', true) = 'on'
             AND pg_catalog.pg_has_role(current_user, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID), 'USAGE') THEN
            RETURN NULL;
          END IF;
          RAISE EXCEPTION 'table %.% is written only by Ferry''s sync', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'edit the companion table instead, or disable protection with protect_mirror: false';
        END
        """

    static func apply(_ layout: MirrorLayout, connection: PostgresSessionConnection, logger: Logger) async throws {
        let pipeline = layout.pipeline
        let metadata: Logger.Metadata = ["ferry.pipeline": "\(pipeline.name)", "ferry.table": "\(layout.targetSchema).\(pipeline.target.table)"]
        if pipeline.protectMirror {
            let rows = try await connection.query(
                """
                SELECT coalesce(r.rolname::text, 'PUBLIC'), string_agg(DISTINCT a.privilege_type, ', ' ORDER BY a.privilege_type),
                       pg_catalog.pg_get_userbyid(c.relowner)::text, pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
                FROM pg_catalog.pg_class c
                CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
                LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
                WHERE c.oid = to_regclass(\(layout.mirrorTable)) AND a.grantee <> c.relowner
                  AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER')
                GROUP BY 1, 3, 4
                """,
                logger: logger
            ).collect()
            for row in rows {
                let (grantee, privileges, owner, ownerRights) = try row.decode((String, String, String, Bool).self)
                guard ownerRights else {
                    logger.warning(
                        "the mirror belongs to another role: its write grants cannot be revoked by Ferry",
                        metadata: metadata.merging([
                            "ferry.owner": "\(owner)", "ferry.fix": "ALTER TABLE \(layout.mirrorTable) OWNER TO current_user",
                        ]) { $1 })
                    break
                }
                let role = grantee == "PUBLIC" ? "PUBLIC" : SQLIdentifier.quote(grantee)
                try await MirrorDDL.run(
                    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER ON \(layout.mirrorTable) FROM \(role)", connection, logger,
                    what: "revoke write privileges on the mirror from \(grantee)")
                logger.warning(
                    "revoked write privileges another role held on the mirror: only Ferry writes it (protect_mirror)",
                    metadata: metadata.merging(["ferry.role": "\(grantee)", "ferry.privileges": "\(privileges)"]) { $1 })
            }
        }
        let readers = pipeline.target.readers
        let editors = pipeline.companion?.editors ?? []
        for role in readers + editors {
            try await grant("SELECT", on: layout.mirrorTable, to: role, layout, connection, logger)
        }
        if let companion = layout.companionTable {
            for role in readers { try await grant("SELECT", on: companion, to: role, layout, connection, logger) }
            for role in editors {
                try await grant("SELECT, INSERT, UPDATE, DELETE", on: companion, to: role, layout, connection, logger)
                let sequence = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT pg_catalog.pg_get_serial_sequence($1, 'id')", binds: binds(companion)), logger: logger
                ).collect()
                if let name = try sequence.first?.decode(String?.self) {
                    // pg_get_serial_sequence returns the name quoted as SQL needs it.
                    try await MirrorDDL.run(
                        "GRANT USAGE ON SEQUENCE \(name) TO \(SQLIdentifier.quote(role))", connection, logger,
                        what: "grant the companion's id sequence to \(role)")
                }
            }
        }
    }

    private static func grant(
        _ privileges: String, on table: String, to role: String, _ layout: MirrorLayout, _ connection: PostgresSessionConnection, _ logger: Logger
    ) async throws {
        let exists = try await connection.query(
            PostgresQuery(unsafeSQL: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", binds: binds(role)), logger: logger
        ).collect()
        guard try exists.first?.decode(Bool.self) == true else {
            let key = layout.pipeline.target.readers.contains(role) ? "target.readers" : "companion.editors"
            throw FerryError(
                .configuration, "pipelines \(layout.pipeline.name): \(key) names role \"\(role)\", which does not exist in the target database",
                fix: "create it (`CREATE ROLE \(SQLIdentifier.quote(role)) LOGIN`) or remove it from \(key)")
        }
        let schema = layout.targetSchema
        let usage = try await connection.query(
            PostgresQuery(unsafeSQL: "SELECT has_schema_privilege($1, $2, 'USAGE')", binds: binds(role, schema)), logger: logger
        ).collect()
        if try usage.first?.decode(Bool.self) != true {
            try await MirrorDDL.run(
                "GRANT USAGE ON SCHEMA \(SQLIdentifier.quote(schema)) TO \(SQLIdentifier.quote(role))", connection, logger,
                what: "grant USAGE on schema \(schema) to \(role)")
        }
        try await MirrorDDL.run(
            "GRANT \(privileges) ON \(table) TO \(SQLIdentifier.quote(role))", connection, logger, what: "grant \(privileges) on \(table) to \(role)")
    }

    private static func binds(_ values: String...) -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values { bindings.append(value) }
        return bindings
    }
}
