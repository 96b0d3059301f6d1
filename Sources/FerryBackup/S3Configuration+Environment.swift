package import FerryCore
import Foundation

extension S3Configuration {
    /// The variables the AWS tools read, in the order they are looked up.
    static let endpointVariables = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
    static let regionVariables = ["AWS_REGION", "AWS_DEFAULT_REGION"]

    /// `s3://bucket/prefix` (the prefix optional) with the credentials, region and endpoint the environment gives, as
    /// the AWS tools read them: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; `AWS_REGION` or
    /// `AWS_DEFAULT_REGION` (default us-east-1); `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for an S3-compatible store.
    /// Profiles and `~/.aws` files are not read.
    package init(location: String, environment: [String: String]) throws(FerryError) {
        let (bucket, prefix) = try Self.parse(location)
        func value(_ names: [String]) -> (name: String, value: String)? {
            for name in names { if let value = environment[name], !value.isEmpty { return (name, value) } }
            return nil
        }
        guard let keyID = value(["AWS_ACCESS_KEY_ID"])?.value, let secret = value(["AWS_SECRET_ACCESS_KEY"])?.value else {
            let missing = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].filter { (environment[$0] ?? "").isEmpty }
            throw FerryError(
                .configuration,
                "no credentials for the repository \(PrintableText.escaped(location)): \(missing.joined(separator: " and ")) \(missing.count == 1 ? "is" : "are") not set",
                fix:
                    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary credentials) in the environment ferry runs in; for archive_command and restore_command that is PostgreSQL's own environment (~/.aws files are not read)"
            )
        }
        let region = value(Self.regionVariables)?.value ?? "us-east-1"
        guard !region.isEmpty, region.utf8.allSatisfy({ Self.isRegionByte($0) }) else {
            throw FerryError(
                .configuration, "the region \"\(PrintableText.escaped(region))\" is not an AWS region name",
                fix: "set AWS_REGION to the bucket's region, e.g. eu-west-1")
        }
        var endpoint: Endpoint?
        if let (name, text) = value(Self.endpointVariables) { endpoint = try Self.parseEndpoint(text, variable: name) }
        self.init(
            bucket: bucket, prefix: prefix, region: region, endpoint: endpoint,
            credentials: Credentials(
                accessKeyID: keyID, secretAccessKey: Secret(secret), sessionToken: value(["AWS_SESSION_TOKEN"]).map { Secret($0.value) }))
    }

    /// The bucket and the prefix (no leading or trailing `/`) of `s3://bucket/prefix`.
    static func parse(_ location: String) throws(FerryError) -> (bucket: String, prefix: String) {
        let shown = PrintableText.escaped(location)
        guard location.hasPrefix("s3://") else {
            throw FerryError(.configuration, "\"\(shown)\" is not an S3 location", fix: "write it s3://bucket or s3://bucket/prefix")
        }
        var rest = location.dropFirst(5)
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let bucket = String(rest[..<slash])
        let prefix = slash == rest.endIndex ? "" : String(rest[rest.index(after: slash)...])
        guard (1...255).contains(bucket.utf8.count), bucket.utf8.allSatisfy({ Self.isBucketByte($0) }) else {
            throw FerryError(
                .configuration, "\"\(shown)\" does not name a bucket: \"\(PrintableText.escaped(bucket))\" is not a bucket name",
                fix: "write it s3://bucket or s3://bucket/prefix; bucket names are letters, digits, dots, hyphens and underscores")
        }
        let parts = prefix.split(separator: "/", omittingEmptySubsequences: false)
        guard prefix.isEmpty || !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
            !prefix.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw FerryError(
                .configuration, "the prefix in \"\(shown)\" is not a plain key prefix",
                fix: "use names separated by single slashes, without `.`, `..` or control characters (s3://bucket/ferry/cluster1)")
        }
        return (bucket, prefix)
    }

    /// `http(s)://host[:port]`, as `AWS_ENDPOINT_URL_S3` gives it.
    static func parseEndpoint(_ text: String, variable: String) throws(FerryError) -> Endpoint {
        let invalid = FerryError(
            .configuration, "\(variable) (\"\(PrintableText.escaped(text))\") is not an endpoint URL",
            fix: "set it to the store's address without a path, e.g. http://127.0.0.1:9000 or https://minio.example.com")
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            var host = components.host, !host.isEmpty, components.path.isEmpty || components.path == "/", components.query == nil,
            components.user == nil, components.password == nil
        else { throw invalid }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let port = components.port, !(1...65535).contains(port) { throw invalid }
        return Endpoint(secure: scheme == "https", host: host, port: components.port)
    }

    private static func isBucketByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    private static func isRegionByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
    }
}
