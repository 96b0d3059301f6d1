import FerryPostgresNode
import FerrySandbox
import Foundation

/// CPU time used by Ferry, the sandbox's PostgreSQL and its Redis, read from `/proc`, so a benchmark can say where
/// each row's time went. On two shared cores a change of a few percent is lost in the run-to-run noise of a rate;
/// CPU seconds per row are much steadier.
struct ProcessCPU: Sendable {
    /// Seconds of CPU (user + system) since each process started, children it has waited for included (a
    /// finished PostgreSQL backend's time moves to the postmaster's; an AOF rewrite's to Redis's).
    var ferry: Double
    var postgres: Double
    var redis: Double

    static func sample(postgres: PostgresInstance, redis: RedisInstance) -> ProcessCPU {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let ferry = seconds(usage.ru_utime) + seconds(usage.ru_stime)
        var postgresTotal = 0.0
        let postmaster = postgres.pid
        for pid in postgres.processes { postgresTotal += ticks(of: pid, withChildren: pid == postmaster) }
        return ProcessCPU(
            ferry: ferry, postgres: postgresTotal / clockTicks,
            redis: (redis.pid.map { ticks(of: $0, withChildren: true) } ?? 0) / clockTicks)
    }

    static func - (after: ProcessCPU, before: ProcessCPU) -> ProcessCPU {
        ProcessCPU(ferry: after.ferry - before.ferry, postgres: after.postgres - before.postgres, redis: after.redis - before.redis)
    }

    /// Microseconds of each per item, e.g. per stream entry.
    func microseconds(per items: Int) -> ProcessCPU {
        let scale = 1e6 / Double(max(items, 1))
        return ProcessCPU(ferry: ferry * scale, postgres: postgres * scale, redis: redis * scale)
    }

    /// Samples before `body` and after it, leaving closed sessions' backends time to exit and be reaped (their
    /// CPU then shows in the postmaster's children's time; an exiting backend is in neither).
    static func measure<T>(postgres: PostgresInstance, redis: RedisInstance, _ body: () async throws -> T) async throws -> (T, ProcessCPU) {
        let before = sample(postgres: postgres, redis: redis)
        let result = try await body()
        try await Task.sleep(for: .milliseconds(500))
        return (result, sample(postgres: postgres, redis: redis) - before)
    }

    /// Figures for a benchmark report: `label` (e.g. "CPU per entry") in each process, in microseconds.
    func figures(_ label: String) -> [SyncBenchmark.Figure] {
        [("Ferry", ferry), ("PostgreSQL", postgres), ("Redis", redis)].map { process, value in
            .init(name: "\(label): \(process)", ferry: value, unit: "µs", higherIsBetter: false)
        }
    }

    private static let clockTicks = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// CPU seconds (user + system) of process `pid` so far.
    static func seconds(ofProcess pid: Int32) -> Double { ticks(of: pid, withChildren: false) / clockTicks }

    private static func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }

    /// utime + stime (fields 14 and 15 of `/proc/PID/stat`), plus cutime + cstime (16, 17) when asked.
    private static func ticks(of pid: Int32, withChildren: Bool) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm)": field 3 (state) is the first.
        let fields = text[text.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double { fields.count > number - 3 ? Double(fields[number - 3]) ?? 0 : 0 }
        return field(14) + field(15) + (withChildren ? field(16) + field(17) : 0)
    }
}
