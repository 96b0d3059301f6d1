// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The hot-path modules (RESP codec, Redis client, and code that inlines them) skip dynamic exclusivity checks
/// in release builds: they cost about 30% of the client's CPU per pipelined batch (measured with
/// `ferry bench redis`, see docs/BENCHMARKS.md). Debug builds, which every test runs, keep the checks.
let hotPathSettings: [SwiftSetting] =
    swiftSettings + [
        .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
    ]

/// Code generated from openapi.yaml: built without warnings (its imports trip InternalImportsByDefault's unused-import
/// warning before Swift 6.4, which the generator silences itself).
let generatedSettings: [SwiftSetting] = swiftSettings + [.unsafeFlags(["-suppress-warnings"])]

let package = Package(
    name: "ferry",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
        // For the fuzzing package in Fuzz/ (FerryCore's public surface is FerryFuzzEntry only).
        .library(name: "FerryRESP", targets: ["FerryRESP"]),
        .library(name: "FerryCore", targets: ["FerryCore"]),
        // FerrySQLServerFuzzEntry only (the TDS reply fuzz target).
        .library(name: "FerrySQLServer", targets: ["FerrySQLServer"]),
        // FerryParquetFuzzEntry only (the Parquet reader's fuzz target).
        .library(name: "FerryParquet", targets: ["FerryParquet"]),
        // The Swift SDK of Ferry's HTTP API, generated from openapi.yaml (scripts/openapi.sh).
        .library(name: "FerryClient", targets: ["FerryClient", "FerryAPIContract"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        // Already built for postgres-nio (SCRAM); FerryBackup's SHA-256 of archived files.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.9.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.0"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0", traits: []),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        // Values, errors, configuration model and loading, retry/backoff. No I/O beyond reading config files.
        .target(
            name: "FerryCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: hotPathSettings
        ),
        // RESP2/RESP3 codec: tokens, decoder, command encoder. No I/O.
        .target(
            name: "FerryRESP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio")
            ],
            swiftSettings: hotPathSettings
        ),
        // Redis client on SwiftNIO: connections, pipelining, pool, typed commands.
        .target(name: "CFerryLinux"),
        .target(
            name: "FerryRedis",
            dependencies: [
                "CFerryLinux",
                "FerryCore",
                "FerryRESP",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        // PostgreSQL helpers on postgres-nio: client configuration, diagnostics, identifier quoting.
        .target(
            name: "FerryPostgres",
            dependencies: [
                "FerryCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // PostgreSQL node control: initdb'd data directories started, stopped, fenced, promoted, rewound and copied with
        // the server's own programs; process handling and the account servers run as. Production code (the HA agent)
        // and the sandbox share it.
        .target(
            name: "FerryPostgresNode",
            dependencies: [
                "FerryCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // etcd's v3 JSON API: leases, compare-and-set, watches, health. The HA agent, the control API and the checks
        // share it.
        .target(
            name: "FerryEtcd",
            dependencies: [
                "FerryCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Private PostgreSQL / Redis / etcd servers on free loopback ports, for the sandbox, the demo and every test;
        // on top of FerryPostgresNode.
        .target(
            name: "FerrySandbox",
            dependencies: [
                "FerryCore",
                "FerryPostgresNode",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // Endpoint checks shared by `ferry check` and the readiness probe.
        .target(
            name: "FerryCheck",
            dependencies: [
                "FerryCore",
                "FerryEtcd",
                "FerryPostgres",
                "FerryRedis",
                "FerryRESP",
                "FerrySQLServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP server: health, metrics, the cluster's control API.
        .target(
            name: "FerryServer",
            dependencies: [
                "FerryCore",
                "FerryCheck",
                "FerryCluster",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP API's contract: the types and server protocol generated from openapi.yaml (scripts/openapi.sh;
        // committed, with the spec's SHA-256, which a test compares). Generated code's warnings are not Ferry's to fix.
        .target(
            name: "FerryAPIContract",
            dependencies: [
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            exclude: ["Generated/openapi.yaml.sha256"],
            swiftSettings: generatedSettings
        ),
        // What serves the contract: tokens and permissions, audit, jobs.
        .target(
            name: "FerryAPI",
            dependencies: [
                "FerryAPIContract",
                "FerryCore",
                "FerryPostgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The generated Swift client of the HTTP API (a library product for users), on the contract's types.
        .target(
            name: "FerryClient",
            dependencies: [
                "FerryAPIContract",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            swiftSettings: generatedSettings
        ),
        // Table sync: source -> Redis stream -> PostgreSQL mirror + companion; reconciliation.
        .target(
            name: "FerrySync",
            dependencies: [
                .product(name: "DequeModule", package: "swift-collections"),
                "FerryCore",
                "FerryPostgres",
                "FerryRedis",
                "FerrySQLServer",
                "FerryRESP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        // High availability: replication state, later the agent, failover, switchover and rejoin.
        .target(
            name: "FerryCluster",
            dependencies: [
                "FerryBackup",
                "FerryCore",
                "FerryEtcd",
                "FerryPostgres",
                "FerryPostgresNode",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon's composition root: configuration in, the services of `ferry run` and its HTTP router out, so
        // tests build the same daemon in-process. Also the rule for a job that fails (marked failed, the others go on).
        .target(
            name: "FerryDaemon",
            dependencies: [
                "FerryAPI",
                "FerryAPIContract",
                "FerryBackup",
                "FerryCheck",
                "FerryCluster",
                "FerryCore",
                "FerryDatabricks",
                "FerryExtract",
                "FerryParquet",
                "FerryPostgres",
                "FerryRedis",
                "FerryServer",
                "FerrySync",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmarks that measure Ferry beside a peer in the same run (`ferry bench …`).
        .target(
            name: "FerryBench",
            dependencies: [
                "FerryAPI",
                "FerryAPIContract",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "FerrySQLServer",
                "TDSEmulator",
                "FerryCluster",
                "FerryCore",
                "FerryEtcd",
                "FerryPostgresNode",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "FerryPostgres",
                "FerryRedis",
                "FerryRESP",
                "FerrySandbox",
                "FerrySync",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: hotPathSettings
        ),
        // zstd, lz4 and zlib (Debian's libzstd-dev, liblz4-dev, zlib1g-dev): backups' and archived WAL's compression.
        .systemLibrary(
            name: "CCompression", path: "Sources/CCompression", providers: [.apt(["libzstd-dev", "liblz4-dev", "zlib1g-dev", "libsnappy-dev"])]),
        // Parquet files: Thrift compact metadata, encodings, compression, a streaming writer and reader. Bytes in,
        // bytes out: no files, sockets or clocks inside (docs/PARQUET.md).
        .target(
            name: "FerryParquet",
            dependencies: ["CCompression"],
            swiftSettings: hotPathSettings
        ),
        // Backups and the WAL archive: repositories, compression, archived files' format (docs/BACKUPS.md).
        .target(
            name: "FerryBackup",
            dependencies: [
                "CCompression",
                "CFerryLinux",
                "FerryCore",
                "FerryPostgres",
                "FerryPostgresNode",
                "FerryRedis",
                // The S3 repository's HTTP client.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryAPI",
                "FerryBackup",
                "FerryCluster",
                "FerryDaemon",
                "FerryDatabricks",
                "FerryExtract",
                "FerryParquet",
                "FerryEtcd",
                "FerryPostgresNode",
                "FerrySync",
                "FerryBench",
                "FerryCheck",
                "FerryCore",
                "FerryPostgres",
                "FerryRedis",
                "FerrySandbox",
                "FerryServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A SQL Server as far as a TDS client can tell, answering from PostgreSQL: the SQL Server connector's tests
        // run against it (SQL Server cannot run here). Test code only; FreeTDS's tsql and python-tds check it.
        // FreeTDS's DB-Library (Debian's freetds-dev), the library under pymssql.
        .systemLibrary(name: "CFreeTDS", path: "Sources/CFreeTDS", providers: [.apt(["freetds-dev"])]),
        .target(
            name: "FerrySQLServer",
            dependencies: [
                "CFreeTDS",
                "FerryCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TDSEmulator",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/TDSEmulator",
            swiftSettings: swiftSettings
        ),
        // The lakehouse extraction: the query library and its parameters, queries streamed into Parquet files, and
        // their destinations (a directory, a Databricks Volume) (docs/LAKEHOUSE.md).
        .target(
            name: "FerryExtract",
            dependencies: [
                "FerryCore",
                "FerryDatabricks",
                "FerryParquet",
                "FerryPostgres",
                "FerrySQLServer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: hotPathSettings
        ),
        // Databricks' Files API (Unity Catalog Volumes): directories, uploads, downloads, listings; a personal access
        // token or OAuth machine-to-machine credentials; retries on 429/503 (docs/LAKEHOUSE.md).
        .target(
            name: "FerryDatabricks",
            dependencies: [
                "FerryCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Databricks' Files API as far as a client can tell, on Hummingbird: the Volume tests run against it
        // (Databricks cannot run here); the official databricks-sdk checks it. Test code only.
        .target(
            name: "DatabricksEmulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/DatabricksEmulator",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryDatabricksTests",
            dependencies: [
                "FerryDatabricks", "DatabricksEmulator", "FerryCore",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryAPITests",
            dependencies: ["FerryAPI", "FerryCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryExtractTests",
            dependencies: ["FerryExtract", "FerryCore", "FerryParquet", "FerrySQLServer"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryParquetTests",
            dependencies: ["FerryParquet"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryBackupTests",
            dependencies: ["FerryBackup", "FerryCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryCoreTests",
            dependencies: ["FerryCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryClusterTests",
            dependencies: ["FerryCluster", "FerryEtcd"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryRESPTests",
            dependencies: [
                "FerryRESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryRedisTests",
            dependencies: [
                "FerryRedis",
                "FerryRESP",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerrySyncTests",
            dependencies: [
                "FerryCore",
                "FerryPostgres",
                "FerrySync",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FerryIntegrationTests",
            dependencies: [
                "FerryAPI",
                "FerryAPIContract",
                "FerryClient",
                "FerryBackup",
                "FerryCluster",
                "FerryDaemon",
                "FerryEtcd",
                "FerryPostgresNode",
                "FerrySync",
                "FerryRESP",
                "FerryCheck",
                "FerryCore",
                "FerryPostgres",
                "FerryRedis",
                "FerrySandbox",
                "FerryServer",
                "FerrySQLServer",
                "TDSEmulator",
                "DatabricksEmulator",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
