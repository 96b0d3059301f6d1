package import Foundation
package import OpenAPIRuntime

#if canImport(Glibc)
    import Glibc
#endif

/// RFC 3339 dates in UTC to the second (`2026-12-07T20:40:10Z`), as OpenAPIRuntime's default transcoder writes them —
/// so any client reads them — but formatted by hand: the default goes through ICU and cost several microseconds a date,
/// three dates a job, on every `GET /jobs/{id}`. Reading falls back to the default transcoder.
package struct APIDateTranscoder: DateTranscoder {
    package init() {}

    package func encode(_ date: Date) throws -> String { Self.format(date) }

    package func decode(_ text: String) throws -> Date { try ISO8601DateTranscoder().decode(text) }

    /// `date` as `YYYY-MM-DDTHH:MM:SSZ` (UTC; years 1–9999).
    package static func format(_ date: Date, fractionDigits: Int = 0) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&whole, &parts)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(28)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = max(0, value)
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor * 10
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        if fractionDigits > 0 {
            var scale = 1.0
            for _ in 0..<fractionDigits { scale *= 10 }
            bytes.append(UInt8(ascii: "."))
            digits(Int(((seconds - seconds.rounded(.down)) * scale).rounded(.down)), fractionDigits)
        }
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
