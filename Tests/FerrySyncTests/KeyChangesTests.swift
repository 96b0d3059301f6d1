import Testing

@testable import FerrySync

@Suite("Keys changed while a scan runs")
struct KeyChangesTests {
    /// A scan may read a key, then a notification's newer value is written, then the scan writes the older one: keys
    /// notified while a scan runs are queued again when it ends, so the last write is a fresh read.
    @Test func keysNotifiedDuringAScanAreFlushedAgainAfterIt() {
        let changes = KeyChanges()
        changes.add(database: 0, key: "before")
        let scan = changes.beginRecording()
        changes.add(database: 0, key: "during")
        changes.add(database: 3, key: "elsewhere")
        #expect(changes.drain() == [0: ["before", "during"], 3: ["elsewhere"]], "the flush writes them as usual")
        #expect(changes.drain().isEmpty)
        changes.endRecording(scan)
        #expect(changes.drain() == [0: ["during"], 3: ["elsewhere"]], "and again after the scan")
        changes.add(database: 0, key: "after")
        changes.endRecording(scan)
        #expect(changes.drain() == [0: ["after"]], "a recording ends once")
    }

    @Test func overlappingScansEachGetTheirKeys() {
        let changes = KeyChanges()
        let first = changes.beginRecording()
        changes.add(database: 0, key: "a")
        let second = changes.beginRecording()
        changes.add(database: 0, key: "b")
        _ = changes.drain()
        changes.endRecording(first)
        #expect(changes.drain() == [0: ["a", "b"]])
        changes.endRecording(second)
        #expect(changes.drain() == [0: ["b"]])
    }
}
