import FerryCore
import Foundation
import Testing

/// `backup:` in ferry.yaml: read and checked; `ferry backup` reads it alone, so a problem elsewhere in the file does
/// not stop a backup.
@Suite struct BackupConfigurationTests {
    func load(_ yaml: String, only: Bool = false) throws -> ConfigLoader.Loaded {
        let directory = NSTemporaryDirectory() + "ferry-backup-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try yaml.write(toFile: directory + "/ferry.yaml", atomically: true, encoding: .utf8)
        let loader = ConfigLoader(environment: [:], directory: directory)
        return only ? try loader.load(FerryConfiguration.readBackupOnly) : try loader.load()
    }

    func problems(_ yaml: String, only: Bool = false) -> [String] {
        do {
            _ = try load(yaml, only: only)
            return []
        } catch let error as ConfigurationError {
            return error.issues.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    static let section = """
        postgres: {host: db, database: app, user: ferry}
        backup:
          repository: /backups/ferry
          data_directory: /var/lib/postgresql/15/main
          compression: LZ4
          workers: 4
          catalog: redis://127.0.0.1:6379/2
          keep_full: 2
          keep_days: 6
          full_every: 7d
          incremental_every: 1d
          archive_timeout: 5m

        """

    @Test func aBackupSectionIsReadWithItsSchedule() throws {
        let backup = try #require(try load(Self.section).configuration.backup)
        #expect(backup.repository == "/backups/ferry" && backup.dataDirectory == "/var/lib/postgresql/15/main")
        #expect(backup.compression == "lz4" && backup.workers == 4 && backup.catalog == "redis://127.0.0.1:6379/2")
        #expect(backup.keepFull == 2 && backup.keepDays == 6)
        #expect(backup.fullEvery == .seconds(7 * 86_400) && backup.incrementalEvery == .seconds(86_400) && backup.archiveTimeout == .seconds(300))
        #expect(backup.postgres == nil, "the top-level postgres is used")
    }

    @Test func mistakesAreNamedByKey() {
        let found = problems(
            """
            backup:
              data_directory: /data
              compression: brotli
              workers: 0
              keep_days: -1
              full_every: soon
              colour: blue

            """)
        for expected in ["backup.repository", "backup.compression", "backup.workers", "backup.keep_days", "backup.full_every", "backup.colour"] {
            #expect(found.contains { $0.contains(expected) }, "\(expected) in \(found)")
        }
        #expect(problems("backup:\n  repository: /r\n  data_directory: /d\n").contains { $0.contains("backup.postgres") }, "a server to back up")
    }

    @Test func ferryBackupReadsItsSectionAloneAndIgnoresTheRest() throws {
        let broken = Self.section + "pipelines:\n  - name: 7\n    nonsense: true\nredis_sync: {what: ever}\n"
        #expect(!problems(broken).isEmpty, "the whole file has problems")
        let backup = try #require(try load(broken, only: true).configuration.backup)
        #expect(backup.repository == "/backups/ferry")
        #expect(problems("postgres: {host: db, database: app, user: ferry}\n", only: true).contains { $0.contains("backup") })
    }

    @Test func theRenderedConfigurationShowsTheSectionWithoutTheCataloguesPassword() throws {
        let yaml = Self.section.replacingOccurrences(of: "redis://127.0.0.1:6379/2", with: "redis://ferry:s3cret@127.0.0.1:6379/2")
        let loaded = try load(yaml)
        let rendered = loaded.configuration.renderYAML(tree: loaded.tree)
        #expect(
            rendered.contains("repository: /backups/ferry") && rendered.contains("full_every: 7d") && rendered.contains("keep_days: 6"), "\(rendered)"
        )
        #expect(rendered.contains("redis://***@127.0.0.1:6379/2") && !rendered.contains("s3cret"), "\(rendered)")
    }

    @Test func aDefinedClusterArchivesIntoTheNamedRepository() throws {
        let yaml = """
            cluster:
              etcd: [http://127.0.0.1:2379]
              replication: {user: replicator}
              superuser: {user: postgres}
              archive_repository: /backups/wal
              ferry_binary: /usr/local/bin/ferry
              nodes:
                - {name: node1, host: 10.0.0.1}

            """
        let cluster = try #require(try load(yaml).configuration.cluster)
        #expect(cluster.archiveRepository == "/backups/wal" && cluster.ferryBinary == "/usr/local/bin/ferry")
        #expect(problems(yaml.replacingOccurrences(of: "/usr/local/bin/ferry", with: "ferry")).contains { $0.contains("cluster.ferry_binary") })
    }
}
