import FerryCore
import Foundation
import Testing

@Suite("Configuration loading")
struct ConfigLoaderTests {
    /// A scratch directory with the given files.
    func directory(_ files: [String: String]) throws -> String {
        let path = NSTemporaryDirectory() + "ferry-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8) }
        return path
    }

    func load(_ files: [String: String], environment: [String: String] = [:], explicit: String? = nil) throws -> ConfigLoader.Loaded {
        try ConfigLoader(explicitPath: explicit, environment: environment, directory: try directory(files)).load()
    }

    func issues(_ files: [String: String], environment: [String: String] = [:]) -> [String] {
        do {
            _ = try load(files, environment: environment)
            return []
        } catch let error as ConfigurationError {
            return error.issues.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    static let full = """
        log:
          level: debug
          format: json
          file: logs/sync.log
        postgres:
          host: db.internal
          port: 5433
          database: syncdb
          user: sysadmin
          password: ${PG_PASSWORD}
          schema: sync
        redis:
          host: cache.internal
          port: 6380
          password: ${REDIS_PASSWORD:-fallback}
          db: 2
          idle_tick_hint: false
        sqlserver:
          host: 10.0.0.6
          database: g_FACU
          user: INV
          password: secret-mssql
          view: VW_VENTAS_SYNC
        sync:
          interval: 500ms
          batch_size: 2000
        pipelines:
          - name: ventas
            source:
              key: [CONDUCE]
              watermark: ULTIMA_MODIFICACION
              lookback: 2m
            target:
              table: datos_vista
              readers: [reporting, "Analysts"]
            columns:
              CONDUCE: conduce
              FECHA_EMISION: {name: fecha_emision, type: date}
              INTERNAL_NOTE: exclude
            companion:
              table: datos_seguimiento
              columns:
                nota: text
                trabajado: boolean
              editors: [sales_app]
        """

    @Test func readsEveryKey() throws {
        let loaded = try load(["ferry.yaml": Self.full], environment: ["PG_PASSWORD": "pg-secret"])
        let config = loaded.configuration
        #expect(config.log.level == .debug)
        #expect(config.log.format == .json)
        #expect(config.log.file == "logs/sync.log")
        #expect(config.postgres?.host == "db.internal")
        #expect(config.postgres?.port == 5433)
        #expect(config.postgres?.password?.value == "pg-secret")
        #expect(config.postgres?.schema == "sync")
        #expect(config.redis?.password?.value == "fallback")
        #expect(config.redis?.db == 2)
        #expect(config.redis?.idleTickHint == false)
        #expect(config.sqlserver?.view == "VW_VENTAS_SYNC")
        #expect(config.sync.interval == .milliseconds(500))
        #expect(config.sync.batchSize == 2000)
        let pipeline = try #require(config.pipelines.first)
        #expect(pipeline.name == "ventas")
        #expect(pipeline.source.connection == "sqlserver")
        #expect(pipeline.source.table == "VW_VENTAS_SYNC")
        #expect(pipeline.source.key == ["CONDUCE"])
        #expect(pipeline.source.lookback == .seconds(120))
        #expect(pipeline.target.schema == "sync")
        #expect(pipeline.batchSize == 2000)
        #expect(pipeline.interval == .milliseconds(500))
        #expect(pipeline.columns.first { $0.source == "FECHA_EMISION" }?.type == "date")
        #expect(pipeline.columns.first { $0.source == "INTERNAL_NOTE" }?.exclude == true)
        #expect(pipeline.companion?.columns.map(\.name) == ["nota", "trabajado"])
        #expect(pipeline.target.readers == ["reporting", "Analysts"])
        #expect(pipeline.companion?.editors == ["sales_app"])
        #expect(config.endpoints.map(\.name) == ["postgres", "redis", "sqlserver"])
    }

    @Test func environmentOverridesTheFile() throws {
        let environment = [
            "PG_PASSWORD": "x", "PG_HOST": "override.host", "PG_PORT": "6000", "PG_SCHEMA": "other", "REDIS_DB": "5", "REDIS_PASSWORD": "r",
            "MSSQL_VIEW": "VW_OTHER", "SYNC_INTERVAL": "60", "BATCH_SIZE": "50", "LOG_LEVEL": "warning",
        ]
        let config = try load(["ferry.yaml": Self.full], environment: environment).configuration
        #expect(config.postgres?.host == "override.host")
        #expect(config.postgres?.port == 6000)
        #expect(config.postgres?.schema == "other")
        #expect(config.redis?.db == 5)
        #expect(config.redis?.password?.value == "r")
        #expect(config.sqlserver?.view == "VW_OTHER")
        #expect(config.sync.interval == .seconds(60))
        #expect(config.sync.batchSize == 50)
        #expect(config.log.level == .warning)
        #expect(config.pipelines.first?.source.table == "VW_OTHER")
    }

    @Test func environmentAloneIsEnough() throws {
        let config = try load([:], environment: ["PG_HOST": "h", "PG_DATABASE": "d", "PG_USER": "u", "REDIS_HOST": "r"]).configuration
        #expect(config.postgres?.host == "h")
        #expect(config.postgres?.port == 5432)
        #expect(config.redis?.host == "r")
        #expect(config.redis?.port == 6379)
    }

    @Test func dotEnvIsReadAndRealEnvironmentWins() throws {
        let files = [
            "ferry.yaml": "postgres:\n  host: h\n  database: d\n  user: u\n  password: ${PG_PASSWORD}\n",
            ".env": "# comment\nexport PG_PASSWORD='from-dotenv'\nREDIS_HOST=dot.redis # trailing comment\nREDIS_PORT=\"6390\"\n",
        ]
        let fromFile = try load(files).configuration
        #expect(fromFile.postgres?.password?.value == "from-dotenv")
        #expect(fromFile.redis?.host == "dot.redis")
        #expect(fromFile.redis?.port == 6390)
        let overridden = try load(files, environment: ["PG_PASSWORD": "from-env"]).configuration
        #expect(overridden.postgres?.password?.value == "from-env")
    }

    /// A 400-byte "billion laughs" (anchors nested nine deep) used to take 4.8 GB: it is refused at a bound, fast.
    @Test func nestedAliasesAreRefusedAtABound() throws {
        var text = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"]
        var previous = "a"
        for name in names {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
            previous = name
        }
        text += "redis_sync:\n  streams:\n    patterns: *i\n"
        let started = ContinuousClock.now
        do {
            _ = try ConfigLoader.parseYAML(text, file: "bomb.yaml")
            Issue.record("the bomb was accepted")
        } catch {
            #expect(error.description.contains("expands to more than 100000 values"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    /// Column types go into DDL: one that is not a type name is a configuration error, never SQL.
    @Test func columnTypesThatAreNotTypeNamesAreRefused() {
        let found = issues([
            "ferry.yaml": """
            redis_sync:
              streams:
                mappings:
                  - stream: "orders:*"
                    table: orders
                    columns:
                      amount: {column: amount, type: "text, x int); DROP TABLE orders; --"}
            """
        ])
        #expect(
            found.contains { $0.contains("redis_sync.streams.mappings[0].columns.amount.type") && $0.contains("is not a PostgreSQL type name") },
            "\(found)")
    }

    @Test func reportsEveryProblemAtOnceWithKeyPathAndFix() {
        let found = issues([
            "ferry.yaml": """
            postgres:
              hots: typo
              port: abc
              database: d
              user: u
            redis:
              port: 70000
            log:
              level: loud
            pipelines:
              - name: ventas
                source:
                  connection: postgres
                  key: [id]
                  watermark: updated_at
                target:
                  table: mirror
            """
        ])
        #expect(found.contains { $0.hasPrefix("pipelines[0].source.table: missing — name the view or table to read") })
        #expect(found.contains { $0.hasPrefix("postgres.hots: unknown key — did you mean `host`?") })
        #expect(found.contains { $0.hasPrefix("postgres.port: \"abc\" is not a whole number — use a number from 1 to 65535") })
        #expect(found.contains { $0.hasPrefix("redis.port: 70000 is out of range") })
        #expect(found.contains { $0.hasPrefix("log.level: \"loud\" is not allowed — use one of `trace`") })
        #expect(found.count == 5, "\(found)")
    }

    @Test func lookbackEveryMustBeShorterThanTheLookback() throws {
        let pipeline = """
            postgres: {host: h, database: d, user: u}
            redis: {host: r}
            pipelines:
              - name: ventas
                source: {table: t, key: [id], watermark: w, lookback: 30s, lookback_every: LB}
                target: {table: m}
            """
        let found = issues(["ferry.yaml": pipeline.replacingOccurrences(of: "LB", with: "45s")])
        #expect(found.contains { $0.hasPrefix("pipelines[0].source.lookback_every: must be shorter than lookback (30s)") }, "\(found)")
        let loaded = try load(["ferry.yaml": pipeline.replacingOccurrences(of: "LB", with: "5s")])
        #expect(loaded.configuration.pipelines.first?.source.lookbackEvery == .seconds(5))
    }

    /// `change_tracking: true` replaces the watermark on a SQL Server table; with a query, a PostgreSQL source or a
    /// watermark setting it is refused by name.
    @Test func changeTrackingIsSQLServersAndReplacesTheWatermark() throws {
        let servers = """
            postgres: {host: h, database: d, user: u}
            redis: {host: r}
            sqlserver: {host: s, database: d, user: u, password: p}
            """
        let loaded = try load([
            "ferry.yaml": servers
                + "\npipelines:\n  - name: ventas\n    source: {table: dbo.Ventas, key: [Id], change_tracking: true}\n    target: {table: m}\n"
        ])
        let source = try #require(loaded.configuration.pipelines.first?.source)
        #expect(source.changeTracking)
        #expect(source.watermark == PipelineConfiguration.Source.changeVersionColumn)
        #expect(source.lookback == .zero)
        #expect(loaded.configuration.renderYAML(tree: nil).contains("change_tracking: true"))

        let refused = issues([
            "ferry.yaml": servers + """

                pipelines:
                  - name: a
                    source: {query: "SELECT 1", key: [Id], change_tracking: true, watermark: w, lookback: 5s}
                    target: {table: m}
                  - name: b
                    source: {connection: postgres, table: t, key: [Id], change_tracking: true}
                    target: {table: m}
                """
        ])
        #expect(
            refused.contains { $0.hasPrefix("pipelines[0].source.change_tracking: reads a table's changes; this source is a `query`") }, "\(refused)")
        #expect(refused.contains { $0.hasPrefix("pipelines[0].source.watermark: does not go with change_tracking") }, "\(refused)")
        #expect(refused.contains { $0.hasPrefix("pipelines[0].source.lookback: does not go with change_tracking") }, "\(refused)")
        #expect(refused.contains { $0.hasPrefix("pipelines[1].source.change_tracking: is SQL Server's Change Tracking") }, "\(refused)")
    }

    @Test func issuesSayWhereAValueCameFrom() {
        let found = issues(["ferry.yaml": "redis:\n  host: h\n"], environment: ["REDIS_PORT": "nope"])
        #expect(found == ["redis.port: \"nope\" is not a whole number — use a number from 1 to 65535 ($REDIS_PORT)"])
        let fromFile = issues(["ferry.yaml": "redis:\n  host: h\n  db: x\n"])
        #expect(fromFile.first?.contains("ferry.yaml:3") == true)
    }

    @Test func pipelineNeedsItsServersAndUniqueNames() {
        let found = issues([
            "ferry.yaml": """
            pipelines:
              - name: a
                source: {connection: erp, table: t, key: id, watermark: w}
                target: {table: m}
              - name: a
                source: {connection: postgres, table: t, key: id, watermark: w}
                target: {table: m2}
            """
        ])
        #expect(found.contains { $0.hasPrefix("pipelines[0].source.connection: \"erp\" is not configured") })
        #expect(found.contains { $0.hasPrefix("pipelines[1].name: \"a\" is also the name of pipelines[0]") })
        #expect(found.contains { $0.hasPrefix("postgres: missing — pipelines write to PostgreSQL") })
        #expect(found.contains { $0.hasPrefix("redis: missing — pipelines queue rows in Redis") })
    }

    @Test func unsetVariableIsAnIssue() {
        let found = issues(["ferry.yaml": "postgres:\n  host: h\n  database: d\n  user: u\n  password: ${NOT_SET_ANYWHERE}\n"])
        #expect(found.count == 1)
        #expect(
            found.first?.hasPrefix("postgres.password: uses ${NOT_SET_ANYWHERE}, which is not set — export NOT_SET_ANYWHERE or add it to .env")
                == true)
    }

    @Test func brokenYAMLNamesTheLineButNotTheContent() {
        let found = issues(["ferry.yaml": "postgres:\n  host: h\n  password: \"s3cret\n  user: [\n"])
        #expect(found.count == 1)
        let message = found.first ?? ""
        #expect(message.contains("is not valid YAML"))
        #expect(message.contains("line"))
        #expect(!message.contains("s3cret"))
    }

    @Test func explicitMissingFileIsClear() {
        #expect(throws: ConfigurationError.self) {
            _ = try load([:], explicit: "nope.yaml")
        }
        do {
            _ = try load([:], explicit: "nope.yaml")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("nope.yaml: configuration file not found (from --config)"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func ferryConfigVariableChoosesTheFile() throws {
        let dir = try directory(["custom.yaml": "redis:\n  host: from-custom\n"])
        let loaded = try ConfigLoader(environment: ["FERRY_CONFIG": dir + "/custom.yaml"], directory: dir).load()
        #expect(loaded.configuration.redis?.host == "from-custom")
        #expect(loaded.file == dir + "/custom.yaml")
    }

    @Test func renderedConfigurationHidesSecretsAndShowsOrigins() throws {
        let loaded = try load(["ferry.yaml": Self.full], environment: ["PG_PASSWORD": "pg-secret", "REDIS_HOST": "env.redis"])
        let text = loaded.configuration.renderYAML(tree: loaded.tree)
        #expect(!text.contains("pg-secret"))
        #expect(!text.contains("secret-mssql"))
        #expect(!text.contains("fallback"))
        #expect(text.contains("password: \"***\""))
        #expect(text.contains("host: env.redis  # from $REDIS_HOST"))
        #expect(text.contains("connect_timeout: 10s  # default"))
        // What is printed reads back as the same configuration (secrets aside).
        let reparsed = try ConfigLoader.parseYAML(text, file: "rendered.yaml")
        let issues = ConfigIssues()
        let again = FerryConfiguration.read(ConfigReader(node: reparsed, issues: issues))
        #expect(issues.all.isEmpty, "\(issues.all)")
        #expect(again.pipelines == loaded.configuration.pipelines)
        #expect(again.redis?.host == "env.redis")
        #expect(again.redis?.idleTickHint == false)
    }

    @Test func theClusterSectionTakesAnAPITokenFromTheEnvironmentAndNeverPrintsIt() throws {
        let yaml = """
            cluster:
              directory: /srv/ferry/cluster
              node: node2
              api_token: ${CLUSTER_TOKEN}
            """
        let loaded = try load(["ferry.yaml": yaml], environment: ["CLUSTER_TOKEN": "a-long-enough-cluster-token"])
        let cluster = try #require(loaded.configuration.cluster)
        #expect(cluster.directory == "/srv/ferry/cluster")
        #expect(cluster.node == "node2")
        #expect(cluster.apiToken?.value == "a-long-enough-cluster-token")
        let text = loaded.configuration.renderYAML(tree: loaded.tree)
        #expect(!text.contains("a-long-enough-cluster-token"))
        #expect(text.contains("api_token: \"***\""), "\(text)")
        let short = issues(["ferry.yaml": yaml], environment: ["CLUSTER_TOKEN": "short"])
        #expect(short.contains { $0.hasPrefix("cluster.api_token: is shorter than 16 characters") && $0.contains("openssl rand") }, "\(short)")
        let typo = issues(["ferry.yaml": "cluster:\n  api_tokn: x\n"])
        #expect(typo.contains { $0.contains("cluster.api_tokn") }, "\(typo)")
    }

    @Test func aClusterDefinedNodeByNodeIsReadValidatedAndRedacted() throws {
        let yaml = """
            cluster:
              scope: prod
              etcd: [http://10.0.0.5:2379, http://10.0.0.6:2379]
              replication: {user: replicator, password: "${REPLICATION_PASSWORD}"}
              superuser: {user: postgres, password: "${SUPERUSER_PASSWORD}"}
              synchronous: 1
              node: node2
              nodes:
                - {name: node1, host: 10.0.0.11, data_directory: /var/lib/postgresql/15/main}
                - {name: node2, host: 10.0.0.12, port: 5433, data_directory: /srv/pg}
            """
        let environment = ["REPLICATION_PASSWORD": "replication-secret", "SUPERUSER_PASSWORD": "superuser-secret"]
        let loaded = try load(["ferry.yaml": yaml], environment: environment)
        let cluster = try #require(loaded.configuration.cluster)
        #expect(cluster.isDefined)
        #expect(cluster.nodes.map(\.name) == ["node1", "node2"])
        #expect(cluster.nodes[0].port == 5432 && cluster.nodes[1].port == 5433)
        #expect(cluster.etcd.count == 2 && cluster.scope == "prod" && cluster.synchronous == 1)
        #expect(cluster.replication?.password?.value == "replication-secret")
        let text = loaded.configuration.renderYAML(tree: loaded.tree)
        #expect(!text.contains("replication-secret") && !text.contains("superuser-secret"), "\(text)")
        #expect(text.contains("host: \"10.0.0.12\"") || text.contains("host: 10.0.0.12"), "\(text)")

        // Every problem at once, each with its key path and the fix.
        let broken = """
            cluster:
              node: node9
              nodes:
                - {name: node1, host: 10.0.0.11}
                - {name: Node-2, host: 10.0.0.12}
                - {name: node1}
            """
        let found = issues(["ferry.yaml": broken])
        #expect(found.contains { $0.hasPrefix("cluster.etcd: missing") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("cluster.replication: missing") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("cluster.superuser: missing") }, "\(found)")
        #expect(found.contains { $0.contains("cluster.nodes[1].name") && $0.contains("cannot name a replication slot") }, "\(found)")
        #expect(found.contains { $0.contains("cluster.nodes[2].host: missing") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("cluster.node: \"node9\" is not one of the nodes") }, "\(found)")
    }

    /// The shipped examples load cleanly; examples/ventas.yaml expresses the original job's two tables.
    @Test(arguments: ["ferry.yaml", "ventas.yaml", "redis-sync.yaml"]) func shippedExamplesAreValid(file: String) throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples").standardized.path
        var secrets = ["PG_PASSWORD": "p", "REDIS_PASSWORD": "r"]
        if file == "ventas.yaml" { secrets["MSSQL_PASSWORD"] = "m" }
        let loaded = try ConfigLoader(explicitPath: examples + "/" + file, environment: secrets, directory: examples).load()
        if file == "redis-sync.yaml" {
            let sync = try #require(loaded.configuration.redisSync)
            #expect(sync.databases == Array(0...15))
            #expect(sync.streams.patterns == ["*-stream", "device:*:stream", "biosignal-*"])
            #expect(sync.streams.mappings.first?.columns.map(\.column) == ["order_id", "amount", "customer", "placed_at"])
        }
        guard file == "ventas.yaml" else { return }
        let ventas = try #require(loaded.configuration.pipelines.first)
        #expect(ventas.source.key == ["CONDUCE"])
        #expect(ventas.source.watermark == "ULTIMA_MODIFICACION")
        #expect(ventas.target.table == "datos_vista")
        #expect(ventas.target.rowID == "sync_id")
        #expect(ventas.companion?.table == "datos_seguimiento")
        #expect(ventas.companion?.columns.map(\.name) == ["nota", "ruta", "trabajado", "preparador"])
    }

    /// How long an apply may wait for PostgreSQL before its connection is closed and the batch retried, per job.
    @Test func applyTimeoutsAreReadCheckedAndShown() throws {
        let text = """
            postgres: {host: h, database: d, user: u}
            redis: {host: r}
            redis_sync:
              streams: {patterns: ["*"], apply_timeout: RS}
            pipelines:
              - name: ventas
                source: {table: t, key: [id], watermark: w}
                target: {table: m}
                apply_timeout: PL
            """
        let loaded = try load(["ferry.yaml": text.replacingOccurrences(of: "RS", with: "90s").replacingOccurrences(of: "PL", with: "2m")])
        #expect(loaded.configuration.redisSync?.streams.applyTimeout == .seconds(90))
        #expect(loaded.configuration.pipelines.first?.applyTimeout == .seconds(120))
        let shown = loaded.configuration.renderYAML(tree: loaded.tree)
        #expect(shown.contains("apply_timeout: 90s") && shown.contains("apply_timeout: 2m"), "\(shown)")
        let defaults = try load([
            "ferry.yaml": text.replacingOccurrences(of: ", apply_timeout: RS", with: "").replacingOccurrences(of: "\n    apply_timeout: PL", with: "")
        ])
        #expect(defaults.configuration.redisSync?.streams.applyTimeout == .seconds(60))
        #expect(defaults.configuration.pipelines.first?.applyTimeout == .seconds(60))
        let found = issues(["ferry.yaml": text.replacingOccurrences(of: "RS", with: "500ms").replacingOccurrences(of: "PL", with: "soon")])
        #expect(found.contains { $0.hasPrefix("redis_sync.streams.apply_timeout:") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("pipelines[0].apply_timeout:") }, "\(found)")
    }

    @Test func sqlServerLoginOptionsAreReadCheckedAndShown() throws {
        let text = """
            postgres: {host: h, database: d, user: u}
            redis: {host: r}
            sqlserver: {host: s, database: g_FACU, user: INV, view: V, tds_version: "TV", query_timeout: QT}
            """
        let loaded = try load(["ferry.yaml": text.replacingOccurrences(of: "TV", with: "7.3").replacingOccurrences(of: "QT", with: "2m")])
        #expect(loaded.configuration.sqlserver?.tdsVersion == .v73)
        #expect(loaded.configuration.sqlserver?.queryTimeout == .seconds(120))
        let shown = loaded.configuration.renderYAML(tree: loaded.tree)
        #expect(shown.contains("tds_version: \"7.3\"") || shown.contains("tds_version: 7.3"), "\(shown)")
        #expect(shown.contains("query_timeout: 2m"), "\(shown)")
        let defaults = try load(["ferry.yaml": text.replacingOccurrences(of: ", tds_version: \"TV\", query_timeout: QT", with: "")])
        #expect(defaults.configuration.sqlserver?.tdsVersion == .v74)
        #expect(defaults.configuration.sqlserver?.queryTimeout == .seconds(300))
        let found = issues(["ferry.yaml": text.replacingOccurrences(of: "TV", with: "8.0").replacingOccurrences(of: "QT", with: "10ms")])
        #expect(found.contains { $0.hasPrefix("sqlserver.tds_version:") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("sqlserver.query_timeout:") }, "\(found)")
        let encrypted = try load([
            "ferry.yaml": text.replacingOccurrences(
                of: ", tds_version: \"TV\", query_timeout: QT", with: ", encryption: require, ca_file: /etc/ca.pem")
        ])
        #expect(encrypted.configuration.sqlserver?.encryption == .require)
        #expect(encrypted.configuration.sqlserver?.caFile == "/etc/ca.pem")
        #expect(defaults.configuration.sqlserver?.encryption == .request)
        let wrong = issues(["ferry.yaml": text.replacingOccurrences(of: ", tds_version: \"TV\", query_timeout: QT", with: ", encryption: always")])
        #expect(wrong.contains { $0.hasPrefix("sqlserver.encryption:") && $0.contains("require") }, "\(wrong)")
    }

    @Test func theOriginalRedisSyncVariablesOverrideTheFile() throws {
        let environment = [
            "PG_HOST": "db", "PG_DATABASE": "d", "PG_USER": "u", "REDIS_HOST": "r",
            "REDIS_DB_SEARCH_RANGE": "0,2,3-5", "STREAM_DISCOVERY_PATTERNS": "*-stream,device:*:stream", "STREAM_CONFLICT_OVERWRITE": "true",
            "STREAM_BATCH_SIZE": "250", "STREAM_POLL_INTERVAL": "0.5", "KEY_VALUE_PATTERNS": "user:*", "REDIS_RATE_LIMIT": "100",
            "REDIS_MAX_RETRIES": "5", "PG_BACKOFF_MAX": "30", "STREAM_TABLE_NAME": "events", "REDIS_STREAMS": "a,db3:b",
        ]
        let loaded = try ConfigLoader(explicitPath: nil, environment: environment, directory: "/nonexistent").load()
        let sync = try #require(loaded.configuration.redisSync)
        #expect(sync.databases == [0, 2, 3, 4, 5])
        #expect(sync.streams.patterns == ["*-stream", "device:*:stream"])
        #expect(sync.streams.conflict == .overwrite)
        #expect(sync.streams.batchSize == 250)
        #expect(sync.streams.pollInterval == .milliseconds(500))
        #expect(sync.streams.keys == ["a", "db3:b"])
        #expect(sync.streams.table == "events")
        #expect(sync.keyValues.patterns == ["user:*"])
        #expect(sync.rateLimit == 100)
        #expect(sync.redisRetry.maxRetries == 5)
        #expect(sync.postgresRetry.maximum == .seconds(30))
    }

    @Test func aBadDatabaseRangeNamesTheKeyAndTheFix() throws {
        let environment = ["PG_HOST": "db", "PG_DATABASE": "d", "PG_USER": "u", "REDIS_HOST": "r", "REDIS_DB_SEARCH_RANGE": "0-x"]
        #expect {
            try ConfigLoader(explicitPath: nil, environment: environment, directory: "/nonexistent").load()
        } throws: { error in
            "\(error)".contains("redis_sync.databases") && "\(error)".contains("0,2,3-5")
        }
    }

    @Test func secretsNeverPrint() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "***")
        #expect(String(reflecting: secret) == "***")
        var dumped = ""
        dump(PostgresEndpoint(host: "h", port: 1, database: "d", user: "u", password: secret), to: &dumped)
        #expect(!dumped.contains("hunter2"))
    }
}
