import ArgumentParser
import FerryCore
import FerryDaemon
import FerrySync
import Logging
import Metrics
import Prometheus

#if canImport(Glibc)
    import Glibc
#endif

/// `ferry run`: the daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: every configured job, plus health and metrics over HTTP.",
        discussion: """
            Serves GET /health/live, GET /health/ready (200 only while every configured server answers, the cluster's etcd when a `cluster:` section is present, and every job runs; a job that stopped with an error is named, with its error) and GET /metrics (Prometheus text; ferry_job_up{job} is 0 for a failed job) on http.host:http.port (default 127.0.0.1:9620). A job that fails (a pipeline whose source changed incompatibly, say) is marked failed and logged; the other jobs go on. With a `cluster:` section it also runs that node's HA agent (cluster.node) and serves the cluster's control API with a bearer token (cluster.api_token): GET /cluster, POST /cluster/switchover, POST /cluster/failover, POST /cluster/rejoin/{node}. SIGHUP reloads the Redis sync's patterns, databases and rate limit. SIGTERM or SIGINT stop it cleanly.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Option(name: .customLong("http-port"), help: "Override http.port (1-65535).")
    var httpPort: Int?

    @Flag(name: .customLong("allow-unsafe-redis"), help: "Run pipelines even when Redis could evict or lose queued rows.")
    var allowUnsafeRedis = false

    func validate() throws {
        if let httpPort, !(1...65_535).contains(httpPort) {
            throw ValidationError("--http-port \(httpPort) is not a TCP port; use 1 to 65535")
        }
    }

    func run() async throws {
        // A SIGHUP before the reloaders trap it must not end the daemon (its default): ignored until then.
        signal(SIGHUP, SIG_IGN)
        var loaded = try options.load()
        if let httpPort { loaded.configuration.http.port = httpPort }
        let configuration = loaded.configuration
        let logger = Logger(label: "ferry")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        var daemonOptions = Daemon.Options()
        daemonOptions.allowUnsafeRedis = allowUnsafeRedis
        daemonOptions.version = FerryVersion.current
        daemonOptions.reload = options.loader
        daemonOptions.watchdogExecutable = AgentCommand.executablePath
        if Terminal.stderrIsTTY {
            let bar = ProgressBar()
            daemonOptions.progress = { progress in if progress.phase == .initialLoad { bar.update(progress) } }
        }
        let daemon = try Daemon(configuration: configuration, file: loaded.file, registry: registry, options: daemonOptions, logger: logger)
        logger.info(
            "ferry started",
            metadata: [
                "ferry.config": "\(loaded.file ?? "environment")",
                "ferry.http": "\(configuration.http.enabled ? "\(configuration.http.host):\(configuration.http.port)" : "off")",
                "ferry.pipelines": "\(configuration.pipelines.map(\.name).joined(separator: ","))",
            ]
        )
        try await daemon.run()
        logger.info("ferry stopped")
    }
}
