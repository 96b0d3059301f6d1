import Foundation
import NIOCore
import Testing

@testable import FerrySync

@Suite("Lookback window memory")
struct WindowMemoryTests {
    @Test(arguments: [
        ("1970-01-01 00:00:00", Int64(0)), ("2024-02-29 12:34:56.789012", Int64(1_709_210_096_789_012)), ("2025-01-01", Int64(1_735_689_600_000_000)),
        ("2025-01-01 00:00:01.5", Int64(1_735_689_601_500_000)), ("2025-06-30 23:59:59.999999+00", Int64(1_751_327_999_999_999)),
    ])
    func sortKeysAreMicrosecondsSinceEpoch(text: String, expected: Int64) {
        #expect(WindowMemory.sortKey(ByteBuffer(string: text)) == expected)
    }

    @Test func nonTemporalWatermarksHaveNoKey() {
        #expect(WindowMemory.sortKey(ByteBuffer(string: "12345")) == nil)
        #expect(WindowMemory.sortKey(ByteBuffer(string: "abc")) == nil)
    }

    @Test func remembersOnlyWhatTheWindowCanSeeAndForgetsBelowIt() {
        var memory = WindowMemory()
        let floor = WindowMemory.sortKey(ByteBuffer(string: "2025-01-01 00:00:10"))!
        memory.remember(1, watermark: ByteBuffer(string: "2025-01-01 00:00:05"), floor: floor)
        memory.remember(2, watermark: ByteBuffer(string: "2025-01-01 00:00:15"), floor: floor)
        memory.remember(3, watermark: ByteBuffer(string: "2025-01-01 00:00:20"), floor: floor)
        #expect(!memory.contains(1))
        #expect(memory.contains(2))
        memory.forget(below: "2025-01-01 00:00:16")
        #expect(!memory.contains(2))
        #expect(memory.contains(3))
        #expect(memory.count == 1)
    }

    @Test func smallPagesAreSpreadOverTheConsumers() {
        #expect(Producer.rowsPerEntry(rows: 5_000, limit: 500, consumers: 2) == 500, "a large page keeps rows_per_entry")
        #expect(Producer.rowsPerEntry(rows: 1_000, limit: 500, consumers: 2) == 500)
        #expect(Producer.rowsPerEntry(rows: 600, limit: 500, consumers: 2) == 300, "one entry per consumer")
        #expect(Producer.rowsPerEntry(rows: 90, limit: 500, consumers: 2) == 50, "at least 50 rows an entry")
        #expect(Producer.rowsPerEntry(rows: 10, limit: 500, consumers: 4) == 50)
        #expect(Producer.rowsPerEntry(rows: 10, limit: 5, consumers: 1) == 5, "never above rows_per_entry")
    }
}
