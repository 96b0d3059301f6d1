import FerryCheck
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Logging
import Testing

@Suite("ferry check diagnoses each endpoint", .sandbox)
struct CheckTests {
    let checker = EndpointChecker(logger: Logger(label: "ferry.test.check"))

    func configuration(_ adjust: (inout PostgresEndpoint, inout RedisEndpoint) -> Void = { _, _ in }) throws -> FerryConfiguration {
        let sandbox = try SandboxContext.require()
        var postgres = try #require(sandbox.postgres).endpoint
        var redis = try #require(sandbox.redis).endpoint
        adjust(&postgres, &redis)
        var configuration = FerryConfiguration()
        configuration.postgres = postgres
        configuration.redis = redis
        return configuration
    }

    @Test func allOK() async throws {
        let checks = await checker.check(try configuration())
        #expect(checks.map(\.name) == ["postgres", "redis"])
        #expect(checks.map(\.status) == [.ok, .ok], "\(checks.map(\.detail))")
        // Each check reports how long it took (how fast is for benchmarks, not tests: the suite shares two cores).
        #expect(checks.allSatisfy { $0.latency.map { $0 > .zero } ?? false })
        #expect(checks[0].detail.contains("PostgreSQL 15"))
        #expect(checks[1].detail.contains("Redis 7"))
        #expect(checks[1].warnings.isEmpty, "sandbox Redis is durable and noeviction: \(checks[1].warnings)")
    }

    @Test func wrongPassword() async throws {
        let checks = await checker.check(
            try configuration { postgres, redis in
                postgres.password = Secret("wrong-password")
                redis.password = Secret("wrong-password")
            }
        )
        #expect(checks.map(\.status) == [.authenticationFailed, .authenticationFailed])
        #expect(checks[0].fix?.contains("postgres.password") == true)
        #expect(checks[1].fix?.contains("REDIS_PASSWORD") == true)
        #expect(!checks.contains { $0.detail.contains("wrong-password") || ($0.fix ?? "").contains("wrong-password") })
    }

    @Test func missingRedisPassword() async throws {
        let checks = await checker.check(try configuration { _, redis in redis.password = nil })
        #expect(checks[1].status == .authenticationFailed)
        #expect(checks[1].detail == "the server requires a password")
    }

    @Test func wrongPort() async throws {
        let closedPort = try FreePort.find()
        let checks = await checker.check(
            try configuration { postgres, redis in
                postgres.port = closedPort
                redis.port = closedPort
            }
        )
        #expect(checks.map(\.status) == [.unreachable, .unreachable])
        #expect(checks[0].address == "127.0.0.1:\(closedPort)")
        #expect(checks[0].detail.contains("connection refused"))
        #expect(checks[1].detail.contains("connection refused"))
    }

    @Test func missingDatabase() async throws {
        let checks = await checker.check(
            try configuration { postgres, redis in
                postgres.database = "no_such_database"
                redis.db = 99
            }
        )
        #expect(checks.map(\.status) == [.databaseMissing, .databaseMissing])
        #expect(checks[0].detail.contains("\"no_such_database\""))
        #expect(checks[0].fix?.contains("CREATE DATABASE \"no_such_database\"") == true)
        #expect(checks[1].detail.contains("database 99"))
    }

    @Test func missingPermissions() async throws {
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        _ = try await postgres.psql(
            """
            DROP ROLE IF EXISTS limited; CREATE ROLE limited LOGIN PASSWORD 'limited-pw';
            DROP SCHEMA IF EXISTS locked CASCADE; CREATE SCHEMA locked; REVOKE ALL ON SCHEMA locked FROM PUBLIC;
            DROP TABLE IF EXISTS public.hidden; CREATE TABLE public.hidden (id int);
            """
        )
        var config = try configuration { postgres, _ in
            postgres.user = "limited"
            postgres.password = Secret("limited-pw")
            postgres.schema = "locked"
        }
        var checks = await checker.check(config)
        #expect(checks[0].status == .permissionMissing)
        #expect(checks[0].fix?.contains("GRANT USAGE ON SCHEMA \"locked\" TO \"limited\"") == true)

        config.postgres?.schema = "public"
        checks = await checker.check(config)
        #expect(checks[0].status == .ok)
        let pipeline = PipelineConfiguration(
            name: "p",
            source: .init(connection: "postgres", table: "public.hidden", query: nil, key: ["id"], watermark: "id"),
            target: .init(schema: "public", table: "m"),
            batchSize: 10,
            interval: .seconds(1)
        )
        config.pipelines = [pipeline]
        checks = await checker.check(config)
        #expect(checks[0].status == .permissionMissing)
        #expect(checks[0].detail.contains("may not read \"public.hidden\""))

        let redis = try #require(sandbox.redis)
        _ = try await RedisAdmin.send(redis, ["ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+@read", "+hello", "+ping"])
        config = try configuration { _, redis in
            redis.user = "reader"
            redis.password = Secret("reader-pw")
        }
        checks = await checker.check(config)
        #expect(checks[1].status == .permissionMissing, "\(checks[1].detail)")
        #expect(checks[1].detail.contains("may not run"))
    }
}
