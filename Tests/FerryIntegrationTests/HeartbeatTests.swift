import FerryPostgresNode
import FerryRedis
import FerrySandbox
import Testing

@testable import FerrySync

@Suite("Consumer heartbeat against real Redis", .timeLimit(.minutes(2)), .sandbox { $0.postgres = false })
struct HeartbeatTests {
    /// The heartbeat shares the consumer's connection. When a transaction ends while a beat is in flight, the beat
    /// finishes: cancelling it would close the connection and fail the consumer's XACK for the batch just committed,
    /// which would then be applied a second time.
    @Test func aBeatInFlightWhenTheTransactionEndsLeavesTheConnectionUsable() async throws {
        try await withRedis { connection in
            let stream = uniqueKey("heartbeat")
            _ = try await connection.send(XGROUPCREATE(stream, group: "g", id: "0", makeStream: true))
            _ = try await connection.send(XADD(stream, fields: [(name: "f", value: "v")]))
            let read = try await connection.send(XREADGROUP(group: "g", consumer: "c", streams: [(key: stream, id: ">")], count: 10))
            let ids = try #require(read.first?.entries.map(\.id))
            let heartbeat = Heartbeat(stream: stream, group: "g", consumer: "c", ids: ids, interval: .milliseconds(1), connection: connection)
            let client = try await connection.send(CLIENTID())
            for round in 0..<300 {
                try await heartbeat.keepingAlive { try await Task.sleep(for: .microseconds(300 + round * 7 % 2_000)) }
                // The consumer's next command, as its XACK would be.
                #expect(try await connection.send(PING()) == "PONG")
            }
            #expect(try await connection.send(CLIENTID()) == client, "the same connection throughout")
        }
    }
}
