import FerryCore
import FerrySQLServer

/// Logs in to SQL Server with Ferry's own client, measures a round trip, and checks that each source view a
/// pipeline reads exists and may be read: unreachable, TLS refused, login failed, database missing, view missing or
/// not readable each get their own status and fix.
struct SQLServerCheck {
    let name: String
    let endpoint: SQLServerEndpoint
    let sourceTables: [String]
    /// Source tables read with Change Tracking (`change_tracking: true`): tracking must be on and visible to the login.
    var trackedTables: [String] = []

    func run() async -> EndpointCheck {
        let result = EndpointCheck(name: name, kind: "sqlserver", address: "\(endpoint.host):\(endpoint.port)", status: .ok, detail: "")
        let connection: SQLServerConnection
        do {
            connection = try await SQLServerConnection.connect(endpoint, key: name, options: SQLServerOptions(endpoint))
        } catch {
            return failed(result, error)
        }
        let checked = await inspect(connection, result)
        await connection.close()
        return checked
    }

    private func inspect(_ connection: SQLServerConnection, _ result: EndpointCheck) async -> EndpointCheck {
        var result = result
        do {
            let clock = ContinuousClock()
            let start = clock.now
            _ = try await connection.rows("SELECT 1")
            result.latency = clock.now - start
            let about = try await connection.rows("SELECT @@VERSION, SYSTEM_USER").first ?? []
            let version = (about.first ?? nil)?.split(separator: "\n").first.map { $0.drop { $0 == " " } }.map(String.init) ?? "SQL Server"
            let user = about.count > 1 ? (about[1] ?? endpoint.user) : endpoint.user
            result.detail = "\(version), user \(user)"
            for table in sourceTables {
                let quoted = SQLServerIdentifier.qualified(table)
                do {
                    try await connection.query("SELECT TOP (0) * FROM \(quoted)") { _ in }
                } catch let error as FerryError {
                    let number = (error.underlying as? SQLServerError)?.number
                    if number == 208 {
                        return failed(
                            result,
                            FerryError(
                                .permission, "source view \(quoted) does not exist in database `\(endpoint.database)` or is not visible to `\(user)`",
                                fix: "check the pipeline's source.table (MSSQL_VIEW) and \(name).database; the login needs a user in that database"))
                    }
                    if error.code == .permission {
                        return failed(
                            result,
                            FerryError(
                                .permission, "`\(user)` may not read \(quoted)",
                                fix: "run `GRANT SELECT ON \(quoted) TO \(SQLServerIdentifier.quote(user))`"))
                    }
                    throw error
                }
            }
            for table in trackedTables {
                let quoted = SQLServerIdentifier.qualified(table)
                let minimum = try await connection.rows(
                    "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(@p1))", parameters: [SQLServerParameter(quoted, as: "nvarchar(4000)")])
                if (minimum.first?.first ?? nil) == nil {
                    return failed(
                        result,
                        FerryError(
                            .permission,
                            "Change Tracking is not enabled on \(quoted), or `\(user)` may not see it (the pipeline has change_tracking: true)",
                            fix: SQLServerTableSource.enableChangeTracking(table: quoted, database: endpoint.database, user: user)))
                }
            }
        } catch {
            return failed(result, error)
        }
        return result
    }

    private func failed(_ result: EndpointCheck, _ error: any Error) -> EndpointCheck {
        var result = result
        let problem = error as? FerryError ?? FerryError(.server, "SQL Server at \(result.address): \(error)")
        result.status = problem.code.checkStatus
        result.detail = problem.message
        result.fix = problem.fix
        return result
    }
}
