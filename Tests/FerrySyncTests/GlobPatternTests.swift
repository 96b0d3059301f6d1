import FerryCore
import FerrySync
import Testing

@Suite("Glob patterns (fnmatch semantics of the original service)")
struct GlobPatternTests {
    @Test(arguments: [
        ("*", "anything", true), ("*", "", true),
        ("*-stream", "device-123-stream", true), ("*-stream", "device-123-streams", false),
        ("device:*:stream", "device:7:stream", true), ("device:*:stream", "device:7:data", false),
        ("log-?-stream", "log-1-stream", true), ("log-?-stream", "log-12-stream", false), ("log-?-stream", "log--stream", false),
        ("device-[AB]-stream", "device-A-stream", true), ("device-[AB]-stream", "device-C-stream", false),
        ("device-[!AB]-stream", "device-C-stream", true), ("device-[!AB]-stream", "device-A-stream", false),
        ("sensor-[0-9]", "sensor-5", true), ("sensor-[0-9]", "sensor-x", false), ("sensor-[!0-9]", "sensor-x", true),
        ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYY", false), ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false),
        ("[unclosed", "[unclosed", true), ("biosignal-*", "biosignal-ecg", true), ("biosignal-*", "bio-ecg", false),
        ("orders:*", "orders:", true), ("orders:*", "orders", false), ("orders:*", "x-orders:1", false), ("caf*", "café:1", true),
        ("é*", "éclair", true), ("a?*", "ab", true), ("a?*", "a", false),
    ])
    func matches(pattern: String, name: String, expected: Bool) {
        #expect(GlobPattern(pattern).matches(name) == expected, "\(pattern) vs \(name)")
    }

    @Test func redisMatchWritesNegationWithACaret() {
        #expect(GlobPattern("device-[!AB]-*").redisMatch == "device-[^AB]-*")
        #expect(GlobPattern("*-stream").redisMatch == "*-stream")
        #expect(GlobPattern("[unclosed").redisMatch == "[unclosed")
    }

    @Test func databaseRanges() {
        #expect(RedisSyncConfiguration.parseDatabaseRange("0-15") == Array(0...15))
        #expect(RedisSyncConfiguration.parseDatabaseRange("0,2,3-5") == [0, 2, 3, 4, 5])
        #expect(RedisSyncConfiguration.parseDatabaseRange("3") == [3])
        #expect(RedisSyncConfiguration.parseDatabaseRange("5-3") == nil)
        #expect(RedisSyncConfiguration.parseDatabaseRange("x") == nil)
        #expect(RedisSyncConfiguration.parseDatabaseRange("") == nil)
    }
}
