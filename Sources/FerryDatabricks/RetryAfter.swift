import FerryCore
import Foundation

/// The `Retry-After` header of a 429 or 503 answer: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
enum RetryAfter {
    /// The wait it asks for, from 0 up to `maximum`; nil when it is missing or malformed (the backoff applies then).
    /// The value comes from the server, so a number too large for any arithmetic is capped, never trusted.
    static func delay(_ value: String?, now: Date = Date(), maximum: Duration) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty, value.utf8.count <= 64 else { return nil }
        if value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // More digits than an Int holds is still "longer than the maximum".
            guard value.utf8.count <= 9, let seconds = Int(value) else { return maximum }
            return min(.seconds(seconds), maximum)
        }
        guard let date = httpDate(value) else { return nil }
        let seconds = date.timeIntervalSince(now)
        guard seconds.isFinite else { return nil }
        if seconds <= 0 { return .zero }
        return seconds >= maximum.seconds ? maximum : .milliseconds(Int64(seconds * 1000))
    }

    /// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send; also Last-Modified's.
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}
