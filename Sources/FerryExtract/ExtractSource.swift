package import FerryCore
import FerryPostgres
import FerrySQLServer
package import Logging

/// The server an extraction's queries run on, chosen from the configuration: `sqlserver`, `postgres`, or a name under
/// `sources:`.
package enum ExtractSource: Sendable {
    case postgres(PostgresEndpoint, key: String)
    case sqlserver(SQLServerEndpoint, key: String)

    /// `name`, or when nil the default: `sqlserver` when configured (the query library's original source), else
    /// `postgres`; nil when neither is. A name that is not configured is an error listing the ones that are.
    package static func resolve(_ name: String?, in configuration: FerryConfiguration) throws(FerryError) -> ExtractSource? {
        guard let name else {
            if let sqlserver = configuration.sqlserver { return .sqlserver(sqlserver, key: "sqlserver") }
            if let postgres = configuration.postgres { return .postgres(postgres, key: "postgres") }
            return nil
        }
        let bare = name.hasPrefix("sources.") ? String(name.dropFirst("sources.".count)) : name
        if name == "sqlserver", let sqlserver = configuration.sqlserver { return .sqlserver(sqlserver, key: "sqlserver") }
        if name == "postgres", let postgres = configuration.postgres { return .postgres(postgres, key: "postgres") }
        switch configuration.sources[bare] {
        case .postgres(let endpoint): return .postgres(endpoint, key: "sources.\(bare)")
        case .sqlserver(let endpoint): return .sqlserver(endpoint, key: "sources.\(bare)")
        case nil:
            var known: [String] = []
            if configuration.sqlserver != nil { known.append("sqlserver") }
            if configuration.postgres != nil { known.append("postgres") }
            known += configuration.sources.keys.sorted()
            throw FerryError(
                .configuration, "--source \(name) is not configured",
                fix: known.isEmpty
                    ? "add a `\(name)` section to ferry.yaml (see examples/ferry.yaml)" : "use one of \(known.joined(separator: ", "))")
        }
    }

    /// The endpoint, for checks and messages.
    package var endpoint: Endpoint {
        switch self {
        case .postgres(let endpoint, _): .postgres(endpoint)
        case .sqlserver(let endpoint, _): .sqlserver(endpoint)
        }
    }

    package var key: String {
        switch self {
        case .postgres(_, let key), .sqlserver(_, let key): key
        }
    }

    /// A runner holding the source's connections; `reader` (`copy` or `query`) applies to PostgreSQL.
    package func runner(logger: Logger, reader: String = "copy") -> ExtractRunner {
        switch self {
        case .postgres(let endpoint, let key):
            let session = PostgresSession(endpoint: endpoint, key: key, logger: logger)
            return ExtractRunner(
                .postgres(PostgresParquetExtractor(session: session, endpoint: endpoint, logger: logger), copy: reader == "copy"))
        case .sqlserver(let endpoint, let key):
            let session = SQLServerSession(endpoint: endpoint, key: key, options: SQLServerOptions(endpoint))
            return ExtractRunner(.sqlserver(SQLServerParquetExtractor(session: session, logger: logger)))
        }
    }
}

/// Runs queries on one source, one after another, over the same connections.
package struct ExtractRunner: Sendable {
    enum Extractor: Sendable {
        case postgres(PostgresParquetExtractor, copy: Bool)
        case sqlserver(SQLServerParquetExtractor)
    }

    let extractor: Extractor

    init(_ extractor: Extractor) { self.extractor = extractor }

    /// Runs one query (`sql` in the source's dialect with `bindings`; `literalSQL`, PostgreSQL's with the values as
    /// literals, for its COPY reader) into `destination`.
    package func extract(
        name: String, sql: String, bindings: [String], literalSQL: String?, to destination: any ExtractDestination, options: ExtractOptions,
        progress: @escaping @Sendable (Int64, Int64) -> Void = { _, _ in }
    ) async throws(FerryError) -> ExtractReport {
        switch extractor {
        case .postgres(let extractor, let copy):
            let query = PostgresParquetExtractor.Query(name: name, sql: sql, bindings: bindings, literalSQL: copy ? literalSQL : nil)
            return try await extractor.extract(query, to: destination, options: options, progress: progress)
        case .sqlserver(let extractor):
            return try await extractor.extract(.init(name: name, sql: sql, bindings: bindings), to: destination, options: options, progress: progress)
        }
    }

    package func close() async {
        switch extractor {
        case .postgres(let extractor, _): await extractor.session.close()
        case .sqlserver(let extractor): await extractor.session.close()
        }
    }
}
