import Crypto
import FerryCore
import FerryPostgresNode
import FerrySandbox
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `/ui` in a real headless browser (Debian's Chromium): `ferry run` with a running pipeline and the API; a sign-in link
/// from `POST /ui/sessions`; the page shows the pipeline's numbers, its script refreshes them from `/ui/state`, a later
/// load shows rows applied since; a screenshot is kept as a test artifact (.ferry/test/artifacts/ui.png). Without a
/// session the page and its state are refused; the token never reaches the browser.
@Suite(.sandbox) struct StatusPageTests {
    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// Chromium headless on `url` with the profile in `profile` (cookies kept between runs).
    static func chromium(_ arguments: [String], profile: String) async throws -> FerryProcess.Result {
        try await ExternalClient.run(
            "chromium",
            ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=\(profile)"] + arguments,
            timeout: .seconds(120))
    }

    @Test func thePageShowsARunningPipelineAndUpdatesIt() async throws {
        let world = try await SyncWorld.make("uipage", rows: 500)
        let sandbox = try SandboxContext.require()
        let postgres = try #require(sandbox.postgres)
        let redis = try #require(sandbox.redis)
        let directory = try FerryProcess.scratchDirectory()
        try """
        users:
          - name: viewer
            token_sha256: \(Self.hash("token-viewer"))
        """.write(toFile: directory + "/permissions.yaml", atomically: true, encoding: .utf8)
        try """
        postgres:
          host: 127.0.0.1
          port: \(postgres.port)
          database: \(postgres.database)
          user: \(postgres.user)
          password: "\(postgres.password)"
          schema: \(world.targetSchema)
          tls: disable
        redis:
          host: 127.0.0.1
          port: \(redis.port)
          password: "\(redis.password ?? "")"
        api:
          permissions: permissions.yaml
          audit_log: audit.jsonl
        pipelines:
          - name: \(world.pipeline.name)
            source:
              table: \(world.sourceSchema).VW_VENTAS_SYNC
              key: [CONDUCE]
              watermark: ULTIMA_MODIFICACION
            target:
              schema: \(world.targetSchema)
              table: datos_vista
            interval: 200ms

        """.write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
        let port = try FreePort.find()
        let daemon = try FerryProcess.start(["run", "--http-port", "\(port)"], in: directory)
        defer { daemon.signal(SIGKILL) }
        _ = try await HTTPProbe.waitFor(port: port, path: "/health/live", status: 200, timeout: .seconds(60))
        try await eventually("the pipeline applies the first 500 rows", timeout: .seconds(60)) {
            (try? await world.int("SELECT count(*) FROM \(world.mirror)")) == 500
        }
        // Without a session: refused, page and state.
        #expect(try await HTTPProbe.get(port: port, path: "/ui").status == 401)
        #expect(try await HTTPProbe.get(port: port, path: "/ui/state").status == 401)
        #expect(try await HTTPProbe.request("POST", port: port, path: "/ui/sessions").status == 401)

        func signInLink() async throws -> String {
            let made = try await HTTPProbe.request("POST", port: port, path: "/ui/sessions", headers: ["Authorization": "Bearer token-viewer"])
            #expect(made.status == 201, "\(made.body)")
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(made.body.utf8)) as? [String: Any])
            return "http://127.0.0.1:\(port)" + (try #require(fields["url"] as? String))
        }
        let profile = directory + "/chromium"
        // Sign in (the link sets the session cookie in the profile and leads to /ui), then let the script refresh.
        let first = try await Self.chromium(["--virtual-time-budget=7000", "--dump-dom", try await signInLink()], profile: profile)
        #expect(first.status == 0, "\(first.stderr.suffix(1000))")
        let dom = first.stdout
        #expect(dom.contains(world.pipeline.name) && dom.contains("id=\"p-\(world.pipeline.name)-applied\""), "\(dom.prefix(3000))")
        #expect(dom.contains(">500<"), "the applied count: \(dom.prefix(4000))")
        let refreshes = dom.firstMatch(of: /id="refreshes">(\d+)</).flatMap { Int($0.1) } ?? 0
        #expect(refreshes >= 2, "the page refreshed itself from /ui/state: \(refreshes)")
        #expect(!dom.contains("token-viewer"))
        // More rows at the source: a later load shows them applied.
        try await world.insert(1_001...1_250)
        try await eventually("the pipeline applies 250 more", timeout: .seconds(60)) {
            (try? await world.int("SELECT count(*) FROM \(world.mirror)")) == 750
        }
        try await Task.sleep(for: .milliseconds(2500))
        let artifacts = FileManager.default.currentDirectoryPath + "/.ferry/test/artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let second = try await Self.chromium(
            ["--virtual-time-budget=3000", "--window-size=1280,800", "--screenshot=\(artifacts)/ui.png", "http://127.0.0.1:\(port)/ui"],
            profile: profile)
        #expect(second.status == 0, "\(second.stderr.suffix(1000))")
        let shot = try Data(contentsOf: URL(fileURLWithPath: artifacts + "/ui.png"))
        #expect(shot.count > 10_000 && shot.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG screenshot of the page")
        let third = try await Self.chromium(["--virtual-time-budget=3000", "--dump-dom", "http://127.0.0.1:\(port)/ui"], profile: profile)
        #expect(third.stdout.contains(">750<"), "the applied count after the new rows: \(third.stdout.prefix(4000))")
        // A used link opens nothing.
        let link = try await signInLink()
        _ = try await HTTPProbe.get(port: port, path: String(link.dropFirst("http://127.0.0.1:\(port)".count)))
        #expect(try await HTTPProbe.get(port: port, path: String(link.dropFirst("http://127.0.0.1:\(port)".count))).status == 401)
        daemon.signal(SIGTERM)
        _ = try await daemon.wait(timeout: .seconds(30))
        await world.close()
    }
}
