import Foundation
import Testing

@testable import FerrySync

@Suite("UTC timestamps from stream ids")
struct UTCTimestampTests {
    @Test(arguments: [Int64(0), 1_795_357_025_182, 951_782_400_000, 4_102_444_799_999, -1, -86_400_001, 1_709_164_800_000])
    func matchesFoundation(milliseconds: Int64) {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        let seconds = Double(milliseconds) / 1000
        let expected =
            formatter.string(from: Date(timeIntervalSince1970: seconds.rounded(.down) + Double(((milliseconds % 1000) + 1000) % 1000) / 1000)) + "+00"
        #expect(UTCTimestamp.format(milliseconds: milliseconds) == expected)
    }
}

@Suite("Stream ids")
struct StreamIDMillisecondsTests {
    @Test func theMillisecondsPartIsReadFromTheBytes() {
        #expect(RedisStreamApplier.milliseconds(of: "1700000000000-3") == 1_700_000_000_000)
        #expect(RedisStreamApplier.milliseconds(of: "42") == 42)
        #expect(RedisStreamApplier.milliseconds(of: "0-0") == 0)
        #expect(RedisStreamApplier.milliseconds(of: "") == nil)
        #expect(RedisStreamApplier.milliseconds(of: "-1") == nil)
        #expect(RedisStreamApplier.milliseconds(of: "12a-1") == nil)
        #expect(RedisStreamApplier.milliseconds(of: "9999999999999999999-0") == nil, "too many digits is not an id")
    }
}
