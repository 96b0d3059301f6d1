import FerryCore
import FerryPostgresNode
import FerryRESP
import FerryRedis
import FerrySandbox
import NIOCore
import Testing

@Suite("Redis commands against a real server", .sandbox { $0.postgres = false })
struct RedisCommandTests {
    @Test(arguments: [true, false])
    func strings(resp3: Bool) async throws {
        try await withRedis(resp3: resp3) { redis in
            #expect(redis.info.protocolVersion == (resp3 ? 3 : 2))
            let key = uniqueKey("str")
            #expect(try await redis.send(GET(key)) == nil)
            #expect(try await redis.send(SET(key, "v1")))
            #expect(try await redis.send(GET(key))?.text == "v1")
            #expect(try await redis.send(SET(key, "v2", condition: .ifNotExists)) == false)
            #expect(try await redis.send(SET(key, "v3", condition: .ifExists, expiration: .seconds(100))))
            let ttl = try await redis.send(TTL(key))
            #expect(ttl > 90 && ttl <= 100)
            #expect(try await redis.send(PTTL(key)) > 90_000)
            #expect(try await redis.send(EXPIRE(key, seconds: 5, condition: .ifGreater)) == false)
            #expect(try await redis.send(EXPIRE(key, seconds: 500)))
            #expect(try await redis.send(SET(key, "keep", expiration: .keepTTL)))
            #expect(try await redis.send(TTL(key)) > 400)
            let other = uniqueKey("str")
            #expect(try await redis.send(MSET([(key: other, value: "a"), (key: key, value: "b")])))
            #expect(try await redis.send(MGET([key, other, uniqueKey()])).map { $0?.text } == ["b", "a", nil])
            #expect(try await redis.send(EXISTS(key, other)) == 2)
            #expect(try await redis.send(INCRBY(uniqueKey("n"), by: 5)) == 5)
            #expect(try await redis.send(DEL(key, other)) == 2)
            #expect(try await redis.send(TTL(key)) == -2)
            let empty = uniqueKey("empty")
            #expect(try await redis.send(SET(empty, "")))
            #expect(try await redis.send(GET(empty)) == ByteBuffer(), "an empty value is not nil")
        }
    }

    @Test(arguments: [true, false])
    func hashesListsSetsSortedSets(resp3: Bool) async throws {
        try await withRedis(resp3: resp3) { redis in
            let hash = uniqueKey("h")
            #expect(try await redis.send(HSET(hash, [(field: "a", value: "1"), (field: "b", value: "2")])) == 2)
            #expect(try await redis.send(HGET(hash, "a"))?.text == "1")
            #expect(try await redis.send(HMGET(hash, ["b", "zz"])).map { $0?.text } == ["2", nil])
            #expect(try await redis.send(HGETALL(hash)).map { "\($0.field.text)=\($0.value.text)" }.sorted() == ["a=1", "b=2"])
            #expect(try await redis.send(HLEN(hash)) == 2)
            #expect(try await redis.send(HDEL(hash, ["a"])) == 1)

            let list = uniqueKey("l")
            let target = uniqueKey("l2")
            #expect(try await redis.send(RPUSH(list, ["b", "c"])) == 2)
            #expect(try await redis.send(LPUSH(list, ["a"])) == 3)
            #expect(try await redis.send(LRANGE(list)).map(\.text) == ["a", "b", "c"])
            #expect(try await redis.send(LMOVE(list, target, from: .left, to: .right))?.text == "a")
            #expect(try await redis.send(BLMOVE(list, target, from: .right, to: .left, timeout: .milliseconds(100)))?.text == "c")
            #expect(try await redis.send(LLEN(target)) == 2)
            #expect(try await redis.send(BLMOVE(uniqueKey("none"), target, from: .left, to: .left, timeout: .milliseconds(50))) == nil)

            let set = uniqueKey("s")
            #expect(try await redis.send(SADD(set, ["x", "y", "x"])) == 2)
            #expect(try await redis.send(SISMEMBER(set, "x")))
            #expect(try await redis.send(SMEMBERS(set)).map(\.text).sorted() == ["x", "y"])
            #expect(try await redis.send(SREM(set, ["x"])) == 1)
            #expect(try await redis.send(SCARD(set)) == 1)

            let zset = uniqueKey("z")
            #expect(try await redis.send(ZADD(zset, [(score: 2.5, member: "b"), (score: 1, member: "a")])) == 2)
            let ranked = try await redis.send(ZRANGE(zset))
            #expect(ranked.map(\.member.text) == ["a", "b"])
            #expect(ranked.map(\.score) == [1, 2.5])
            #expect(try await redis.send(ZSCORE(zset, "b")) == 2.5)
            #expect(try await redis.send(ZSCORE(zset, "nope")) == nil)
            #expect(try await redis.send(ZREM(zset, ["a"])) == 1)
            #expect(try await redis.send(ZCARD(zset)) == 1)

            #expect(try await redis.send(TYPE(hash)) == .hash)
            #expect(try await redis.send(TYPE(zset)) == .zset)
            #expect(try await redis.send(TYPE(uniqueKey())) == RedisKeyType.none)
        }
    }

    @Test func serverCommands() async throws {
        try await withRedis(database: 4) { redis in
            _ = try await redis.send(FLUSHDB())
            _ = try await redis.send(SET("a", "1"))
            _ = try await redis.send(SET("b", "1", expiration: .seconds(100)))
            let info = try await redis.send(INFO("server", "keyspace"))
            #expect(info["server", "redis_version"]?.hasPrefix("7.") == true)
            #expect(info.keyspace[4] == RedisInfo.Keyspace(keys: 2, expires: 1, averageTTL: info.keyspace[4]?.averageTTL ?? -1))
            let config = try await redis.send(CONFIGGET("maxmemory-policy", "appendonly"))
            #expect(config == ["maxmemory-policy": "noeviction", "appendonly": "yes"])
            let id = try await redis.send(CLIENTID())
            #expect(id == redis.info.clientID)
            #expect(try await redis.send(CLIENTUNBLOCK(id)) == false)
            #expect(try await redis.send(PING()) == "PONG")
            #expect(try await redis.send(DBSIZE()) == 2)
        }
    }

    @Test(arguments: [true, false])
    func streams(resp3: Bool) async throws {
        try await withRedis(resp3: resp3) { redis in
            let stream = uniqueKey("stream")
            #expect(try await redis.send(XADD(stream, fields: [(name: "f", value: "v")], noMakeStream: true)) == nil)
            #expect(try await redis.send(XGROUPCREATE(stream, group: "g", id: "0", makeStream: true)))
            #expect(try await redis.send(XGROUPCREATE(stream, group: "g", id: "0")) == false, "an existing group is not an error")
            var ids: [String] = []
            var typed: [RedisStreamID] = []
            for index in 0..<10 {
                let id = try #require(try await redis.send(XADD(stream, fields: [(name: "n", value: "\(index)"), (name: "x", value: "y")])))
                typed.append(id)
                ids.append(id.description)
            }
            #expect(typed == typed.sorted())
            #expect(typed.map { RedisStreamID($0.description) } == typed)
            #expect(try await redis.send(XLEN(stream)) == 10)
            #expect(try await redis.send(XRANGE(stream, count: 3)).map(\.id) == Array(ids.prefix(3)))
            #expect(try await redis.send(XREVRANGE(stream, count: 2)).map(\.id) == [ids[9], ids[8]])
            #expect(try await redis.send(XRANGE(stream, start: ids[4], end: ids[4])).first?[field: "n"]?.text == "4")

            #expect(try await redis.send(XGROUPCREATECONSUMER(stream, group: "g", consumer: "c1")))
            let read = try await redis.send(XREADGROUP(group: "g", consumer: "c1", streams: [(key: stream, id: ">")], count: 4))
            #expect(read.count == 1)
            #expect(read[0].stream == stream)
            #expect(read[0].entries.map(\.id) == Array(ids.prefix(4)))
            #expect(read[0].entries[0].fields?.map(\.name.text) == ["n", "x"])

            let summary = try await redis.send(XPENDING(stream, group: "g"))
            #expect(summary.count == 4)
            #expect(summary.smallestID == ids[0])
            #expect(summary.greatestID == ids[3])
            #expect(summary.consumers == ["c1": 4])
            let pending = try await redis.send(XPENDINGEXTENDED(stream, group: "g", count: 10, consumer: "c1"))
            #expect(pending.map(\.id) == Array(ids.prefix(4)))
            #expect(pending.allSatisfy { $0.deliveries == 1 && $0.consumer == "c1" })

            // The consumer's own pending entries, re-read from id 0 (what a restarted consumer does).
            let again = try await redis.send(XREADGROUP(group: "g", consumer: "c1", streams: [(key: stream, id: "0")]))
            #expect(again.first?.entries.map(\.id) == Array(ids.prefix(4)))

            #expect(try await redis.send(XACK(stream, group: "g", ids: [ids[0]])) == 1)

            // An entry deleted while pending comes back with nil fields.
            #expect(try await redis.send(XDEL(stream, ids: [ids[1]])) == 1)
            let withDeleted = try await redis.send(XREADGROUP(group: "g", consumer: "c1", streams: [(key: stream, id: "0")]))
            #expect(withDeleted.first?.entries.first?.id == ids[1])
            #expect(withDeleted.first?.entries.first?.fields == nil)

            // Another consumer takes over idle entries.
            let claimed = try await redis.send(XAUTOCLAIM(stream, group: "g", consumer: "c2", minimumIdle: .zero, count: 10))
            #expect(claimed.entries.map(\.id) == [ids[2], ids[3]])
            #expect(claimed.deletedIDs == [ids[1]])
            #expect(claimed.nextStart == "0-0")
            let xclaimed = try await redis.send(XCLAIM(stream, group: "g", consumer: "c1", minimumIdle: .zero, ids: [ids[2]]))
            #expect(xclaimed.map(\.id) == [ids[2]])
            let justIDs = try await redis.send(XCLAIM(stream, group: "g", consumer: "c2", minimumIdle: .zero, ids: [ids[2]], justID: true))
            #expect(justIDs.map(\.id) == [ids[2]])

            let info = try await redis.send(XINFOSTREAM(stream))
            #expect(info.length == 9)
            #expect(info.groups == 1)
            #expect(info.lastGeneratedID == ids[9])
            #expect(info.firstEntry?.id == ids[0])
            #expect(info.lastEntry?[field: "n"]?.text == "9")
            #expect(info.entriesAdded == 10)

            let groups = try await redis.send(XINFOGROUPS(stream))
            #expect(groups.map(\.name) == ["g"])
            #expect(groups[0].pending == 2)
            #expect(groups[0].lastDeliveredID == ids[3])
            #expect(groups[0].lag == nil || groups[0].lag == 6)

            let consumers = try await redis.send(XINFOCONSUMERS(stream, group: "g"))
            #expect(Set(consumers.map(\.name)) == ["c1", "c2"])
            #expect(consumers.first { $0.name == "c2" }?.pending == 2)

            #expect(try await redis.send(XGROUPDELCONSUMER(stream, group: "g", consumer: "c2")) == 2)
            #expect(try await redis.send(XTRIM(stream, .maxLength(5, approximate: false))) == 4)
            #expect(try await redis.send(XADD(stream, fields: [(name: "n", value: "10")], trim: .maxLength(3, approximate: false))) != nil)
            #expect(try await redis.send(XLEN(stream)) == 3)
            #expect(try await redis.send(XTRIM(stream, .minID(ids[9], approximate: false))) == 1)
            #expect(try await redis.send(XGROUPDESTROY(stream, group: "g")))
        }
    }

    @Test func errorRepliesFailOnlyTheirOwnCommand() async throws {
        try await withRedis { redis in
            let hash = uniqueKey("h")
            _ = try await redis.send(HSET(hash, [(field: "f", value: "v")]))
            let (get, ping, incr) = try await redis.pipeline(GET(hash), PING(), INCRBY(hash))
            guard case .failure(let error) = get else {
                Issue.record("GET on a hash must fail")
                return
            }
            #expect(error.prefix == "WRONGTYPE")
            #expect(error.command == "GET")
            #expect(try ping.get() == "PONG")
            #expect((try? incr.get()) == nil)
            // The connection is still in step.
            #expect(try await redis.send(PING()) == "PONG")
            await #expect(throws: RedisError.self) { try await redis.send(XGROUPCREATE(uniqueKey(), group: "g", makeStream: false)) }
        }
    }

    @Test func transactions() async throws {
        try await withRedis { redis in
            let key = uniqueKey("tx")
            let stream = uniqueKey("txs")
            let (set, added, incr) = try await redis.transaction(SET(key, "1"), XADD(stream, fields: [(name: "a", value: "b")]), INCRBY(key, by: 2))
            #expect(try set.get())
            #expect(try added.get() != nil)
            #expect(try incr.get() == 3)
            // A command that fails at run time fails alone; the others still apply.
            let hash = uniqueKey("txh")
            _ = try await redis.send(HSET(hash, [(field: "f", value: "v")]))
            let (bad, good) = try await redis.transaction(INCRBY(hash), INCRBY(key))
            #expect((try? bad.get()) == nil)
            #expect(try good.get() == 4)
            // A command rejected while queueing discards the whole transaction.
            await #expect(throws: RedisError.self) { _ = try await redis.transaction(RawCommand("NOSUCHCOMMAND"), INCRBY(key)) }
            #expect(try await redis.send(GET(key))?.text == "4")
        }
    }

    @Test func genericSend() async throws {
        try await withRedis { redis in
            let reply = try await redis.send(RawCommand("ECHO", "héllo"))
            #expect(try reply.decode(as: String.self) == "héllo")
            let objects = try await redis.send(RawCommand("COMMAND", "COUNT"))
            #expect(try objects.decode(as: Int.self) > 100)
        }
    }

    @Test func scanWalksEveryKeyOnceWithTypeAndPattern() async throws {
        let redis = try #require(try SandboxContext.require().redis)
        let client = redis.client()
        let database = 6
        _ = try await client.send(FLUSHDB(), database: database)
        try await client.withConnection(database: database) { connection in
            _ = try await connection.pipeline((0..<2500).map { SET("scan:string:\($0)", "v") })
            _ = try await connection.pipeline((0..<300).map { XADD("scan:stream:\($0)", fields: [(name: "f", value: "v")]) })
            _ = try await connection.send(SET("other", "v"))
        }
        var strings: [String] = []
        for try await key in client.scan(database: database, match: "scan:*", count: 100, type: .string) { strings.append(key.description) }
        #expect(strings.count == 2500)
        #expect(Set(strings).count == 2500)
        var streams = 0
        for try await _ in client.scan(database: database, match: "scan:stream:[0-9]*", type: .stream) { streams += 1 }
        #expect(streams == 300)
        await client.shutdown()
    }
}
