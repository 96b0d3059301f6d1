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
