import ArgumentParser
import FerryCluster
import FerryCore
import FerryRedis
import FerrySandbox
import FerryServer
import FerrySync
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `ferry run`: the daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: every configured job, plus health and metrics over HTTP.",
        discussion: """
            Serves GET /health/live, GET /health/ready (200 only while every configured server answers, and the cluster's etcd when a `cluster:` section is present) and GET /metrics (Prometheus text) on http.host:http.port (default 127.0.0.1:9620). With a `cluster:` section it also runs that node's HA agent (cluster.node) and serves the cluster's control API with a bearer token (cluster.api_token): GET /cluster, POST /cluster/switchover, POST /cluster/failover, POST /cluster/rejoin/{node}. SIGTERM or SIGINT stop it cleanly.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Option(name: .customLong("http-port"), help: "Override http.port.")
    var httpPort: Int?

    @Flag(name: .customLong("allow-unsafe-redis"), help: "Run pipelines even when Redis could evict or lose queued rows.")
    var allowUnsafeRedis = false

    func run() async throws {
        var loaded = try options.load()
        if let httpPort { loaded.configuration.http.port = httpPort }
        let configuration = loaded.configuration
        let logger = Logger(label: "ferry")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let topology = try configuration.cluster.map { cluster throws(FerryError) in try ClusterTopology(configuration: cluster, file: loaded.file) }
        // A cluster's agent and control API need etcd; its nodes may be down, which is what the cluster is for.
        let readinessEtcd = topology?.etcd ?? []
        let readiness = ReadinessMonitor(configuration: configuration, logger: Logger(label: "ferry.readiness")) {
            readinessEtcd.isEmpty ? [] : await CheckCommand.etcdChecks(readinessEtcd)
        }
        var services: [any Service] = []
        if !configuration.pipelines.isEmpty {
            // Clients first, then the jobs that use them; ServiceGroup stops them in reverse order.
            let redis = try PipelineLookup.redisClient(configuration, logger: Logger(label: "ferry.redis"))
            services.append(redis)
            var pipelineOptions = TableSyncPipeline.Options()
            pipelineOptions.allowUnsafeRedis = allowUnsafeRedis
            if Terminal.stderrIsTTY {
                let bar = ProgressBar()
                pipelineOptions.progress = { progress in if progress.phase == .initialLoad { bar.update(progress) } }
            }
            for pipeline in configuration.pipelines {
                services.append(try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, options: pipelineOptions, logger: logger))
                if let every = pipeline.reconcileEvery {
                    services.append(ReconcileSchedule(pipeline: pipeline, configuration: configuration, redis: redis, every: every, logger: logger))
                }
            }
        }
        if configuration.redisSync != nil {
            let redis = try PipelineLookup.redisClient(configuration, logger: Logger(label: "ferry.redis"))
            services.append(redis)
            let sync = try RedisSyncService(configuration: configuration, redis: redis, logger: Logger(label: "ferry.redis_sync"))
            services.append(sync)
            services.append(ConfigurationReloader(options: options, logger: logger) { sync.reload($0) })
        }
        var clusterAPI: ClusterAPI?
        if let cluster = configuration.cluster, let topology {
            if let node = cluster.node {
                services.append(
                    try topology.agent(
                        for: node, ttl: cluster.ttl, watchdogExecutable: AgentCommand.executablePath, logger: Logger(label: "ferry.agent")))
            }
            if let token = cluster.apiToken {
                clusterAPI = ClusterAPI(
                    token: token, operations: try topology.operations(logger: Logger(label: "ferry.cluster")),
                    nodes: topology.nodes.map { ($0.name, $0.endpoint) }, logger: Logger(label: "ferry.cluster.api"))
            }
        }
        services.append(readiness)
        if configuration.http.enabled {
            services.append(
                FerryHTTPServer.buildApplication(
                    settings: configuration.http, readiness: readiness, registry: registry, cluster: clusterAPI, logger: Logger(label: "ferry.http")))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        logger.info(
            "ferry started",
            metadata: [
                "ferry.config": "\(loaded.file ?? "environment")",
                "ferry.http": "\(configuration.http.enabled ? "\(configuration.http.host):\(configuration.http.port)" : "off")",
                "ferry.pipelines": "\(configuration.pipelines.map(\.name).joined(separator: ","))",
            ]
        )
        try await group.run()
        logger.info("ferry stopped")
    }
}
