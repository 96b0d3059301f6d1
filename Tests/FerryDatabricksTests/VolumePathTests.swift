import FerryCore
import FerryDatabricks
import Testing

@Suite struct VolumePathTests {
    @Test func acceptsVolumePaths() throws {
        let path = try VolumePath("/Volumes/main/default/landing/orders/2024-01.parquet")
        #expect(path.segments == ["main", "default", "landing", "orders", "2024-01.parquet"])
        #expect(path.volume == "/Volumes/main/default/landing")
        #expect(path.volumeName == "main.default.landing")
        #expect(try VolumePath("/Volumes/main/default/landing").description == "/Volumes/main/default/landing")
    }

    @Test(
        arguments: [
            "Volumes/main/default/landing/a", "/volumes/main/default/landing/a", "/Volumes/main/default/landing/../other/a",
            "/Volumes/main/default/landing/./a", "/Volumes/main//landing/a", "/Volumes/main/default/landing/a/", "/Volumes/main/default",
            "/Volumes/main/default/landing/a\u{0}b", "/Volumes/main/default/landing/a\nb", "/Volumes/main/default/landing/a\u{1b}[31m",
            "/Volumes/main/default/landing/a\u{85}", "", "../../etc/passwd",
        ].map(BadPath.init))
    func refusesBadPaths(_ path: BadPath) {
        let text = path.text
        #expect(throws: FerryError.self) { try VolumePath(text) }
        do {
            _ = try VolumePath(text)
        } catch {
            #expect(error.code == .invalidInput)
            // The message quotes the path with control characters escaped, never raw.
            #expect(!error.description.contains("\n") && !error.description.contains("\u{0}") && !error.description.contains("\u{1b}"))
        }
    }

    @Test func aFileNeedsANameInsideTheVolume() {
        #expect(throws: FerryError.self) { try VolumePath("/Volumes/main/default/landing", insideVolume: true) }
    }

    @Test func encodesEachSegment() throws {
        let path = try VolumePath("/Volumes/main/default/landing/my dir/naïve résumé #1?.parquet")
        #expect(path.encoded == "/Volumes/main/default/landing/my%20dir/na%C3%AFve%20r%C3%A9sum%C3%A9%20%231%3F.parquet")
        #expect(VolumePath.percentEncoded("a/b%c+d~e_f-g.h") == "a%2Fb%25c%2Bd~e_f-g.h")
        #expect(VolumePath.percentEncoded("日本") == "%E6%97%A5%E6%9C%AC")
    }
}

/// A path for the refusal tests, shown with its control characters escaped in the test output.
struct BadPath: Sendable, CustomStringConvertible {
    var text: String
    var description: String { PrintableText.escaped(text) }
}
