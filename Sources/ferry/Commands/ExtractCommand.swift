import ArgumentParser
import FerryCheck
import FerryCore
import FerryDatabricks
import FerryExtract
import FerryParquet
import FerryPostgres
import FerryPostgresNode
import FerrySQLServer
import Foundation
import Logging

/// The query library's paths, shared by `extract`, `list-queries` and `show-params`.
struct QueryLibraryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory of the .sql query files.", valueName: "path"))
    var queriesPath = "queries"

    @Option(help: ArgumentHelp("Directory of common_params.yaml and <Country>.yaml.", valueName: "path"))
    var configPath = "config"

    @Option(name: .customLong("param"), help: ArgumentHelp("A parameter for this run, over the files' (repeatable).", valueName: "name=value"))
    var params: [String] = []

    var library: QueryLibrary { QueryLibrary(queriesPath: queriesPath, configPath: configPath) }

    func overrides() throws -> [String: String] {
        var values: [String: String] = [:]
        for param in params {
            guard let equals = param.firstIndex(of: "="), equals != param.startIndex else {
                throw FerryError(.invalidInput, "--param \(param) is not NAME=VALUE", fix: "write it as --param start_date=2024-01-01")
            }
            values[String(param[..<equals])] = String(param[param.index(after: equals)...])
        }
        return values
    }
}

/// `ferry extract`: queries of the library into Parquet files.
struct ExtractCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Run library queries on the source and write each result as Parquet (Snappy) into a directory.",
        discussion: """
            Each query (queries/<name>.sql) is filled with the country's parameters (config/common_params.yaml, then config/<Country>.yaml, then --param), run on the source (--source: the `sqlserver:` section of ferry.yaml or the MSSQL_* variables when present, else `postgres:` or the PG_* variables, or a name under `sources:`), and streamed into <destination>/<name>.parquet: rows go straight from the server into Parquet pages, so memory stays bounded whatever the result's size. A file is written under a hidden temporary name and renamed when whole; an existing file is kept unless --overwrite.

            Placeholders: '{name}' (a whole string literal) is bound as a query parameter ($1 on PostgreSQL, @p1 through sp_executesql on SQL Server); {name} bare must be a number, a name or a plain expression; '…{name}…' inside a literal is escaped into it. Unknown placeholders are errors that list them.
            """
    )

    @OptionGroup var library: QueryLibraryOptions

    @Option(help: "The country whose parameters to use (the name of config/<Country>.yaml).")
    var country: String?

    @Option(
        help: ArgumentHelp(
            "Directory to write the Parquet files into, or a Databricks Volume (/Volumes/catalog/schema/volume/…; DATABRICKS_HOST with DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET).",
            valueName: "path"))
    var destination: String

    @Option(name: .customLong("query"), help: ArgumentHelp("A query to run (repeatable; default: every query).", valueName: "name"))
    var queries: [String] = []

    @Flag(help: "Replace files that exist.")
    var overwrite = false

    @Flag(help: "Show each query's SQL and bound values, run nothing.")
    var dryRun = false

    @Option(help: "Compression: snappy (default), zstd, gzip, none.")
    var compression = "snappy"

    @Option(help: "Start a new file after this many rows.")
    var maxRowsPerFile: Int?

    @Option(help: "Start a new file after about this many megabytes.")
    var maxFileMB: Int?

    @Option(help: ArgumentHelp("ferry.yaml for the source (default ./ferry.yaml or FERRY_CONFIG).", valueName: "path"))
    var config: String?

    @Option(
        help: ArgumentHelp(
            "The server the queries run on: sqlserver, postgres, or a name under sources: (default: sqlserver when configured, else postgres).",
            valueName: "name"))
    var source: String?

    @Option(help: ArgumentHelp("Rows per row group (default 1048576, as pyarrow).", valueName: "rows"))
    var rowGroupRows: Int?

    @Option(help: ArgumentHelp("Uncompressed bytes per data page (default 1048576, as pyarrow).", valueName: "bytes"))
    var pageBytes: Int?

    @Option(
        help: ArgumentHelp(
            "How rows are read from PostgreSQL: copy (COPY … TO STDOUT in PostgreSQL's binary format, the fast way; values as quoted literals) or query (a bound query through postgres-nio).",
            valueName: "copy|query"))
    var reader = "copy"

    @Flag(help: "Print a JSON summary: every file with its rows, bytes and SHA-256.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let logger = Logger(label: "ferry.extract")
        let codecs: [String: ParquetCodec] = ["snappy": .snappy, "zstd": .zstd, "gzip": .gzip, "none": .none]
        guard let codec = codecs[compression.lowercased()] else {
            throw FerryError(.invalidInput, "--compression \(compression) is not one Ferry writes", fix: "use snappy, zstd, gzip or none")
        }
        guard reader == "copy" || reader == "query" else {
            throw FerryError(.invalidInput, "--reader \(reader) is not a way Ferry reads", fix: "use copy or query")
        }
        if let rows = maxRowsPerFile, rows < 1 { throw FerryError(.invalidInput, "--max-rows-per-file \(rows) is below 1", fix: "give 1 or more") }
        if let megabytes = maxFileMB, !(1...1_000_000).contains(megabytes) {
            throw FerryError(.invalidInput, "--max-file-mb \(megabytes) is out of range", fix: "give 1 to 1000000")
        }
        let library = library.library
        let values = try library.parameters(country: country, overrides: try self.library.overrides())
        let names = queries.isEmpty ? try library.queryNames() : queries
        guard !names.isEmpty else {
            throw FerryError(.notFound, "no queries in \(library.queriesPath)", fix: "add <name>.sql files there, or pass --queries-path")
        }
        if let rows = rowGroupRows, !(1...100_000_000).contains(rows) {
            throw FerryError(.invalidInput, "--row-group-rows \(rows) is out of range", fix: "give 1 to 100000000")
        }
        if let bytes = pageBytes, !(1024...(256 << 20)).contains(bytes) {
            throw FerryError(.invalidInput, "--page-bytes \(bytes) is out of range", fix: "give 1024 to 268435456")
        }
        let loaded = try ConfigLoader(explicitPath: config).load()
        let chosen = try ExtractSource.resolve(source, in: loaded.configuration)
        let dialect: SQLTemplate.Dialect = if case .sqlserver = chosen { .sqlserver } else { .postgres }
        // Every query is filled before any runs: a missing parameter stops the run before a file is written.
        var planned: [(name: String, sql: String, bindings: [String], literalSQL: String?)] = []
        var used: Set<String> = []
        for name in names {
            let template = try SQLTemplate(try library.sql(name), file: "\(name).sql")
            used.formUnion(template.names)
            let rendered = try template.render(values, dialect: dialect, file: "\(name).sql")
            let literal = dialect == .postgres ? try template.render(values, dialect: .postgres, file: "\(name).sql", literals: true) : nil
            planned.append((name, rendered.sql, rendered.bindings, literal?.sql))
        }
        let unused = try self.library.overrides().keys.filter { !used.contains($0) }.sorted()
        guard unused.isEmpty else {
            throw FerryError(
                .invalidInput, "--param \(unused.joined(separator: ", ")): no selected query uses \(unused.count == 1 ? "it" : "them")",
                fix: "check the name against the queries' {placeholders}")
        }
        if dryRun {
            for query in planned {
                Terminal.print("-- \(query.name) → \(destination)/\(query.name).parquet")
                Terminal.print(query.sql.trimmingCharacters(in: .whitespacesAndNewlines))
                for (index, value) in query.bindings.enumerated() {
                    Terminal.print("--   \(dialect == .postgres ? "$" : "@p")\(index + 1) = \(JSONString.quote(value))")
                }
            }
            return
        }
        guard let chosen else {
            throw FerryError(
                .configuration, "no source: ferry.yaml has no sqlserver: or postgres: section and neither MSSQL_HOST nor PG_HOST is set",
                fix: "add a postgres: or sqlserver: section (see examples/ferry.yaml), or set PG_HOST/MSSQL_HOST and their variables")
        }
        var options = ExtractOptions()
        options.parquet.compression = codec
        options.parquet.createdBy = "ferry version \(FerryVersion.current)"
        if let rowGroupRows { options.parquet.rowGroupRows = rowGroupRows }
        if let pageBytes { options.parquet.pageBytes = pageBytes }
        options.rowsPerFile = maxRowsPerFile
        options.bytesPerFile = maxFileMB.map { $0 << 20 }
        options.overwrite = overwrite
        let volumes = destination.hasPrefix("/Volumes/") ? try ExtractCommand.volumeClient(logger: logger) : nil
        let target: any ExtractDestination =
            if let volumes {
                try DatabricksVolumeDestination(client: volumes, directory: destination)
            } else {
                LocalDirectoryDestination(directory: FileSystem.absolute(destination))
            }
        defer { if let volumes { Task { await volumes.shutdown() } } }
        try await target.prepare()
        if !overwrite {
            for query in planned where try await target.exists(query.name + ".parquet") {
                throw FerryError(.conflict, "\(target.location)/\(query.name).parquet exists", fix: "pass --overwrite to replace it")
            }
        }
        let runner = chosen.runner(logger: logger, reader: reader)
        let bar = ProgressBar(quiet: json)
        var reports: [ExtractReport] = []
        do {
            for query in planned {
                let start = ContinuousClock.now
                let report = try await runner.extract(
                    name: query.name, sql: query.sql, bindings: query.bindings, literalSQL: query.literalSQL, to: target, options: options
                ) { rows, bytes in
                    let seconds = max(
                        0.001,
                        Double((ContinuousClock.now - start).components.seconds) + Double((ContinuousClock.now - start).components.attoseconds) / 1e18
                    )
                    bar.draw(
                        "\(query.name): \(ProgressBar.grouped(Int(rows))) rows, \(ProgressBar.bytes(bytes)), \(ProgressBar.grouped(Int(Double(rows) / seconds))) rows/s"
                    )
                }
                bar.finish()
                reports.append(report)
                if !json {
                    for file in report.files {
                        Terminal.print("\(file.path): \(file.rows) rows, \(ProgressBar.bytes(file.bytes)), sha256 \(file.sha256.prefix(16))…")
                    }
                }
            }
        } catch {
            await runner.close()
            throw error
        }
        await runner.close()
        if json {
            struct Summary: Encodable {
                var destination: String
                var country: String?
                var queries: [ExtractReport]
                var rows: Int64
                var bytes: Int64
            }
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let summary = Summary(
                destination: target.location, country: country, queries: reports, rows: reports.reduce(0) { $0 + $1.rows },
                bytes: reports.reduce(0) { $0 + $1.bytes })
            Terminal.print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        }
    }
}

extension ExtractCommand {
    /// The Files API client for a `/Volumes/…` destination, from the Databricks SDKs' environment variables.
    static func volumeClient(logger: Logger) throws -> DatabricksFilesClient {
        let configuration = try DatabricksConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
        return DatabricksFilesClient(configuration: configuration, logger: logger)
    }
}

/// `ferry test-connection`: the source and, for a Volume, Databricks.
struct TestConnectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-connection",
        abstract:
            "Try the extraction's source (SQL Server or PostgreSQL) and, given a /Volumes/… destination, Databricks: each with the problem and its fix."
    )

    @Option(help: ArgumentHelp("A destination to try: a directory or /Volumes/catalog/schema/volume.", valueName: "path"))
    var destination: String?

    @Option(help: ArgumentHelp("The source to try: sqlserver, postgres or a name under sources: (default as ferry extract).", valueName: "name"))
    var source: String?

    @Option(help: ArgumentHelp("ferry.yaml for the source (default ./ferry.yaml or FERRY_CONFIG).", valueName: "path"))
    var config: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        try LoggingBootstrap.once(LogSettings())
        let logger = Logger(label: "ferry.extract")
        var checks: [EndpointCheck] = []
        let loaded = try ConfigLoader(explicitPath: config).load()
        if let chosen = try ExtractSource.resolve(source, in: loaded.configuration) {
            checks.append(await EndpointChecker(logger: logger).check(name: "source", endpoint: chosen.endpoint))
        } else {
            checks.append(
                EndpointCheck(
                    name: "source", kind: "-", address: "-", status: .error, detail: "no sqlserver: or postgres: section, no MSSQL_HOST or PG_HOST",
                    fix: "add a postgres: or sqlserver: section (see examples/ferry.yaml), or set PG_HOST/MSSQL_HOST and their variables"))
        }
        if let destination {
            checks.append(await Self.checkDestination(destination, logger: logger))
        }
        Terminal.print(json ? CheckCommand.json(checks) : CheckCommand.table(checks))
        if !checks.allSatisfy(\.isOK) { throw ExitCode(1) }
    }

    static func checkDestination(_ destination: String, logger: Logger) async -> EndpointCheck {
        guard destination.hasPrefix("/Volumes/") else {
            let path = FileSystem.absolute(destination)
            var directory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &directory)
            let writable = FileManager.default.isWritableFile(atPath: exists ? path : (path as NSString).deletingLastPathComponent)
            return EndpointCheck(
                name: "destination", kind: "directory", address: path, status: writable ? .ok : .error,
                detail: writable ? (exists ? "writable" : "will be created") : "not writable", fix: writable ? nil : "check its permissions")
        }
        do {
            let client = try ExtractCommand.volumeClient(logger: logger)
            defer { Task { await client.shutdown() } }
            let entries = try await client.list(destination)
            return EndpointCheck(
                name: "destination", kind: "databricks", address: destination, status: .ok, detail: "\(entries.count) entries readable", fix: nil)
        } catch let error as FerryError {
            if error.code == .notFound {
                return EndpointCheck(
                    name: "destination", kind: "databricks", address: destination, status: .ok,
                    detail: "the directory does not exist yet: ferry extract creates it", fix: nil)
            }
            return EndpointCheck(name: "destination", kind: "databricks", address: destination, status: .error, detail: error.message, fix: error.fix)
        } catch {
            return EndpointCheck(name: "destination", kind: "databricks", address: destination, status: .error, detail: "\(error)", fix: nil)
        }
    }
}

/// `ferry list-queries`.
struct ListQueriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list-queries", abstract: "The library's queries and the placeholders each uses.")

    @OptionGroup var library: QueryLibraryOptions

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let library = library.library
        var rows: [(String, [String])] = []
        for name in try library.queryNames() {
            rows.append((name, try SQLTemplate(try library.sql(name), file: "\(name).sql").names))
        }
        if json {
            let items = rows.map { "{\"name\":\(JSONString.quote($0.0)),\"placeholders\":[\($0.1.map(JSONString.quote).joined(separator: ","))]}" }
            Terminal.print("[" + items.joined(separator: ",") + "]")
            return
        }
        var table = TextTable(["QUERY", "PLACEHOLDERS"])
        for (name, names) in rows { table.add([name, names.joined(separator: ", ")]) }
        Terminal.print(table.render())
    }
}

/// `ferry show-params --country X`.
struct ShowParamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-params", abstract: "The parameters a country's run uses, resolved (secrets masked).")

    @OptionGroup var library: QueryLibraryOptions

    @Option(help: "The country (config/<Country>.yaml).")
    var country: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let values = try library.library.parameters(country: country, overrides: try library.overrides())
        let shown = values.map { (name: $0.key, value: QueryLibrary.isSecret($0.key) ? "***" : $0.value) }.sorted {
            $0.name < $1.name
        }
        if json {
            Terminal.print("{" + shown.map { JSONString.quote($0.name) + ":" + JSONString.quote($0.value) }.joined(separator: ",") + "}")
            return
        }
        var table = TextTable(["PARAMETER", "VALUE"])
        for item in shown { table.add([item.name, item.value]) }
        Terminal.print(table.render())
    }
}
