// swift-tools-version: 6.2
// libFuzzer targets for Ferry's decoders. Built and run by scripts/fuzz.sh with -sanitize=fuzzer,address.
import PackageDescription

let package = Package(
    name: "ferry-fuzz",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzRESPDecoder",
            dependencies: [
                .product(name: "FerryRESP", package: "main"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The YAML loader and the configuration reader: any file gives a configuration or issues, never a crash.
        .executableTarget(
            name: "FuzzConfigLoader",
            dependencies: [.product(name: "FerryCore", package: "main")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The cluster API's request bodies: any bytes give a checked body or a 4xx error, never a crash.
        .executableTarget(
            name: "FuzzClusterRequest",
            dependencies: [.product(name: "FerryCore", package: "main")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The SQL Server client (FreeTDS's DB-Library) against a scripted server sending the fuzz bytes as its
        // replies: any reply gives rows or an error, never a crash or a hang.
        .executableTarget(
            name: "FuzzTDSReply",
            dependencies: [.product(name: "FerrySQLServer", package: "main")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The Parquet reader: any file gives rows or an error, never a crash, a hang or a huge allocation.
        .executableTarget(
            name: "FuzzParquetReader",
            dependencies: [.product(name: "FerryParquet", package: "main")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
