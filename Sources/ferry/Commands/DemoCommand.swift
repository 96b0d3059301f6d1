import ArgumentParser
import FerryBench
import FerryCore
import FerryDaemon
import FerryPostgres
import FerryPostgresNode
import FerryRedis
import FerrySandbox
import FerrySync
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `ferry demo`: the main job on the sandbox, start to finish (what `make demo` runs).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the table sync on the sandbox: a generated VW_VENTAS_SYNC copied live into datos_vista.",
        discussion: """
            Starts the sandbox (or uses the running one), creates a database `erp` holding VW_VENTAS_SYNC with --rows rows, and runs the `ventas` pipeline of examples/ventas.yaml against it while a writer keeps changing and adding rows. Shows live progress, edits a companion row the way a NocoDB user would, then stops the writer, drains the queue and reconciles source and mirror (0 differences expected). Every run starts the demo over; the configuration it used is left in .ferry/demo/ferry.yaml.
            """
    )

    @Option(help: "Rows in the generated source.")
    var rows = 120_000

    @Option(help: "Seconds the writer keeps changing rows after the initial load.")
    var seconds = 10

    @Option(name: .customLong("dir"), help: ArgumentHelp("Sandbox directory.", valueName: "path"))
    var directory = ".ferry/sandbox"

    func validate() throws {
        guard rows >= 100 else { throw ValidationError("--rows: use at least 100") }
        guard seconds >= 1 else { throw ValidationError("--seconds: use at least 1") }
    }

    func run() async throws {
        var logSettings = LogSettings()
        logSettings.level = .warning
        try LoggingBootstrap.once(logSettings)
        let logger = Logger(label: "ferry.demo")
        let clock = ContinuousClock()

        // 1. Servers.
        let (sandbox, _) = try await SandboxCommand.ensureUp(directory, quiet: false, logger: logger)
        guard let postgres = sandbox.postgres, sandbox.redis != nil else {
            throw FerryError(
                .sandbox, "the sandbox in \(directory) lacks PostgreSQL or Redis", fix: "run `ferry sandbox down`, then `make demo` again")
        }
        Terminal.print(SandboxCommand.table(sandbox))

        // 2. The source: database `erp`, table VW_VENTAS_SYNC.
        step("creating erp.public.\"VW_VENTAS_SYNC\" with \(ProgressBar.grouped(rows)) rows")
        let admin = PostgresSession(endpoint: postgres.endpoint, key: "postgres", logger: logger)
        try await admin.withConnection { connection in
            let rows = try await connection.query("SELECT count(*) FROM pg_database WHERE datname = 'erp'", logger: logger)
            var exists = false
            for try await count in rows.decode(Int64.self) { exists = count > 0 }
            if !exists { try await connection.query("CREATE DATABASE erp", logger: logger) }
        }
        var erpEndpoint = postgres.endpoint
        erpEndpoint.database = "erp"
        let erp = PostgresSession(endpoint: erpEndpoint, key: "sources.erp", logger: logger)
        let source = VentasSource(session: erp, schema: "public", logger: logger)
        let created = clock.now
        try await source.create(rows: rows)
        step("created in \(Self.seconds(clock.now - created))")

        // 3. Start over: the mirror, the companion, the queue and the pipeline's state.
        let configPath = try writeConfiguration(sandbox)
        let loaded = try ConfigLoader(explicitPath: configPath, environment: [:]).load()
        let configuration = loaded.configuration
        let pipeline = try PipelineLookup.find("ventas", in: configuration)
        let redis = try PipelineLookup.redisClient(configuration, logger: logger)
        try await reset(pipeline, admin: admin, redis: redis, logger: logger)

        // 4. Run the pipeline with a live writer until `seconds` after the initial load.
        step("syncing into \(postgres.database).public.datos_vista (companion: datos_seguimiento), writer on")
        let latest = LatestProgress()
        var options = TableSyncPipeline.Options()
        options.progress = { progress in latest.value.withLock { $0 = progress } }
        let runner = try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, options: options, logger: logger)
        let driver = DemoDriver(
            rows: rows, seconds: seconds, source: source, target: admin, latest: latest, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: runner),
                    .init(service: driver, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            ))
        do {
            try await group.run()
        } catch {
            await redis.shutdown()
            throw error
        }
        guard driver.finished.load(ordering: .relaxed) else {
            await redis.shutdown()
            Terminal.print("\ninterrupted; the sandbox keeps running (stop it with `ferry sandbox down`)")
            return
        }

        // 5. Drain what the writer left, then compare.
        step("writer stopped; catching up and draining the queue")
        let drain = try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, logger: logger)
        let drained = clock.now
        let (queued, applied) = try await drain.runOnce()
        step("queued \(ProgressBar.grouped(queued)), applied \(ProgressBar.grouped(applied)) in \(Self.seconds(clock.now - drained))")

        step("reconciling source and mirror by key ranges")
        let report = try await Reconciler(pipeline, configuration: configuration, redis: redis, logger: logger).run(repair: false)
        await redis.shutdown()
        let differences = report.differences
        Terminal.print(
            "  source \(ProgressBar.grouped(report.sourceRows)) rows, mirror \(ProgressBar.grouped(report.mirrorRows)) rows, "
                + "\(report.rangesCompared) ranges compared: "
                + (differences == 0 ? Terminal.paint("0 differences", .green) : Terminal.paint("\(differences) differences", .red)))

        // 6. The companion edit made during the run is still there, beside the source's later change.
        try await admin.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT v.conduce, v.cliente, s.nota, s.ruta, s.preparador FROM public.datos_vista v
                JOIN public.datos_seguimiento s USING (conduce) WHERE v.conduce = \(VentasSource.key(DemoDriver.editedKey))
                """, logger: logger)
            for try await (conduce, cliente, nota, ruta, preparador) in rows.decode((String, String, String?, String?, String?).self) {
                Terminal.print(
                    "  companion edit kept: \(conduce) cliente=\"\(cliente)\" nota=\"\(nota ?? "")\" ruta=\(ruta ?? "-") preparador=\(preparador ?? "-")"
                )
            }
        }
        await admin.close()
        await erp.close()
        guard differences == 0 else {
            for row in report.missing.prefix(5) { Terminal.print("  missing in the mirror: \(row.joined(separator: ", "))") }
            for row in report.different.prefix(5) { Terminal.print("  different: \(row.joined(separator: ", "))") }
            for row in report.extra.prefix(5) { Terminal.print("  not in the source: \(row.joined(separator: ", "))") }
            throw FerryError(.invalidInput, "the demo's mirror differs from its source", fix: "please report this with the output above")
        }

        let hints = [
            ("ferry status --config \(configPath)", "per pipeline: watermark, queue, pending, rows/s"),
            ("ferry run --config \(configPath)", "the daemon; metrics on http://127.0.0.1:9620/metrics"),
            ("ferry reconcile ventas --config \(configPath)", "compare source and mirror again"),
            ("psql '\(postgres.url)'", "browse datos_vista / datos_seguimiento (password: \(sandbox.root)/ferry.yaml)"),
            ("ferry sandbox down", "stop and remove the sandbox"),
        ]
        let width = hints.map(\.0.count).max() ?? 0
        Terminal.print("\nDone. The sandbox keeps running; try:")
        for (command, what) in hints {
            Terminal.print("  " + command + String(repeating: " ", count: width - command.count + 2) + Terminal.paint(what, .dim))
        }
    }

    private func step(_ text: String) {
        Terminal.print(Terminal.paint("==> ", .bold) + text)
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1fs", duration.seconds)
    }

    /// The sandbox's servers plus the `erp` source and the `ventas` pipeline of examples/ventas.yaml.
    private func writeConfiguration(_ sandbox: Sandbox) throws -> String {
        guard let postgres = sandbox.postgres else { return "" }
        let extra = """

            sources:
              erp:
                type: postgres
                host: 127.0.0.1
                port: \(postgres.port)
                database: erp
                user: \(postgres.user)
                password: "\(postgres.password)"
                tls: disable

            sync:
              interval: 200ms

            pipelines:
              - name: ventas
                source:
                  connection: erp
                  table: public.VW_VENTAS_SYNC
                  key: [CONDUCE]
                  watermark: ULTIMA_MODIFICACION
                  lookback: 5s
                target:
                  table: datos_vista
                  row_id: sync_id
                companion:
                  table: datos_seguimiento
                  columns:
                    nota: text
                    ruta: text
                    trabajado: boolean
                    preparador: text

            """
        let directory = ".ferry/demo"
        let path = directory + "/ferry.yaml"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try FileSystem.write(
                sandbox.configurationYAML(extra: extra).replacingOccurrences(of: "`ferry sandbox up`", with: "`ferry demo`"), to: path, mode: 0o600)
        } catch {
            throw FerryError(.sandbox, "cannot write \(path)", fix: "check the permissions of .ferry/", underlying: error)
        }
        return path
    }

    /// Drops what an earlier demo run left: mirror, companion, control rows and Redis keys.
    private func reset(_ pipeline: PipelineConfiguration, admin: PostgresSession, redis: RedisClient, logger: Logger) async throws {
        try await admin.withConnection { connection in
            for statement in [
                "DROP TABLE IF EXISTS public.datos_seguimiento, public.datos_vista",
                "DO $$ BEGIN IF to_regclass('public.ferry_pipelines') IS NOT NULL THEN DELETE FROM public.ferry_pipelines WHERE pipeline = 'ventas'; END IF; END $$",
                "DO $$ BEGIN IF to_regclass('public.ferry_applied') IS NOT NULL THEN DELETE FROM public.ferry_applied WHERE pipeline = 'ventas'; END IF; END $$",
                "DO $$ BEGIN IF to_regclass('public.ferry_dead_letters') IS NOT NULL THEN DELETE FROM public.ferry_dead_letters WHERE pipeline = 'ventas'; END IF; END $$",
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
        let keys = QueueKeys(pipeline: pipeline.name)
        _ = try await redis.send(DEL(keys: [keys.stream, keys.checkpoint, keys.schemas, keys.deadLetters]))
    }
}

private final class LatestProgress: Sendable {
    let value = Mutex<SyncProgress?>(nil)
}

/// Keeps a writer busy on the source and draws the progress line; returns `seconds` after the initial load.
private final class DemoDriver: Service {
    static let editedKey = 42
    let rows: Int
    let seconds: Int
    let source: VentasSource
    let target: PostgresSession
    let latest: LatestProgress
    let logger: Logger
    let finished = Atomic(false)

    init(rows: Int, seconds: Int, source: VentasSource, target: PostgresSession, latest: LatestProgress, logger: Logger) {
        self.rows = rows
        self.seconds = seconds
        self.source = source
        self.target = target
        self.latest = latest
        self.logger = logger
    }

    func run() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        var loadedAt: ContinuousClock.Instant?
        var changes = 0
        var nextKey = rows + 1
        var lastLine = clock.now - .seconds(10)
        let live = Terminal.stderrIsTTY
        while !Task.isShuttingDownGracefully {
            // The writer: the ERP invoices 25 random orders and adds 5 new ones every 250 ms.
            changes += try await source.update(randomRows: 25, upTo: nextKey - 1)
            try await source.insert(nextKey...(nextKey + 4))
            nextKey += 5
            changes += 5

            let progress = latest.value.withLock { $0 }
            if loadedAt == nil, (progress?.produced ?? 0) >= rows, try await mirrorRows() >= rows {
                loadedAt = clock.now
                if live { Terminal.writeStandardError("\r\u{1B}[K") }
                let elapsed = (clock.now - start).seconds
                Terminal.print(
                    "    initial load: \(ProgressBar.grouped(rows)) rows in \(String(format: "%.1f", elapsed))s "
                        + "(\(ProgressBar.grouped(Int(Double(rows) / max(elapsed, 0.001)))) rows/s, debug build; `make bench` measures release)")
                try await editCompanion()
                try await source.rename(key: Self.editedKey, client: "Cliente renombrado en el ERP")
                Terminal.print(
                    "    a user set nota/ruta/preparador of \(VentasSource.key(Self.editedKey)) in datos_seguimiento; the ERP then renamed its client"
                )
            }
            if let loadedAt, clock.now - loadedAt >= .seconds(seconds) { break }

            if let progress, live || clock.now - lastLine >= .seconds(2) {
                lastLine = clock.now
                var line = ProgressBar.render(progress)
                line += " | writer: \(ProgressBar.grouped(changes)) changes"
                if live { Terminal.writeStandardError("\r\u{1B}[K" + line) } else { Terminal.print("    " + line) }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
        if live { Terminal.writeStandardError("\r\u{1B}[K") }
        if loadedAt != nil {
            Terminal.print("    writer made \(ProgressBar.grouped(changes)) changes while the sync ran")
            finished.store(true, ordering: .relaxed)
        }
    }

    private func mirrorRows() async throws -> Int {
        try await target.withConnection { connection in
            // The pipeline creates the mirror when it starts; until then there is nothing to count.
            let exists = try await connection.query("SELECT to_regclass('public.datos_vista') IS NOT NULL", logger: logger)
            for try await present in exists.decode(Bool.self) where !present { return 0 }
            let rows = try await connection.query("SELECT count(*) FROM public.datos_vista", logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// What a NocoDB user does: fill in the planning fields of one order.
    private func editCompanion() async throws {
        try await target.withConnection { connection in
            try await connection.query(
                """
                UPDATE public.datos_seguimiento SET nota = 'llamar antes de entregar', ruta = 'R-07', trabajado = true, preparador = 'Ana'
                WHERE conduce = \(VentasSource.key(Self.editedKey))
                """, logger: logger)
        }
    }
}
