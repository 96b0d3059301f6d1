import ArgumentParser
import FerryCore
import FerryPostgres
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry`: one binary that keeps PostgreSQL fed, replicated and safe.
struct FerryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Keeps PostgreSQL fed, replicated and safe: table sync through Redis, Redis sync, HA clusters, a local sandbox.",
        discussion: """
            Configuration comes from ferry.yaml (or --config / FERRY_CONFIG), an optional .env file, and the environment variables of the original scripts (PG_*, REDIS_*, MSSQL_*, STREAM_*, KEY_VALUE_*, SYNC_INTERVAL, BATCH_SIZE, LOG_LEVEL), which override the file. See examples/ferry.yaml, examples/ventas.yaml and examples/redis-sync.yaml.

            Start here:
              ferry demo           the table sync on a local sandbox, start to finish
              ferry sandbox up     start local PostgreSQL and Redis and write ferry.yaml
              ferry check          try every configured server
              ferry run            run the daemon: pipelines, Redis sync, /metrics
              ferry redis sync     Redis streams and keys into PostgreSQL
              ferry cluster init   a replicated PostgreSQL cluster (--local)
            """,
        version: FerryVersion.current,
        subcommands: [
            CheckCommand.self, RunCommand.self, SyncCommand.self, StatusCommand.self, ReconcileCommand.self, SandboxCommand.self, ConfigCommand.self,
            RedisCommand.self, PipelineCommand.self, ClusterCommand.self, AgentCommand.self, WatchdogCommand.self, BenchCommand.self,
            DemoCommand.self, WALCommand.self, BackupCommand.self, RestoreCommand.self, ParquetCommand.self, ExtractCommand.self,
            ListQueriesCommand.self, ShowParamsCommand.self, TestConnectionCommand.self, TokenCommand.self,
        ]
    )
}

@main
enum FerryMain {
    static func main() async {
        do {
            var command = try FerryCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            Terminal.error("\(error)")
            Terminal.error("Fix the configuration and run `ferry config validate` to check it.")
            exit(2)
        } catch let error as FerryError {
            Terminal.error(error.message)
            if let fix = error.fix { Terminal.hint(fix) }
            exit(error.code == .configuration ? 2 : 1)
        } catch let error as PSQLError {
            // A PostgreSQL error no command translated: print what the server said, never a generic description.
            let message = PostgresDiagnosis.serverMessage(of: error) ?? "\(error.code)"
            let state = PostgresDiagnosis.sqlState(of: error).map { " (SQLSTATE \($0))" } ?? ""
            Terminal.error("PostgreSQL: \(message)\(state)")
            if let detail = PostgresDiagnosis.detail(of: error) { Terminal.hint(detail) }
            exit(1)
        } catch {
            FerryCommand.exit(withError: error)
        }
    }
}

enum FerryVersion {
    static let current = "0.1.0"
}
