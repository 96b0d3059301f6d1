/// Parses and prints human durations: `250ms`, `10s`, `1.5s`, `5m`, `2h`, `1d`; a bare number is seconds.
package enum DurationParser {
    package static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingSpaces().lowercased()
        guard !trimmed.isEmpty else { return nil }
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        var number = Substring(trimmed)
        var scale = 1.0
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number.trimmingSpaces()), value >= 0, value.isFinite else { return nil }
        let nanoseconds = (value * scale * 1e9).rounded()
        guard nanoseconds < 9.2e18 else { return nil }
        return .nanoseconds(Int64(nanoseconds))
    }

    package static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        if seconds % 86400 == 0, seconds > 0 { return "\(seconds / 86400)d" }
        if seconds % 3600 == 0, seconds > 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0, seconds > 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
