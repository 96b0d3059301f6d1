import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("The ferry command line", .serialized)
struct CLITests {
    @Test func sandboxUpAndDownLeaveNoProcessBehind() async throws {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let up = try await FerryProcess.run(["sandbox", "up", "--json"], in: directory)
        #expect(up.status == 0, "\(up.stderr)")
        let sandbox = try #require(Sandbox.load(root: directory + "/.ferry/sandbox"))
        let pgPID = try #require(sandbox.postgres?.pid)
        let redisPID = try #require(sandbox.redis?.pid)
        let dataDirectory = try #require(sandbox.postgres?.dataDirectory)
        #expect(ProcessTable.isAlive(pgPID, named: "postgres"))
        #expect(ProcessTable.isAlive(redisPID, named: "redis-server"))
        #expect(up.stdout.contains("\"running\":true"))
        #expect(!up.stdout.contains(sandbox.postgres!.password), "passwords stay out of the output")

        let yaml = try String(contentsOfFile: directory + "/ferry.yaml", encoding: .utf8)
        #expect(yaml.contains("port: \(sandbox.postgres!.port)"))
        // Both passwords are in it: private to the user, as is the sandbox's copy.
        for file in [directory + "/ferry.yaml", directory + "/.ferry/sandbox/ferry.yaml"] {
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file): \(String(mode ?? 0, radix: 8))")
        }

        let check = try await FerryProcess.run(["check", "--json"], in: directory)
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        #expect(check.stdout.hasPrefix("{\"ok\":true"))

        let again = try await FerryProcess.run(["sandbox", "up"], in: directory)
        #expect(again.status == 0)
        #expect(again.stdout.contains("already up"))

        let status = try await FerryProcess.run(["sandbox", "status", "--json"], in: directory)
        #expect(status.stdout.contains("\"running\":true"))

        let down = try await FerryProcess.run(["sandbox", "down"], in: directory)
        #expect(down.status == 0, "\(down.stderr)")
        #expect(!ProcessTable.isAlive(pgPID))
        #expect(!ProcessTable.isAlive(redisPID))
        #expect(ProcessTable.pids(workingDirectory: dataDirectory).isEmpty, "no PostgreSQL backend is left")
        #expect(ProcessTable.pids(commandLineContaining: "127.0.0.1:\(sandbox.redis!.port)").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory + "/.ferry/sandbox"))
    }

    /// `make demo` runs `ferry demo`; this keeps it working at every commit.
    @Test func demoSyncsDrainsAndReconcilesToZeroDifferences() async throws {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let demo = try await FerryProcess.run(["demo", "--rows", "3000", "--seconds", "1"], in: directory, timeout: .seconds(180))
        let down = try await FerryProcess.run(["sandbox", "down"], in: directory)
        #expect(demo.status == 0, "\(demo.stdout)\n\(demo.stderr)")
        #expect(demo.stdout.contains("initial load: 3,000 rows"))
        #expect(demo.stdout.contains("0 differences"), "\(demo.stdout)")
        #expect(demo.stdout.contains("companion edit kept: C-0000042 cliente=\"Cliente renombrado en el ERP\" nota=\"llamar antes de entregar\""))
        #expect(FileManager.default.fileExists(atPath: directory + "/.ferry/demo/ferry.yaml"))
        #expect(down.status == 0)
    }

    @Test func checkFailsClearlyAgainstAStoppedServer() async throws {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try FreePort.find()
        let result = try await FerryProcess.run(["check"], in: directory, environment: ["REDIS_HOST": "127.0.0.1", "REDIS_PORT": "\(port)"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("unreachable"))
        #expect(result.stdout.contains("127.0.0.1:\(port)"))
        #expect(result.stdout.contains("fix:"))
    }

    @Test func invalidConfigurationExitsTwoWithEveryProblem() async throws {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        postgres:
          database: d
          user: u
          port: seventy
        pipelines:
          - name: ventas
            source: {connection: postgres, key: [id], watermark: w}
            target: {table: m}
        """.write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
        let result = try await FerryProcess.run(["check"], in: directory)
        #expect(result.status == 2)
        #expect(result.stderr.contains("postgres.port: \"seventy\" is not a whole number"))
        #expect(result.stderr.contains("pipelines[0].source.table: missing — name the view or table to read"))
        #expect(result.stderr.contains("redis: missing"))
        #expect(!result.stderr.contains("Fatal error"))
        #expect(result.stdout.isEmpty)
    }

    /// Numbers from the command line are range-checked like the YAML's: a wrapped port is never listened on.
    @Test func anOutOfRangeHTTPPortIsRefused() async throws {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for port in ["99999", "0", "-1", "9223372036854775808"] {
            let result = try await FerryProcess.run(["run", "--http-port", port], in: directory)
            #expect(result.status == 64, "--http-port \(port): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("--http-port") && !result.stderr.contains("Fatal error"), "\(result.stderr)")
        }
    }

    @Test func configShowRedactsSecrets() async throws {
        let directory = try FerryProcess.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "redis:\n  host: 127.0.0.1\n  password: ${REDIS_PASSWORD}\n".write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
        try "REDIS_PASSWORD=Propose1-Amused-Cotton\n".write(toFile: directory + "/.env", atomically: true, encoding: .utf8)
        let result = try await FerryProcess.run(
            ["config", "show"], in: directory, environment: ["PG_PASSWORD": "Tux-Plural-Retype3", "PG_DATABASE": "syncdb", "PG_USER": "sysadmin"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains("Propose1-Amused-Cotton"))
        #expect(!result.stdout.contains("Tux-Plural-Retype3"))
        #expect(result.stdout.contains("password: \"***\"  # from $PG_PASSWORD"))
        #expect(result.stdout.contains("database: syncdb  # from $PG_DATABASE"))
    }

    @Test func runServesHealthAndMetricsAndStopsOnSIGTERM() async throws {
        try await Sandbox.with(
            options: {
                var o = Sandbox.Options()
                o.durable = false
                return o
            }()
        ) { sandbox in
            let directory = try FerryProcess.scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try sandbox.configurationYAML().write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
            let port = try FreePort.find()
            let daemon = try FerryProcess.start(["run", "--http-port", "\(port)", "--log-format", "json"], in: directory)
            defer { daemon.signal(SIGKILL) }

            let ready = try await HTTPProbe.waitFor(port: port, path: "/health/ready", status: 200, timeout: .seconds(30))
            #expect(ready.body.contains("\"status\":\"ready\""))
            let live = try await HTTPProbe.get(port: port, path: "/health/live")
            #expect(live.status == 200)
            let metrics = try await HTTPProbe.get(port: port, path: "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.body.contains("ferry_endpoint_up{endpoint=\"postgres\"} 1"))
            #expect(metrics.body.contains("ferry_endpoint_up{endpoint=\"redis\"} 1"))

            await sandbox.redis?.stop()
            let notReady = try await HTTPProbe.waitFor(port: port, path: "/health/ready", status: 503, timeout: .seconds(30))
            #expect(notReady.body.contains("\"name\":\"redis\""))
            #expect(notReady.body.contains("unreachable"))

            daemon.signal(SIGTERM)
            let status = try await daemon.wait(timeout: .seconds(20))
            #expect(status == 0, "\(daemon.errors())")
            #expect(!daemon.errors().contains(sandbox.postgres!.password))
        }
    }
}
