import FerryCore
package import FerryPostgres
import Foundation
package import Logging
import PostgresNIO
import TDSEmulator

/// The TDS emulator in a process of its own (`ferry bench tds-emulator`, hidden), so that a benchmark measures Ferry's
/// CPU and the emulator's apart, as they would be with SQL Server on its own machine. The parent passes the
/// PostgreSQL settings in the environment (never a password on a command line), reads the port from the child's
/// first line, and ends it by closing its standard input.
package final class TDSEmulatorProcess: Sendable {
    package let port: Int
    package let pid: Int32
    private let process: Process
    private let input: Pipe

    private init(port: Int, process: Process, input: Pipe) {
        self.port = port
        self.pid = process.processIdentifier
        self.process = process
        self.input = input
    }

    /// Starts `ferry bench tds-emulator` serving `schema` of `postgres` to the login ferry / s3cret, database `ventas`;
    /// with `replay`, it answers a query it served before from memory (``TDSResultCache``).
    static func start(postgres: PostgresEndpoint, schema: String, replay: Bool = false) throws -> TDSEmulatorProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["bench", "tds-emulator"]
        var environment = ProcessInfo.processInfo.environment
        environment["FERRY_TDS_PG_HOST"] = postgres.host
        environment["FERRY_TDS_PG_PORT"] = String(postgres.port)
        environment["FERRY_TDS_PG_USER"] = postgres.user
        environment["FERRY_TDS_PG_PASSWORD"] = postgres.password?.value ?? ""
        environment["FERRY_TDS_PG_DATABASE"] = postgres.database
        environment["FERRY_TDS_PG_TLS"] = postgres.tls.rawValue
        environment["FERRY_TDS_SEARCH_PATH"] = schema
        environment["FERRY_TDS_REPLAY"] = replay ? "1" : nil
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), let first = byte.first, first != UInt8(ascii: "\n") {
            line.append(first)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening "), let port = Int(text.dropFirst("listening ".count)) else {
            process.terminate()
            throw FerryError(.sandbox, "the TDS emulator process did not start: \(text)")
        }
        return TDSEmulatorProcess(port: port, process: process, input: input)
    }

    /// Ends the process and waits for it.
    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// The child's side: serves until its standard input closes.
    package static func serve(logger: Logger) async throws {
        let environment = ProcessInfo.processInfo.environment
        var endpoint = PostgresEndpoint()
        endpoint.host = environment["FERRY_TDS_PG_HOST"] ?? "127.0.0.1"
        endpoint.port = Int(environment["FERRY_TDS_PG_PORT"] ?? "") ?? 5432
        endpoint.user = environment["FERRY_TDS_PG_USER"] ?? "postgres"
        endpoint.password = environment["FERRY_TDS_PG_PASSWORD"].map(Secret.init)
        endpoint.database = environment["FERRY_TDS_PG_DATABASE"] ?? "postgres"
        endpoint.tls = environment["FERRY_TDS_PG_TLS"].flatMap(PostgresEndpoint.TLSMode.init(rawValue:)) ?? .disable
        var configuration = TDSEmulator.Configuration(
            postgres: try endpoint.connectionConfiguration(), database: "ventas", logins: ["ferry": "s3cret"])
        // A process of its own, serving one client at a time: its sessions run on their loops (rows stay on one thread).
        configuration.sessionsOnEventLoops = true
        if environment["FERRY_TDS_REPLAY"] == "1" { configuration.resultCache = TDSResultCache() }
        configuration.postgres.options.additionalStartupParameters = [("search_path", environment["FERRY_TDS_SEARCH_PATH"] ?? "public")]
        let emulator = try await TDSEmulator.start(configuration, logger: logger)
        FileHandle.standardOutput.write(Data("listening \(emulator.port)\n".utf8))
        // Blocks a thread of its own until the parent closes the pipe.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                _ = FileHandle.standardInput.readDataToEndOfFile()
                done.resume()
            }
        }
        await emulator.close()
    }
}
