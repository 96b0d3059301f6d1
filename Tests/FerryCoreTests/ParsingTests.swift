import FerryCore
import Testing

@Suite("Small parsers")
struct ParsingTests {
    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("10s", .seconds(10)), ("1.5s", .milliseconds(1500)), ("5m", .seconds(300)),
        ("2h", .seconds(7200)), ("60", .seconds(60)), ("0.25", .milliseconds(250)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(DurationParser.parse(text) == expected)
    }

    @Test(arguments: ["", "abc", "-1s", "10 parsecs", "1e400"])
    func badDurations(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test func durationFormatting() {
        #expect(DurationParser.format(.milliseconds(250)) == "250ms")
        #expect(DurationParser.format(.seconds(90)) == "90s")
        #expect(DurationParser.format(.seconds(120)) == "2m")
        #expect(DurationParser.format(.seconds(3600)) == "1h")
        #expect(DurationParser.format(.seconds(7 * 86400)) == "7d" && DurationParser.format(.seconds(90000)) == "25h")
    }

    @Test(arguments: [
        "text", "bigint", "citext", "public.my_enum", "\"Odd \"\"Type\"\"\"", "double precision", "character varying(20)", "varchar(255)",
        "numeric(12, 2)", "timestamp(3) with time zone", "timestamp without time zone", "interval day to second", "int[]", "text[3][]",
        "integer ARRAY", "integer ARRAY[4]", "bit varying(8)", "jsonb",
    ])
    func postgresTypeNames(text: String) {
        #expect(PostgresTypeName.problem(text) == nil, "\(PostgresTypeName.problem(text) ?? "")")
    }

    @Test(arguments: [
        "", "text, x int); DROP TABLE t; --", "text NOT NULL", "text DEFAULT 1", "int)", "numeric(a)", "numeric(1,)", "text[", "1text",
        "text -- comment", "text; SELECT 1", "\"\"", "\"un\u{0}closed", "text[] x", "public.", "text collate \"C\"",
        String(repeating: "a", count: 201),
    ])
    func notPostgresTypeNames(text: String) {
        #expect(PostgresTypeName.problem(text) != nil)
    }

    @Test func dotEnv() throws {
        let parsed = try DotEnv.parse("A=1\n# c\n\nexport B = two \nC=\"x\\ny\"\nD='#not comment'\nE=v # comment\r\n", file: ".env")
        #expect(parsed == ["A": "1", "B": "two", "C": "x\ny", "D": "#not comment", "E": "v"])
    }

    @Test func dotEnvErrorsNameTheLineNotTheValue() {
        #expect(throws: ConfigurationError.self) { try DotEnv.parse("GOOD=1\nsecret-value-without-equals\n", file: ".env") }
        do {
            _ = try DotEnv.parse("GOOD=1\nsecret-value-without-equals\n", file: ".env")
        } catch {
            #expect(error.description.contains(".env:2"))
            #expect(!error.description.contains("secret-value"))
        }
    }

    @Test func interpolation() {
        let env = ["A": "1", "EMPTY": ""]
        #expect(Interpolation.expand("x${A}y", environment: env) == .success("x1y"))
        #expect(Interpolation.expand("${MISSING:-d}", environment: env) == .success("d"))
        #expect(Interpolation.expand("${EMPTY:-d}", environment: env) == .success("d"))
        #expect(Interpolation.expand("$$A $5", environment: env) == .success("$A $5"))
        #expect(Interpolation.expand("${MISSING}", environment: env) == .failure(.unset("MISSING")))
        #expect(Interpolation.expand("${A", environment: env) == .failure(.malformed))
    }

    @Test func backoffStaysWithinBounds() {
        let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(2), maxRetries: 3)
        for attempt in 0..<20 {
            let delay = backoff.delay(attempt: attempt)
            #expect(delay >= .milliseconds(50))
            #expect(delay <= .seconds(2))
        }
        #expect(backoff.allowsRetry(after: 2))
        #expect(!backoff.allowsRetry(after: 3))
    }
}

@Suite("The cluster API's request bodies")
struct ClusterRequestBodyTests {
    @Test func aBodyIsParsedAndItsTimeoutRangeChecked() throws {
        #expect(try ClusterRequestBody.parse([UInt8]()) == ClusterRequestBody())
        let body = try ClusterRequestBody.parse(Array(#"{"to":"node2","copy":true,"timeout_seconds":60}"#.utf8))
        #expect(body == ClusterRequestBody(to: "node2", copy: true, timeoutSeconds: 60))
        #expect(try body.timeout(default: 30) == .seconds(60))
        #expect(try ClusterRequestBody().timeout(default: 30) == .seconds(30))
    }

    @Test(arguments: [
        #"{"timeout_seconds":9223372036854775807}"#, #"{"timeout_seconds":0}"#, #"{"timeout_seconds":-5}"#, #"{"timeout_seconds":86401}"#,
    ])
    func timeoutsOutOfRangeAreRefused(text: String) throws {
        let body = try ClusterRequestBody.parse(Array(text.utf8))
        #expect(throws: FerryError.self) { try body.timeout(default: 30) }
    }

    @Test(arguments: [
        "{", "[]", #"{"to":5}"#, #"{"timeout_seconds":1e400}"#, #"{"timeout_seconds":18446744073709551616}"#, #"{"to":""}"#,
        #"{"to":"a b"}"#, #"{"to":"n\u0000"}"#, #"{"to":"\#(String(repeating: "x", count: 64))"}"#, "\u{0}",
    ])
    func bodiesThatAreNotTheJSONAreRefusedWithAFix(text: String) {
        do {
            _ = try ClusterRequestBody.parse(Array(text.utf8))
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == .invalidInput && error.fix != nil)
        }
    }

    @Test func anOversizedBodyIsTooLarge() {
        do {
            _ = try ClusterRequestBody.parse([UInt8](repeating: 0x20, count: 70_000))
            Issue.record("accepted")
        } catch {
            #expect(error.code == .tooLarge)
        }
    }
}

@Suite("Stalls")
struct StallTests {
    @Test func aJobWithWorkWaitingAndNoProgressStalls() {
        var watch = StallWatch(after: .seconds(60))
        let start = ContinuousClock.now
        #expect(watch.observe(progress: 10, backlog: 5, what: "entry applied", now: start) == nil)
        #expect(watch.observe(progress: 10, backlog: 5, what: "entry applied", now: start + .seconds(59)) == nil)
        let message = watch.observe(progress: 10, backlog: 5, what: "entry applied", now: start + .seconds(61))
        #expect(message?.hasPrefix("no entry applied for 61s while 5 wait") == true, "\(message ?? "")")
        #expect(watch.observe(progress: 11, backlog: 5, what: "entry applied", now: start + .seconds(62)) == nil, "progress clears it")
        #expect(watch.observe(progress: 11, backlog: 0, what: "entry applied", now: start + .seconds(500)) == nil, "nothing to do is no stall")
        #expect(watch.observe(progress: 11, backlog: 3, what: "entry applied", now: start + .seconds(530)) == nil, "the clock starts when work waits")
    }

    @Test func onlyARunningJobCanStallAndAFailedOneStaysFailed() {
        let jobs = JobRegistry()
        jobs.register("redis_sync")
        jobs.reportStall("redis_sync", "no entry")
        #expect(jobs.snapshot[0].state == .starting, "not running yet")
        jobs.update("redis_sync", .running)
        jobs.reportStall("redis_sync", "no entry")
        #expect(jobs.snapshot[0].state == .stalled && jobs.snapshot[0].error == "no entry")
        jobs.reportStall("redis_sync", nil)
        #expect(jobs.snapshot[0].state == .running && jobs.snapshot[0].error == nil)
        jobs.update("redis_sync", .failed, error: "boom")
        jobs.reportStall("redis_sync", nil)
        #expect(jobs.snapshot[0].state == .failed)
    }
}
