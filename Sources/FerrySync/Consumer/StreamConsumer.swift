import FerryCore
import FerryPostgres
import FerryRedis
import Foundation
import Logging
import ServiceLifecycle

/// How a ``StreamConsumer`` joins its streams.
struct StreamConsumerSettings: Sendable {
    /// The consumer group and this consumer's name in it.
    var group: String
    var consumer: String
    /// The Redis database of the streams (nil: the connection's default).
    var database: Int?
    /// Entries per read and per claim.
    var entriesPerRead: Int
    /// Rows per transaction at most (entries are never split).
    var applyBatchRows: Int
    /// How long a read blocks waiting for new entries.
    var block: Duration
    /// Entries pending this long with a stopped consumer are claimed.
    var claimIdle: Duration
    /// Deliveries after which an entry is applied on its own, and solo attempts after which it is a poison entry.
    var maxDeliveries: Int
    /// Hash (in the streams' database) counting solo attempts: field `stream id`.
    var attemptsKey: String
    /// Create the group when a stream has none (`XGROUP CREATE … 0`); `makeStream` also creates a missing stream.
    var createGroups = true
    var makeStream = false
    /// Retry delays after Redis errors (the consumer reconnects) and PostgreSQL errors (the batch is retried).
    var redisBackoff = Backoff(base: .milliseconds(200), maximum: .seconds(5))
    var postgresBackoff = Backoff(base: .milliseconds(200), maximum: .seconds(10))
    /// Consecutive failed attempts before giving up (nil: retry for as long as the process runs).
    var redisMaxRetries: Int?
    var postgresMaxRetries: Int?
    /// Waits before each Redis read or acknowledgement (a rate limit); nil: no limit.
    var throttle: RateLimiter?
    /// An apply that has not finished after this long is taken for a connection that will never answer (a server
    /// restarted under it can leave one so): its PostgreSQL connection is closed and the batch retried. Without this
    /// the heartbeat would keep the batch's entries this consumer's for ever.
    var applyTimeout: Duration = .seconds(60)
}

/// Reads streams as a member of a consumer group and applies their entries through a ``StreamApplying`` job.
///
/// Entries are acknowledged only after the transaction that applied them commits. A restarted consumer re-reads
/// its own pending entries first; entries left pending by a consumer that stopped are claimed after
/// `claimIdle`, one read's worth at a time (a claim counts as a delivery). One heartbeat covers every entry of a
/// read, so entries waiting for their transaction never look abandoned. A row PostgreSQL rejects is isolated by
/// the job (bisecting its batch) and goes to the dead letters with the reason; the rest is applied.
///
/// Poison entries: an entry delivered `maxDeliveries` times is applied on its own, and each such attempt is
/// counted before it begins. Only an entry that stopped the consumer `maxDeliveries` times while it was the only
/// thing being applied goes to the dead letters whole. Delivery counts alone never condemn an entry: consumers
/// killed for unrelated reasons (a crash loop, an OOM kill of a big batch) raise the counts of everything they held.
struct StreamConsumer<Applier: StreamApplying> {
    var applier: Applier
    let settings: StreamConsumerSettings
    let redis: RedisClient
    let logger: Logger
    /// The streams to read; asked again on every loop, so discovery can add streams while the consumer runs.
    let streams: @Sendable () -> [String]
    private var claimCursors: [String: String] = [:]
    private var lastClaim = ContinuousClock.now
    private var warnedWithoutGroup: Set<String> = []
    private(set) var applied = 0

    init(applier: Applier, settings: StreamConsumerSettings, redis: RedisClient, logger: Logger, streams: @escaping @Sendable () -> [String]) {
        self.applier = applier
        self.settings = settings
        self.redis = redis
        self.logger = logger
        self.streams = streams
    }

    private var metadata: Logger.Metadata { ["ferry.job": "\(applier.name)", "ferry.consumer": "\(settings.consumer)"] }

    /// Consumes until the task is cancelled or shut down gracefully; with `untilDrained`, returns once it says so
    /// and nothing is left to read, pending or claimable (`--once`).
    mutating func run(untilDrained: (@Sendable () -> Bool)? = nil) async throws {
        var attempt = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await redis.withDedicatedConnection(database: settings.database) { connection in
                    try await consume(on: connection, untilDrained: untilDrained, resetAttempts: { attempt = 0 })
                }
                return
            } catch let error as RedisError where error.code != .poolClosed && !Task.isCancelled {
                applier.countRetry()
                if let limit = settings.redisMaxRetries, attempt >= limit {
                    await applier.recordError("Redis: \(error)")
                    throw FerryError(
                        .unreachable, "\(applier.name): Redis failed \(attempt + 1) times in a row: \(error)",
                        fix: "check that Redis is running and reachable, or raise the Redis retry limit (`REDIS_MAX_RETRIES`)")
                }
                let delay = settings.redisBackoff.delay(attempt: attempt)
                attempt += 1
                logger.warning("queue unavailable, retrying", metadata: metadata.merging(["ferry.error": "\(error)"]) { $1 })
                await applier.recordError("Redis: \(error)")
                try? await Task.sleep(for: delay)
            }
        }
    }

    private mutating func consume(
        on connection: RedisConnection, untilDrained: (@Sendable () -> Bool)?, resetAttempts: () -> Void
    ) async throws {
        var ready: [String] = []
        var known: Set<String> = []
        var lastJoin = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // Join streams that appeared (discovery) and, now and then, those that could not be joined yet (a
            // configured stream nobody has written to).
            let wanted = streams()
            let wantedSet = Set(wanted)
            if wantedSet != known || (ready.count < wanted.count && ContinuousClock.now - lastJoin > settings.claimIdle / 2) {
                known = wantedSet
                lastJoin = .now
                ready.removeAll { !wantedSet.contains($0) }
                for stream in wanted where !ready.contains(stream) {
                    guard try await join(stream, on: connection) else { continue }
                    ready.append(stream)
                    try await recoverOwnPending(stream, on: connection)
                }
            }
            resetAttempts()
            if ContinuousClock.now - lastClaim > settings.claimIdle / 2 {
                lastClaim = .now
                for stream in ready { try await claimAbandoned(stream, on: connection) }
            }
            if ready.isEmpty {
                if let untilDrained, untilDrained() { return }
                try await Task.sleep(for: settings.block)
                continue
            }
            guard let reads = try await readNew(from: ready, on: connection) else {
                // A stream (or its group) was deleted: join the streams again.
                logger.notice("a stream or its group disappeared; joining again", metadata: metadata)
                known = []
                ready = []
                continue
            }
            var any = false
            for read in reads where !read.entries.isEmpty {
                any = true
                try await process(read.entries, stream: read.stream, on: connection, checkDeliveries: false)
            }
            if !any, let untilDrained, untilDrained(), try await isDrained(ready, on: connection) { return }
        }
    }

    /// New entries of `streams`; nil when one of them lost its group (deleted and created again, for example).
    ///
    /// The blocking read takes one entry per stream, then a read that does not block takes whatever else is
    /// waiting, up to `entriesPerRead`. When entries arrive together and several consumers wait, Redis hands
    /// each waiting consumer one, so they apply in parallel (half the latency of a burst on two consumers); with
    /// a backlog, the second read still fills a whole transaction.
    private func readNew(from streams: [String], on connection: RedisConnection) async throws -> [RedisStreamRead]? {
        let keys = streams.map { (key: $0, id: ">") }
        try await settings.throttle?.acquire()
        guard
            var reads = try await read(
                XREADGROUP(group: settings.group, consumer: settings.consumer, streams: keys, count: 1, block: settings.block), on: connection)
        else { return nil }
        guard settings.entriesPerRead > 1, reads.contains(where: { !$0.entries.isEmpty }) else { return reads }
        try await settings.throttle?.acquire()
        guard
            let more = try await read(
                XREADGROUP(group: settings.group, consumer: settings.consumer, streams: keys, count: settings.entriesPerRead - 1), on: connection)
        else { return nil }
        for read in more where !read.entries.isEmpty {
            if let index = reads.firstIndex(where: { $0.stream == read.stream }) {
                reads[index].entries += read.entries
            } else {
                reads.append(read)
            }
        }
        return reads
    }

    private func read(_ command: XREADGROUP, on connection: RedisConnection) async throws -> [RedisStreamRead]? {
        do {
            return try await connection.send(command)
        } catch {
            if error.prefix == "NOGROUP" { return nil }
            throw error
        }
    }

    /// Makes sure `stream` has the group; false when it has none and may not get one.
    private mutating func join(_ stream: String, on connection: RedisConnection) async throws -> Bool {
        if settings.createGroups {
            do {
                _ = try await connection.send(XGROUPCREATE(stream, group: settings.group, id: "0", makeStream: settings.makeStream))
                return true
            } catch {
                if error.prefix == "ERR" && !settings.makeStream { return false }  // the stream does not exist (yet)
                throw error
            }
        }
        let groups = (try? await connection.send(XINFOGROUPS(stream))) ?? []
        if groups.contains(where: { $0.name == settings.group }) { return true }
        if warnedWithoutGroup.insert(stream).inserted {
            logger.warning(
                "stream has no consumer group \(settings.group) and creating groups is off; skipping it",
                metadata: metadata.merging(["ferry.stream": "\(stream)"]) { $1 })
        }
        return false
    }

    /// This consumer's own pending entries of `stream` (a restart after a crash), oldest first.
    private mutating func recoverOwnPending(_ stream: String, on connection: RedisConnection) async throws {
        var cursor = "0-0"
        while !Task.isCancelled {
            let read = try await connection.send(
                XREADGROUP(group: settings.group, consumer: settings.consumer, streams: [(key: stream, id: cursor)], count: settings.entriesPerRead))
            let entries = read.first?.entries ?? []
            if entries.isEmpty { return }
            cursor = entries.last!.id
            try await process(entries, stream: stream, on: connection, checkDeliveries: true)
        }
    }

    /// Nothing pending for the group and nothing undelivered, in every stream.
    private func isDrained(_ streams: [String], on connection: RedisConnection) async throws -> Bool {
        for stream in streams {
            let groups = try await connection.send(XINFOGROUPS(stream))
            guard let group = groups.first(where: { $0.name == settings.group }) else { continue }
            if group.pending > 0 { return false }
            let info = try await connection.send(XINFOSTREAM(stream))
            if info.length > 0, RedisStreamID(group.lastDeliveredID) ?? .zero < RedisStreamID(info.lastGeneratedID) ?? .zero { return false }
        }
        return true
    }

    /// Claims entries of `stream` left pending by stopped consumers, one read's worth at a time: a claim counts as a
    /// delivery, so claiming more than this consumer applies next would inflate the delivery counts of entries it
    /// never tried.
    private mutating func claimAbandoned(_ stream: String, on connection: RedisConnection) async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let claim = try await connection.send(
                XAUTOCLAIM(
                    stream, group: settings.group, consumer: settings.consumer, minimumIdle: settings.claimIdle,
                    start: claimCursors[stream] ?? "0-0", count: settings.entriesPerRead))
            claimCursors[stream] = claim.nextStart
            guard !claim.entries.isEmpty else { return }
            logger.notice(
                "claimed entries left pending by a stopped consumer",
                metadata: metadata.merging(["ferry.stream": "\(stream)", "ferry.entries": "\(claim.entries.count)"]) { $1 })
            try await process(claim.entries, stream: stream, on: connection, checkDeliveries: true)
            if claim.nextStart == "0-0" { return }
        }
    }

    private mutating func process(_ entries: [RedisStreamEntry], stream: String, on connection: RedisConnection, checkDeliveries: Bool) async throws {
        var deliveries: [String: Int] = [:]
        if checkDeliveries, let first = entries.first, let last = entries.last {
            let pending = try await connection.send(
                XPENDINGEXTENDED(
                    stream, group: settings.group, start: first.id, end: last.id, count: entries.count + 10, consumer: settings.consumer))
            for item in pending { deliveries[item.id] = item.deliveries }
        }
        var batch: [Consumed<Applier.Entry>] = []
        var done: [String] = []
        var isolated: Set<String> = []
        for raw in entries {
            guard raw.fields != nil else {
                done.append(raw.id)  // deleted while pending: nothing to apply
                continue
            }
            let entry: Applier.Entry
            do {
                entry = try applier.decode(raw, stream: stream)
            } catch {
                logger.error(
                    "unreadable stream entry moved to the dead letters",
                    metadata: metadata.merging(["ferry.stream": "\(stream)", "ferry.entry": "\(raw.id)", "ferry.error": "\(error)"]) { $1 })
                try await applier.deadLetter(id: raw.id, stream: stream, entry: nil, reason: "\(error)", deliveries: deliveries[raw.id])
                applier.countDeadLetters(1)
                done.append(raw.id)
                continue
            }
            if let count = deliveries[raw.id], count >= settings.maxDeliveries {
                logger.warning(
                    "stream entry delivered many times; applying it on its own",
                    metadata: metadata.merging(["ferry.stream": "\(stream)", "ferry.entry": "\(raw.id)", "ferry.deliveries": "\(count)"]) { $1 })
                isolated.insert(raw.id)
            }
            batch.append(Consumed(id: raw.id, entry: entry))
        }
        if !done.isEmpty { _ = try await connection.send(XACK(stream, group: settings.group, ids: done)) }

        // Consecutive entries that may share a transaction, up to applyBatchRows rows each. One heartbeat covers
        // the whole read, so entries still waiting for their transaction do not look abandoned to other consumers.
        let heartbeat = Heartbeat(
            stream: stream, group: settings.group, consumer: settings.consumer, ids: batch.map(\.id), interval: settings.claimIdle / 3,
            connection: connection)
        var start = 0
        while start < batch.count {
            var end = start + 1
            var rows = applier.rowCount(of: batch[start].entry)
            while end < batch.count, applier.canShareTransaction(batch[start].entry, batch[end].entry),
                rows + applier.rowCount(of: batch[end].entry) <= settings.applyBatchRows, !isolated.contains(batch[start].id),
                !isolated.contains(batch[end].id)
            {
                rows += applier.rowCount(of: batch[end].entry)
                end += 1
            }
            try await applyEntries(
                Array(batch[start..<end]), stream: stream, on: connection, isolated: isolated.contains(batch[start].id), heartbeat: heartbeat)
            start = end
        }
    }

    /// Applies consecutive entries in one transaction and acknowledges them after it commits. An `isolated` entry
    /// has its attempt counted first; once `maxDeliveries` attempts have begun without one finishing, the consumer
    /// stopping each time, the entry goes to the dead letters whole.
    private mutating func applyEntries(
        _ entries: [Consumed<Applier.Entry>], stream: String, on connection: RedisConnection, isolated: Bool, heartbeat: Heartbeat
    ) async throws {
        try await heartbeat.beat()
        let field = isolated ? entries.first.map { "\(stream) \($0.id)" } : nil
        if let field, let item = entries.first {
            let attempts = try await connection.send(HINCRBY(settings.attemptsKey, field: field))
            if attempts > settings.maxDeliveries {
                let reason =
                    "a consumer stopped \(attempts - 1) times while applying this entry on its own (a crash, a kill or an out-of-memory stop each time)"
                logger.error(
                    "stream entry moved to the dead letters",
                    metadata: metadata.merging(["ferry.stream": "\(stream)", "ferry.entry": "\(item.id)", "ferry.reason": "\(reason)"]) { $1 })
                try await heartbeat.keepingAlive {
                    try await applier.deadLetter(id: item.id, stream: stream, entry: item.entry, reason: reason, deliveries: attempts - 1)
                }
                applier.countDeadLetters(applier.rowCount(of: item.entry))
                _ = try await connection.send(XACK(stream, group: settings.group, ids: [item.id]))
                _ = try await connection.send(HDEL(settings.attemptsKey, [field]))
                return
            }
        }
        try await applyAndAcknowledge(entries, stream: stream, on: connection, heartbeat: heartbeat)
        if let field { _ = try await connection.send(HDEL(settings.attemptsKey, [field])) }
    }

    private mutating func applyAndAcknowledge(
        _ entries: [Consumed<Applier.Entry>], stream: String, on connection: RedisConnection, heartbeat: Heartbeat
    ) async throws {
        let ids = entries.map(\.id)
        let rows = entries.reduce(0) { $0 + applier.rowCount(of: $1.entry) }
        let clock = ContinuousClock()
        var attempt = 0
        var reprepared = false
        while true {
            try Task.checkCancellation()
            try await heartbeat.beat()
            let started = clock.now
            do {
                let interrupt = applier.interrupter
                let (limit, logger, metadata) = (settings.applyTimeout, logger, metadata)
                let watchdog = Task {
                    try await Task.sleep(for: limit)
                    logger.warning(
                        "a batch waited too long for PostgreSQL; closing its connection and applying it again",
                        metadata: metadata.merging(["ferry.stream": "\(stream)", "ferry.waited": "\(limit)"]) { $1 })
                    // Again every second until the attempt ends: an interrupt finds nothing to close while the session
                    // has not begun connecting yet (a loaded machine), and the attempt must not outlive its limit.
                    while true {
                        interrupt()
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                defer { watchdog.cancel() }
                try await heartbeat.keepingAlive { try await applier.apply(entries, stream: stream) }
                _ = try await connection.send(XACK(stream, group: settings.group, ids: ids))
                applied += rows
                applier.finished(entries, stream: stream, rows: rows, elapsed: clock.now - started)
                return
            } catch let error where PostgresDiagnosis.isDataError(error) {
                logger.warning(
                    "a batch was rejected; isolating the rows PostgreSQL refuses",
                    metadata: metadata.merging([
                        "ferry.stream": "\(stream)", "ferry.rows": "\(rows)", "ferry.error": "\(PostgresDiagnosis.reason(error))",
                    ]) {
                        $1
                    })
                let (good, bad) = try await applier.isolate(entries, stream: stream, heartbeat: heartbeat)
                _ = try await connection.send(XACK(stream, group: settings.group, ids: ids))
                applied += good
                applier.finished(entries, stream: stream, rows: good, elapsed: clock.now - started)
                applier.countDeadLetters(bad)
                return
            } catch let error as FerryError where error.code != .unreachable {
                // A target that cannot take these entries (type change, permissions): the job stops here.
                await applier.recordError(error.description)
                throw error
            } catch {
                if !reprepared, PostgresDiagnosis.sqlState(of: error)?.hasPrefix("42") == true {
                    // The target was changed or dropped by someone: create or migrate it again, once.
                    reprepared = true
                    applier.reset()
                    continue
                }
                applier.countRetry()
                let message = PostgresDiagnosis.reason(error)
                await applier.recordError(message)
                if let limit = settings.postgresMaxRetries, attempt >= limit {
                    throw FerryError(
                        .unreachable, "\(applier.name): PostgreSQL failed \(attempt + 1) times in a row: \(message)",
                        fix: "check that PostgreSQL is running and reachable, or raise the PostgreSQL retry limit (`PG_MAX_RETRIES`)")
                }
                let delay = settings.postgresBackoff.delay(attempt: attempt)
                attempt += 1
                logger.warning(
                    "cannot apply a batch, retrying",
                    metadata: metadata.merging(["ferry.stream": "\(stream)", "ferry.error": "\(message)", "ferry.retry_in": "\(delay)"]) { $1 })
                try await heartbeat.sleep(for: delay)
            }
        }
    }

    /// Closes the applier's PostgreSQL session.
    func close() async { await applier.close() }
}
