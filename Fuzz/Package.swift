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
        )
    ]
)
