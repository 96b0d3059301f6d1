package import FerryCore
package import Logging

/// Tries every server in a configuration, concurrently, and reports each one's state.
package struct EndpointChecker: Sendable {
    package var logger: Logger

    package init(logger: Logger) {
        self.logger = logger
    }

    /// Checks all endpoints of `configuration`; results are in the configuration's order.
    package func check(_ configuration: FerryConfiguration) async -> [EndpointCheck] {
        let endpoints = configuration.endpoints
        return await withTaskGroup(of: (Int, EndpointCheck).self) { group in
            for (index, entry) in endpoints.enumerated() {
                let reading = configuration.pipelines.filter { pipeline in
                    pipeline.source.connection == entry.name || "sources.\(pipeline.source.connection)" == entry.name
                }
                let sourceTables = reading.compactMap(\.source.table)
                let trackedTables = reading.filter(\.source.changeTracking).compactMap(\.source.table)
                // Mirrors live in the target database (`postgres`); protected ones must be writable by Ferry alone.
                let mirrors =
                    entry.name == "postgres"
                    ? configuration.pipelines.filter(\.protectMirror).map { (schema: $0.target.schema, table: $0.target.table) } : []
                group.addTask {
                    (
                        index,
                        await check(
                            name: entry.name, endpoint: entry.endpoint, sourceTables: sourceTables, trackedTables: trackedTables, mirrors: mirrors)
                    )
                }
            }
            var results = [EndpointCheck?](repeating: nil, count: endpoints.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }

    /// Checks one endpoint.
    package func check(
        name: String, endpoint: Endpoint, sourceTables: [String] = [], trackedTables: [String] = [], mirrors: [(schema: String, table: String)] = []
    ) async
        -> EndpointCheck
    {
        switch endpoint {
        case .postgres(let postgres):
            return await PostgresCheck(name: name, endpoint: postgres, sourceTables: sourceTables, mirrors: mirrors, logger: logger).run()
        case .redis(let redis):
            return await RedisCheck(name: name, endpoint: redis, logger: logger).run()
        case .sqlserver(let sqlserver):
            return await SQLServerCheck(name: name, endpoint: sqlserver, sourceTables: sourceTables, trackedTables: trackedTables).run()
        }
    }
}

extension Duration {
    /// Milliseconds with one decimal, for tables and JSON.
    package var milliseconds: Double { (seconds * 10_000).rounded() / 10 }
}

extension FerryError.Code {
    var checkStatus: EndpointCheck.Status {
        switch self {
        case .unreachable, .timeout, .closed: .unreachable
        case .authentication: .authenticationFailed
        case .databaseMissing: .databaseMissing
        case .permission: .permissionMissing
        default: .error
        }
    }
}
