package import FerryAPI
import FerryAPIContract
import FerryCheck
import FerryCluster
package import FerryCore
import FerryPostgres
import FerryRedis
package import FerryServer
package import FerrySync
package import Hummingbird
import HummingbirdCore
import HummingbirdTLS
package import Logging
import Metrics
import NIOCore
import NIOSSL
package import Prometheus
package import ServiceLifecycle
import Synchronization
import UnixSignals

/// `ferry run`, as a library: a configuration in, the daemon's services and its HTTP router out.
///
/// The CLI parses flags and calls ``run()``; tests build the same daemon in-process, drive ``router`` with
/// HummingbirdTesting and run ``services`` in their own service group. Clients come first in ``services``, then
/// the jobs (each a ``SupervisedJob``: one that fails is marked failed and the others go on), then readiness;
/// ``run()`` adds the HTTP server last, so it stops first.
package struct Daemon {
    package struct Options: Sendable {
        /// Run pipelines even when Redis could evict or lose queued rows.
        package var allowUnsafeRedis = false
        /// The initial load's progress (a bar on a terminal).
        package var progress: (@Sendable (SyncProgress) -> Void)?
        /// Where SIGHUP reloads the configuration from (the Redis sync's patterns, databases and rate limit); nil: no
        /// reload.
        package var reload: ConfigLoader?
        /// The `ferry` executable the HA agent starts its watchdog from; nil runs the agent without a watchdog.
        package var watchdogExecutable: String?
        /// The version `GET /` reports.
        package var version = "dev"
        /// How often readiness checks every server.
        package var readinessInterval: Duration = .seconds(5)
        /// A connection that sends no complete request head for this long (an idle keep-alive, or a client dribbling
        /// its headers) is closed.
        package var httpIdleTimeout: Duration = .seconds(30)

        package init() {}
    }

    package let configuration: FerryConfiguration
    /// Every job and how it is doing (`/health/ready` reads it).
    package let jobs: JobRegistry
    package let readiness: ReadinessMonitor
    /// The HTTP routes: health, readiness, metrics, and the cluster's control API when configured.
    package let router: Router<BasicRequestContext>
    /// With an `api:` section: the whole API of openapi.yaml (health, metrics, jobs, the cluster's control), served
    /// instead of ``router``, with tokens, permissions and audit.
    package let apiRouter: Router<FerryRequestContext>?
    /// Clients, jobs and readiness, in start order; the HTTP server is not among them (see ``run()``).
    package let services: [any Service]
    let logger: Logger
    let options: Options

    /// Builds every part; nothing connects or starts until the services run. `file` names the configuration file in
    /// messages.
    package init(configuration: FerryConfiguration, file: String?, registry: PrometheusCollectorRegistry, options: Options = .init(), logger: Logger)
        throws
    {
        let topology = try configuration.cluster.map { cluster throws(FerryError) in
            try ClusterTopology(configuration: cluster, backup: configuration.backup, file: file)
        }
        let jobs = JobRegistry()
        // A cluster's agent and control API need etcd; its nodes may be down, which is what the cluster is for.
        let readiness = ReadinessMonitor(
            configuration: configuration, etcd: topology?.etcd ?? [], jobs: jobs, interval: options.readinessInterval,
            logger: Logger(label: "ferry.readiness"))
        try Self.checkBind(configuration)
        var services: [any Service] = []
        func supervise(_ name: String, _ job: any Service) {
            services.append(SupervisedJob(name: name, job: job, registry: jobs, logger: logger))
        }
        var pipelineRedis: RedisClient?
        if !configuration.pipelines.isEmpty {
            // Clients first, then the jobs that use them; ServiceGroup stops them in reverse order.
            let redis = try PipelineLookup.redisClient(configuration, logger: Logger(label: "ferry.redis"))
            pipelineRedis = redis
            services.append(redis)
            var pipelineOptions = TableSyncPipeline.Options()
            pipelineOptions.allowUnsafeRedis = options.allowUnsafeRedis
            pipelineOptions.progress = options.progress
            for pipeline in configuration.pipelines {
                let job = try TableSyncPipeline(pipeline, configuration: configuration, redis: redis, options: pipelineOptions, logger: logger)
                supervise("pipeline:\(pipeline.name)", job)
                job.reportStalls(Self.stallReporter("pipeline:\(pipeline.name)", jobs: jobs, logger: logger))
                if let every = pipeline.reconcileEvery {
                    supervise(
                        "reconcile:\(pipeline.name)",
                        ReconcileSchedule(pipeline: pipeline, configuration: configuration, redis: redis, every: every, logger: logger))
                }
            }
        }
        if configuration.redisSync != nil {
            let redis = try PipelineLookup.redisClient(configuration, logger: Logger(label: "ferry.redis"))
            services.append(redis)
            let sync = try RedisSyncService(configuration: configuration, redis: redis, logger: Logger(label: "ferry.redis_sync"))
            supervise("redis_sync", sync)
            sync.reportStalls(Self.stallReporter("redis_sync", jobs: jobs, logger: logger))
            if let loader = options.reload {
                services.append(ConfigurationReloader(loader: loader, logger: logger) { sync.reload($0) })
            }
        }
        var clusterAPI: ClusterAPI?
        var clusterControl: DaemonClusterControl?
        if let cluster = configuration.cluster, let topology {
            if let node = cluster.node {
                supervise(
                    "cluster_agent:\(node)",
                    try topology.agent(
                        for: node, ttl: cluster.ttl, watchdogExecutable: options.watchdogExecutable, logger: Logger(label: "ferry.agent")))
            }
            if let token = cluster.apiToken {
                clusterAPI = ClusterAPI(
                    token: token, operations: try topology.operations(logger: Logger(label: "ferry.cluster")),
                    nodes: topology.nodes.map { ($0.name, $0.endpoint) }, logger: Logger(label: "ferry.cluster.api"))
                clusterAPI?.backups = topology.archiveRepository.map { ($0, topology.backupEvery) }
            }
            if configuration.api != nil {
                clusterControl = DaemonClusterControl(
                    operations: try topology.operations(logger: Logger(label: "ferry.cluster")), nodes: topology.nodes.map { ($0.name, $0.endpoint) },
                    backups: topology.archiveRepository.map { ($0, topology.backupEvery) }, logger: Logger(label: "ferry.cluster.api"))
            }
        }
        if let backup = configuration.backup, backup.fullEvery != nil || backup.incrementalEvery != nil {
            guard let endpoint = backup.postgres ?? configuration.postgres else {
                throw FerryError(.configuration, "backup.postgres: missing", fix: "add `backup.postgres` or a top-level `postgres:` section")
            }
            supervise(
                "backup",
                BackupSchedule(
                    settings: backup, endpoint: endpoint, reportStall: Self.stallReporter("backup", jobs: jobs, logger: logger),
                    logger: Logger(label: "ferry.backup")))
        }
        var apiRouter: Router<FerryRequestContext>?
        if let api = configuration.api {
            guard let postgres = configuration.postgres else {
                throw FerryError(
                    .configuration, "postgres: missing", fix: "the API keeps its jobs and audit in PostgreSQL: add a `postgres:` section")
            }
            let apiLogger = Logger(label: "ferry.api")
            let permissions = try PermissionsSource(path: api.permissions)
            let session = PostgresSession(endpoint: postgres, key: "postgres", logger: apiLogger)
            let store = JobStore(session: session, logger: apiLogger)
            let audit = try AuditLog(path: api.auditLog, session: session, logger: apiLogger)
            let queue = JobQueue(
                store: store,
                limits: [
                    .extract: api.maxJobs["extract"] ?? 2, .sync: api.maxJobs["sync"] ?? 4, .reconcile: api.maxJobs["reconcile"] ?? 1, .backup: 1,
                ],
                logger: apiLogger)
            var environment = APIEnvironment(
                version: options.version, readiness: { Self.readinessDocument(readiness.snapshot) }, metrics: { registry.emitToBuffer() },
                cluster: clusterControl, jobs: queue,
                planner: DaemonJobPlanner(configuration: configuration, settings: api, redis: pipelineRedis, logger: apiLogger))
            environment.backups = configuration.backup.flatMap { backup in
                (backup.postgres ?? configuration.postgres).map {
                    DaemonBackupControl(
                        settings: backup, endpoint: $0, ferryExecutable: options.watchdogExecutable, logger: Logger(label: "ferry.backup"))
                }
            }
            let startup = StartupGate()
            let apiGuard = APIGuard(
                permissions: permissions, audit: audit, legacyAdminToken: configuration.cluster?.apiToken, startup: startup, logger: apiLogger)
            let statusPage = try StatusPage(
                permissions: permissions, sessions: UISessions(), audit: audit, jobs: queue,
                state: UIStateSource(
                    configuration: configuration, redis: pipelineRedis, readiness: readiness, cluster: clusterControl,
                    logger: Logger(label: "ferry.ui")
                ).state)
            apiRouter = try FerryAPIRouter.build(service: FerryAPIService(environment), guard: apiGuard, statusPage: statusPage)
            services.append(
                APILifecycle(
                    store: store, audit: audit, queue: queue, permissions: permissions, session: session, startup: startup, logger: apiLogger))
        }
        services.append(readiness)
        self.apiRouter = apiRouter
        self.configuration = configuration
        self.jobs = jobs
        self.readiness = readiness
        self.services = services
        self.router = FerryHTTPServer.buildRouter(readiness: readiness, registry: registry, cluster: clusterAPI)
        self.logger = logger
        self.options = options
    }

    /// What a job calls when it stalls (a description) or moves again (nil): the registry (`/health/ready`),
    /// `ferry_job_stalled{job}`, and one log line each way, not one per check.
    static func stallReporter(_ name: String, jobs: JobRegistry, logger: Logger) -> @Sendable (String?) -> Void {
        let gauge = Gauge(label: "ferry_job_stalled", dimensions: [("job", name)])
        gauge.record(0)
        let wasStalled = Atomic(false)
        return { message in
            jobs.reportStall(name, message)
            gauge.record(message == nil ? 0 : 1)
            guard wasStalled.exchange(message != nil, ordering: .relaxed) != (message != nil) else { return }
            if let message {
                logger.warning("job stalled", metadata: ["ferry.job": "\(name)", "ferry.stall": "\(message)"])
            } else {
                logger.notice("job making progress again", metadata: ["ferry.job": "\(name)"])
            }
        }
    }

    /// The HTTP server (when `http.enabled`) on ``router`` (without `api:`), plain HTTP, with the idle timeout of
    /// ``Options/httpIdleTimeout``.
    package var httpServer: Application<RouterResponder<BasicRequestContext>>? {
        guard configuration.http.enabled else { return nil }
        return application(router, server: Self.http1(options))
    }

    /// The server `run()` starts: the API's routes (or, without `api:`, health, metrics and the cluster's control), HTTPS
    /// with `http.tls_certificate`.
    package func httpService() throws -> (any Service)? {
        guard configuration.http.enabled else { return nil }
        var server = Self.http1(options)
        if let certificate = configuration.http.tlsCertificate, let key = configuration.http.tlsKey {
            server = try .tls(server, tlsConfiguration: try Self.tls(certificate: certificate, key: key))
        }
        if let apiRouter { return application(apiRouter, server: server) }
        return application(router, server: server)
    }

    static func http1(_ options: Options) -> HTTPServerBuilder {
        .http1(configuration: .init(idleTimeout: TimeAmount(options.httpIdleTimeout)))
    }

    func application<Context>(_ router: Router<Context>, server: HTTPServerBuilder) -> Application<RouterResponder<Context>> {
        let http = configuration.http
        return Application(
            router: router, server: server, configuration: .init(address: .hostname(http.host, port: http.port), serverName: "ferry"),
            logger: Logger(label: "ferry.http"))
    }

    /// The server's TLS from PEM files; a file that does not read is an error naming it.
    static func tls(certificate: String, key: String) throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            return TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        } catch {
            throw FerryError(
                .configuration, "http.tls_certificate \(certificate) / http.tls_key \(key) do not read as a PEM certificate chain and key: \(error)",
                fix: "point them at PEM files the ferry user can read")
        }
    }

    /// Beyond loopback, the server needs TLS and tokens (an `api:` section, or the cluster's token), unless
    /// `http.allow_insecure` says a proxy in front provides them.
    static func checkBind(_ configuration: FerryConfiguration) throws {
        let http = configuration.http
        guard http.enabled, !http.isLoopback, !http.allowInsecure else { return }
        if http.tlsCertificate == nil {
            throw FerryError(
                .configuration, "http.host \(http.host) is not a loopback address and the server has no TLS",
                fix:
                    "set http.tls_certificate and http.tls_key, bind 127.0.0.1, or set http.allow_insecure: true when a proxy in front terminates TLS"
            )
        }
        if configuration.api == nil && configuration.cluster?.apiToken == nil {
            throw FerryError(
                .configuration, "http.host \(http.host) is not a loopback address and no tokens are configured",
                fix: "add an api: section with a permissions file (docs/API.md), bind 127.0.0.1, or set http.allow_insecure: true")
        }
    }

    /// The readiness monitor's snapshot as the API's document.
    static func readinessDocument(_ snapshot: ReadinessMonitor.Snapshot) -> Components.Schemas.Readiness {
        .init(
            status: snapshot.isReady ? .ready : .notReady,
            endpoints: (snapshot.checks ?? []).map { check in
                .init(name: check.name, address: check.address, status: check.status.rawValue, detail: check.isOK ? nil : check.detail)
            },
            jobs: snapshot.jobs.map { .init(name: $0.name, state: $0.state.rawValue, error: $0.error) })
    }

    /// Runs every service and the HTTP server (when `http.enabled`) until SIGTERM or SIGINT.
    package func run() async throws {
        var services = services
        if let httpServer = try httpService() { services.append(httpServer) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
