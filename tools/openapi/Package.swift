// swift-tools-version: 6.1
// The OpenAPI generator, run by hand (`make openapi`) to turn openapi.yaml into the committed sources of FerryAPI and
// FerryClient: building the generator (OpenAPIKit) as a build plugin would add minutes to every clean build.
import PackageDescription

let package = Package(
    name: "ferry-openapi-tools",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3")
    ]
)
