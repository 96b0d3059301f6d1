import Crypto
import FerryCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// AWS Signature Version 4 in the Authorization header, with the payload's SHA-256 signed (`x-amz-content-sha256`),
/// as S3 takes it ("Signature Calculations for the Authorization Header", single chunk). Pure: the time is given.
struct S3Signer: Sendable {
    var credentials: S3Configuration.Credentials
    var region: String
    var service = "s3"

    /// The SHA-256 of an empty payload.
    static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// A request to sign: `path` is already URI-encoded (as sent), `query` holds the parameters as they are (they are
    /// encoded here), `headers` every header to sign besides Host and the `x-amz-*` ones signing adds.
    struct Request {
        var method: String
        var host: String
        var path: String
        var query: [(name: String, value: String)] = []
        var headers: [(name: String, value: String)] = []
        var payloadHash: String
    }

    /// The headers to send besides `request.headers`: Host, x-amz-date, x-amz-content-sha256, x-amz-security-token
    /// when there is a session token, and Authorization.
    func sign(_ request: Request, at time: Date) -> [(name: String, value: String)] {
        let (stamp, day) = Self.timestamps(time)
        var signed = request.headers
        signed.append(("Host", request.host))
        signed.append(("x-amz-date", stamp))
        signed.append(("x-amz-content-sha256", request.payloadHash))
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token.value)) }
        let (canonical, names) = Self.canonicalRequest(request, headers: signed)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let signature = Self.hex(
            HMAC<SHA256>.authenticationCode(for: Array(Self.stringToSign(canonical, stamp: stamp, scope: scope).utf8), using: signingKey(day: day)))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope),SignedHeaders=\(names),Signature=\(signature)"
        return Array(signed.dropFirst(request.headers.count)) + [("Authorization", authorization)]
    }

    /// The canonical request and its signed headers' names (`host;range;x-amz-date`).
    static func canonicalRequest(_ request: Request, headers: [(name: String, value: String)]) -> (text: String, signedHeaders: String) {
        let canonicalHeaders = headers.map { (name: $0.name.lowercased(), value: canonicalValue($0.value)) }.sorted { $0.name < $1.name }
        let names = canonicalHeaders.map(\.name).joined(separator: ";")
        let text = [
            request.method,
            request.path.isEmpty ? "/" : request.path,
            canonicalQuery(request.query),
            canonicalHeaders.map { "\($0.name):\($0.value)\n" }.joined(),
            names,
            request.payloadHash,
        ].joined(separator: "\n")
        return (text, names)
    }

    static func stringToSign(_ canonicalRequest: String, stamp: String, scope: String) -> String {
        "AWS4-HMAC-SHA256\n\(stamp)\n\(scope)\n" + hex(SHA256.hash(data: Array(canonicalRequest.utf8)))
    }

    private func signingKey(day: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey.value).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// The query as signed and as sent: each name and value URI-encoded, sorted by name, then value.
    static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { (uriEncode($0.name, encodeSlash: true), uriEncode($0.value, encodeSlash: true)) }
        let sorted = encoded.sorted { (left: (name: String, value: String), right: (name: String, value: String)) -> Bool in
            left.name == right.name ? left.value < right.value : left.name < right.name
        }
        return sorted.map { $0.name + "=" + $0.value }.joined(separator: "&")
    }

    /// Trimmed, with runs of spaces made one.
    private static func canonicalValue(_ value: String) -> String {
        var out = ""
        var space = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " {
                if !space { out.append(" ") }
                space = true
            } else {
                out.append(character)
                space = false
            }
        }
        return out
    }

    /// Every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`; `/` too unless it separates a key's parts.
    static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where !encodeSlash:
                out.append("/")
            default:
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// `20130524T000000Z` and `20130524`, in UTC.
    static func timestamps(_ time: Date) -> (stamp: String, day: String) {
        var seconds = time_t(time.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = "\(parts.tm_year + 1900)" + two(parts.tm_mon + 1) + two(parts.tm_mday)
        return (day + "T" + two(parts.tm_hour) + two(parts.tm_min) + two(parts.tm_sec) + "Z", day)
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
