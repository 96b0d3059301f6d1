import FerryCore
import Foundation
import Synchronization
import Testing

@testable import FerryBackup

#if canImport(Glibc)
    import Glibc
#endif

/// S3 repositories. Without a server: the SigV4 signer against AWS's published example, locations and credentials
/// read from the environment, addressing, the XML scanner. Against moto's S3 server (`MotoServer`): each repository
/// operation, the lock, the WAL archive and a full + incremental backup chain restored byte for byte. The tests that
/// do not list run against a moto with IAM authentication on, which checks each request's signature with botocore's
/// signer and refuses unknown keys and missing permissions; listing runs against one without, because moto's check
/// decodes the query before it signs it again and so refuses any list whose prefix holds a `/` (boto3's own too).
@Suite struct S3RepositoryTests {
    // MARK: Signing

    static let example = S3Configuration.Credentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
    /// 2013-05-24T00:00:00Z, the examples' time.
    static let exampleTime = Date(timeIntervalSince1970: 1_369_353_600)

    /// "Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk", Example: GET
    /// Object (the first 10 bytes of test.txt in examplebucket): the canonical request, the string to sign and the
    /// Authorization header AWS publishes.
    @Test func theSignerReproducesAWSsPublishedGetObjectExample() {
        let signer = S3Signer(credentials: Self.example, region: "us-east-1")
        let request = S3Signer.Request(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", headers: [(name: "Range", value: "bytes=0-9")],
            payloadHash: S3Signer.emptyPayloadHash)
        let added = signer.sign(request, at: Self.exampleTime)
        #expect(
            added.first { $0.name == "Authorization" }?.value
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
        #expect(added.first { $0.name == "x-amz-date" }?.value == "20130524T000000Z")
        #expect(added.first { $0.name == "x-amz-content-sha256" }?.value == S3Signer.emptyPayloadHash)
        let (canonical, names) = S3Signer.canonicalRequest(request, headers: request.headers + added.filter { $0.name != "Authorization" })
        #expect(
            canonical == """
                GET
                /test.txt

                host:examplebucket.s3.amazonaws.com
                range:bytes=0-9
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;range;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """)
        #expect(names == "host;range;x-amz-content-sha256;x-amz-date")
        #expect(
            S3Signer.stringToSign(canonical, stamp: "20130524T000000Z", scope: "20130524/us-east-1/s3/aws4_request") == """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
                """)
    }

    @Test func aSessionTokenIsSentAndSignedAndNoSecretIsPrinted() {
        var credentials = Self.example
        credentials.sessionToken = Secret("session-token-value")
        let added = S3Signer(credentials: credentials, region: "eu-west-1").sign(
            S3Signer.Request(method: "PUT", host: "h", path: "/b/k", payloadHash: S3Signer.emptyPayloadHash), at: Self.exampleTime)
        #expect(added.first { $0.name == "x-amz-security-token" }?.value == "session-token-value")
        let authorization = added.first { $0.name == "Authorization" }?.value ?? ""
        #expect(authorization.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
        #expect(authorization.contains("/20130524/eu-west-1/s3/aws4_request"))
        #expect("\(credentials)".contains("wJalrXUtnFEMI") == false && "\(credentials)".contains("session-token-value") == false)
    }

    /// What is signed is what is sent: the query string (a real continuation token holds `+`, `/` and `=`) reaches the
    /// HTTP client's URL unchanged, and keys are encoded byte by byte.
    @Test func queriesAndKeysAreEncodedAsSignedAndSent() {
        let query = S3Signer.canonicalQuery([
            (name: "prefix", value: "backups/"), (name: "list-type", value: "2"),
            (name: "continuation-token", value: "1ueGcxLPRx1Tr/XYE+xHnhb=="), (name: "delimiter", value: "/"), (name: "delete", value: ""),
        ])
        #expect(query == "continuation-token=1ueGcxLPRx1Tr%2FXYE%2BxHnhb%3D%3D&delete=&delimiter=%2F&list-type=2&prefix=backups%2F")
        #expect(URL(string: "http://127.0.0.1:9000/bucket?" + query)?.query == query)
        #expect(S3Signer.uriEncode("wal/00AF/a b+é~", encodeSlash: false) == "wal/00AF/a%20b%2B%C3%A9~")
        #expect(S3Signer.uriEncode("a/b", encodeSlash: true) == "a%2Fb")
        #expect(S3Signer.timestamps(Date(timeIntervalSince1970: 1_796_565_105)) == ("20261206T135145Z", "20261206"))
    }

    // MARK: Locations and the environment

    @Test func locationsCredentialsRegionAndEndpointComeFromTheEnvironment() throws {
        let keys = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret-key"]
        let local = try S3Configuration(
            location: "s3://backups/ferry/cluster1/",
            environment: keys.merging([
                "AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/", "AWS_DEFAULT_REGION": "eu-west-1",
                "AWS_REGION": "eu-central-1", "AWS_SESSION_TOKEN": "token",
            ]) { $1 })
        #expect(local.bucket == "backups" && local.prefix == "ferry/cluster1" && local.location == "s3://backups/ferry/cluster1")
        #expect(local.region == "eu-central-1" && local.credentials.sessionToken?.value == "token")
        #expect(local.endpoint == S3Configuration.Endpoint(secure: false, host: "127.0.0.1", port: 9000))
        #expect(local.pathStyle && local.server.authority == "127.0.0.1:9000")
        #expect(local.path(of: local.key("wal/x")) == "/backups/ferry/cluster1/wal/x" && local.path(of: nil) == "/backups")

        let aws = try S3Configuration(location: "s3://backups", environment: keys.merging(["AWS_DEFAULT_REGION": "eu-west-1"]) { $1 })
        #expect(aws.prefix == "" && aws.region == "eu-west-1" && aws.endpoint == nil && !aws.pathStyle)
        #expect(aws.server.description == "https://backups.s3.eu-west-1.amazonaws.com" && aws.path(of: aws.key("a/b")) == "/a/b")
        let dotted = try S3Configuration(location: "s3://my.backups/p", environment: keys)
        #expect(dotted.region == "us-east-1" && dotted.pathStyle && dotted.server.authority == "s3.us-east-1.amazonaws.com")
        #expect(dotted.path(of: dotted.key("x")) == "/my.backups/p/x")

        for bad in ["s3://", "s3:///x", "s3://b/../x", "s3://b//x", "s3://b/./x", "s3://bad bucket/x", "gs://b/x", "s3://b/x\ny"] {
            let error = #expect(throws: FerryError.self, "\(bad)") { try S3Configuration(location: bad, environment: keys) }
            #expect(error?.code == .configuration)
        }
        for bad in ["ftp://h", "http://", "http://h/path", "h:9000", "http://user:pw@h"] {
            let error = #expect(throws: FerryError.self, "\(bad)") {
                try S3Configuration(location: "s3://b", environment: keys.merging(["AWS_ENDPOINT_URL_S3": bad]) { $1 })
            }
            #expect(error?.message.contains("AWS_ENDPOINT_URL_S3") == true)
        }
    }

    @Test func missingCredentialsAreNamedWithTheFixAndNoSecret() {
        let error = #expect(throws: FerryError.self) {
            try BackupRepositories.open("s3://bucket/prefix", environment: ["AWS_SECRET_ACCESS_KEY": "do-not-print-me"])
        }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains("AWS_ACCESS_KEY_ID is not set") == true, "\(String(describing: error))")
        #expect(error?.fix?.contains("AWS_SECRET_ACCESS_KEY") == true && error?.fix?.contains("PostgreSQL's own environment") == true)
        #expect(error?.description.contains("do-not-print-me") == false)
        let neither = #expect(throws: FerryError.self) { try BackupRepositories.open("s3://bucket", environment: [:]) }
        #expect(neither?.message.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set") == true)
        #expect(throws: FerryError.self) { try BackupRepositories.open("relative/path", environment: [:]) }
        #expect(
            (try? BackupRepositories.open("s3://bucket/p", environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"]))?.location
                == "s3://bucket/p")
    }

    // MARK: XML

    @Test func theXMLScannerReadsS3sRepliesAndNeverTrapsOnAPartialOne() throws {
        let document = Array(
            """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
              <IsTruncated>true</IsTruncated><!-- a <comment> -->
              <Contents><Key>p/a&amp;b&lt;c</Key><Size>3</Size></Contents>
              <Contents><Key>p/&#x41;&#66;&unknown;</Key><Owner><ID>x</ID></Owner></Contents>
              <CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes>
              <NextContinuationToken>t+/=</NextContinuationToken><Empty/><Raw><![CDATA[a&amp;<b>]]></Raw>
            </ListBucketResult>
            """.utf8)
        let page = try #require(S3XML(document))
        #expect(page.all("Key", in: "Contents") == ["p/a&b<c", "p/AB&unknown;"])
        #expect(page.all("Prefix", in: "CommonPrefixes") == ["p/d/"])
        #expect(page.first("Prefix", in: "ListBucketResult") == "p/" && page.first("IsTruncated") == "true")
        #expect(page.first("NextContinuationToken") == "t+/=" && page.first("Empty") == "" && page.first("Raw") == "a&amp;<b>")
        #expect(page.first("ID", in: "Owner") == "x" && page.first("Owner") == nil, "only text elements are listed")
        for bad in ["<a><b></a>", "<a>", "</a>", "<a><b>x</b>", "<>", "<a><![CDATA[x</a>"] { #expect(S3XML(Array(bad.utf8)) == nil, "\(bad)") }
        for length in 0..<document.count { _ = S3XML(Array(document.prefix(length))) }
        #expect(S3XML.escape(#"a&b<c>"d'"#) == "a&amp;b&lt;c&gt;&quot;d&apos;")
        let error = S3Response(status: 404, body: Array("<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>".utf8))
        #expect(error.errorCode == "NoSuchBucket" && error.errorMessage == "gone")
        #expect(S3Repository.httpDate("Mon, 07 Dec 2026 14:18:24 GMT") == 1_796_653_104)
        #expect(S3Repository.httpDate("Mon, 07 Dec 2026 14:18:24") == nil)
    }

    // MARK: Answers and retries

    @Test func answersBecomeErrorsThatNameTheBucketAndTheFix() throws {
        let repository = try S3Repository(
            location: "s3://backups/p", environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "top-secret", "AWS_REGION": "us-east-1"])
        func error(_ status: Int, _ body: String, headers: [(String, String)] = []) -> FerryError {
            var response = S3Response(status: status, body: Array(body.utf8))
            response.bucketRegion = headers.first { $0.0 == "x-amz-bucket-region" }?.1
            return repository.failure(response, "read x")
        }
        let moved = error(301, "<Error><Code>PermanentRedirect</Code></Error>", headers: [("x-amz-bucket-region", "eu-west-1")])
        #expect(moved.code == .configuration && moved.message.contains("eu-west-1") && moved.fix == "set AWS_REGION=eu-west-1")
        let malformed = error(400, "<Error><Code>AuthorizationHeaderMalformed</Code><Region>ap-south-1</Region></Error>")
        #expect(malformed.fix == "set AWS_REGION=ap-south-1")
        let echoed = error(403, "<Error><Code>SignatureDoesNotMatch</Code><Message>key top-secret is wrong</Message></Error>")
        #expect(echoed.code == .permission && !echoed.description.contains("top-secret") && echoed.message.contains("***"))
        #expect(error(404, "<Error><Code>NoSuchBucket</Code></Error>").code == .notFound)
        #expect(error(501, "<Error><Code>NotImplemented</Code></Error>").code == .unsupported)
        #expect(error(503, "<Error><Code>SlowDown</Code></Error>").message.contains("in each of 3 tries"))
        for status in [500, 502, 503, 504, 429] { #expect(S3Repository.isTransient(S3Response(status: status, body: []))) }
        for status in [200, 400, 403, 404, 409, 412] { #expect(!S3Repository.isTransient(S3Response(status: status, body: []))) }
        #expect(S3Repository.isTransient(S3Response(status: 409, body: Array("<Error><Code>ConditionalRequestConflict</Code></Error>".utf8))))
    }

    /// A store that answers 503 twice, then 200: the third try succeeds; one that keeps answering 503 fails after three.
    @Test func overloadedAnswersAreTriedAgainThreeTimesInAll() throws {
        for (failures, succeeds) in [(2, true), (3, false)] {
            let store = try ScriptedStore(failures: failures)
            var configuration = S3Configuration(
                bucket: "b", endpoint: .init(secure: false, host: "127.0.0.1", port: store.port), credentials: Self.example)
            configuration.retry = Backoff(base: .milliseconds(10), maximum: .milliseconds(20), maxRetries: 2)
            let repository = S3Repository(configuration: configuration)
            if succeeds {
                #expect(try repository.read("x") == Array("stored".utf8))
            } else {
                let error = #expect(throws: FerryError.self) { _ = try repository.read("x") }
                #expect(error?.code == .server && error?.message.contains("SlowDown") == true, "\(String(describing: error))")
            }
            #expect(store.requests.load(ordering: .relaxed) == 3)
        }
    }

    // MARK: Against moto

    @Suite(.enabled(if: MotoServer.command != nil, "moto_server is not on PATH and python3 has no moto: run scripts/setup.sh"))
    struct AgainstMoto {
        @Test func whatIsWrittenIsReadBackAndAMissingObjectIsNil() throws {
            let repository = try MotoServer.authenticated().repository()
            let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            #expect(try repository.write("backups/a/data/0", bytes, replacing: true))
            #expect(try repository.read("backups/a/data/0") == bytes)
            #expect(try repository.write("empty", [], replacing: true))
            #expect(try repository.read("empty") == [])
            #expect(try repository.read("backups/a/data/1") == nil)
            #expect(try repository.read("nothing/here") == nil)
            #expect(try repository.write("backups/a/data/0", [1, 2, 3], replacing: true), "replacing replaces")
            #expect(try repository.read("backups/a/data/0") == [1, 2, 3])
            for path in ["../escape", "/etc/passwd", "", "a//b", "a/./b", "a/.."] {
                let error = #expect(throws: FerryError.self, "\(path)") { try repository.write(path, [1], replacing: true) }
                #expect(error?.code == .invalidInput)
                #expect(throws: FerryError.self, "\(path)") { _ = try repository.read(path) }
            }
        }

        @Test func aConditionalWriteNeverReplaces() throws {
            let repository = try MotoServer.authenticated().repository()
            #expect(try repository.write("wal/f", [1, 1, 1], replacing: false))
            #expect(try repository.write("wal/f", [2, 2], replacing: false) == false)
            #expect(try repository.read("wal/f") == [1, 1, 1], "the first content stays")
            // Eight writers racing for one name: exactly one stores.
            let wins = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: 8) { index in
                if (try? repository.write("race", [UInt8(index)], replacing: false)) == true { wins.add(1, ordering: .relaxed) }
            }
            #expect(wins.load(ordering: .relaxed) == 1)
            #expect(try repository.read("race")?.count == 1)
        }

        @Test func listingShowsDirectChildrenSortedAcrossPages() throws {
            let moto = try MotoServer.open()
            let repository = try moto.repository(prefix: "ferry/cluster1")
            for path in ["backups/A/manifest.json", "backups/A/data/0", "backups/B/manifest.json", "backups/C", "wal/x/y"] {
                try repository.write(path, [1], replacing: true)
            }
            #expect(try repository.list("backups") == ["A", "B", "C"])
            #expect(try repository.list("backups/A") == ["data", "manifest.json"])
            #expect(try repository.list("backups/C") == [], "a file is not a directory")
            #expect(try repository.list("nothing") == [])
            // Another prefix in the same bucket is another repository.
            let neighbour = S3Repository(configuration: moto.configuration(bucket: repository.configuration.bucket, prefix: "ferry/cluster10"))
            try neighbour.write("backups/Z", [1], replacing: true)
            #expect(try repository.list("backups") == ["A", "B", "C"] && neighbour.list("backups") == ["Z"])

            // More than a page: ListObjectsV2 answers 1,000 keys at a time.
            let names = (0..<1_105).map { String(format: "f%04d", $0) }
            try Self.writeConcurrently(repository, names.map { "many/" + $0 } + ["many/sub/x", "many2/x", "manyx"])
            #expect(try repository.list("many") == names + ["sub"])

            try repository.remove("many")
            #expect(try repository.list("many") == [])
            #expect(try repository.read("many/f0000") == nil && repository.read("many/sub/x") == nil)
            #expect(try repository.read("many2/x") == [1] && repository.read("manyx") == [1], "only the tree under many/ goes")
            try repository.remove("backups/A")
            try repository.remove("backups/C")
            try repository.remove("not/there")
            #expect(try repository.list("backups") == ["B"])
        }

        @Test func theLockIsExclusiveNamesItsHolderAndIsReleased() throws {
            let repository = try MotoServer.authenticated().repository(prefix: "p")
            let first = try repository.lock(for: "backup full")
            let record = try #require(try repository.read("backup.lock").flatMap { try? JSONDecoder().decode(S3LockRecord.self, from: Data($0)) })
            #expect(record.pid == getpid() && record.what == "backup full" && record.host == ProcessInfo.processInfo.hostName)
            let refused = #expect(throws: FerryError.self) { _ = try repository.lock(for: "retention") }
            #expect(refused?.code == .conflict)
            #expect(
                refused?.message.contains("pid \(getpid())") == true && refused?.message.contains("backup full") == true,
                "\(String(describing: refused))")
            #expect(refused?.message.contains("retention cannot start") == true && refused?.message.contains("s3://") == true)
            first.release()
            #expect(try repository.read("backup.lock") == nil)
            do {
                let again = try repository.lock(for: "delete")
                #expect(try repository.read("backup.lock") != nil)
                _ = again
            }
            #expect(try repository.read("backup.lock") == nil, "a dropped lock is released")
        }

        /// A lock not rewritten for `lockStaleAfter` is taken over; its old holder then releases nothing.
        @Test func aStaleLockIsTakenOverAndItsOldHolderDoesNotDeleteTheNewOne() throws {
            let moto = try MotoServer.authenticated()
            var configuration = try moto.repository().configuration
            configuration.lockStaleAfter = .seconds(2)
            configuration.lockRefreshInterval = .seconds(3_600)
            let repository = S3Repository(configuration: configuration)
            let old = try repository.lock(for: "backup full")
            let deadline = ContinuousClock.now + .seconds(20)
            var taken: (any RepositoryLock)?
            while taken == nil, ContinuousClock.now < deadline {
                do {
                    taken = try repository.lock(for: "retention")
                } catch {
                    #expect(error.code == .conflict)
                    Thread.sleep(forTimeInterval: 0.2)
                }
            }
            let new = try #require(taken, "the stale lock was never taken over")
            old.release()
            let record = try repository.read("backup.lock").flatMap { try? JSONDecoder().decode(S3LockRecord.self, from: Data($0)) }
            #expect(record?.what == "retention", "the old holder's release left the new lock alone")
            new.release()
            #expect(try repository.read("backup.lock") == nil)
        }

        /// A holder rewrites its lock, so a long run's lock never looks stale.
        @Test func aHeldLockIsRefreshedAndNeverTakenOver() throws {
            var configuration = try MotoServer.authenticated().repository().configuration
            // Last-Modified counts whole seconds: a stale age of 4 s leaves room for slow refreshes on a busy machine.
            configuration.lockStaleAfter = .seconds(4)
            configuration.lockRefreshInterval = .milliseconds(500)
            let repository = S3Repository(configuration: configuration)
            let held = try repository.lock(for: "backup full")
            let end = ContinuousClock.now + .seconds(6)
            var refusals = 0
            while ContinuousClock.now < end {
                #expect(throws: FerryError.self) { _ = try repository.lock(for: "retention") }
                refusals += 1
                Thread.sleep(forTimeInterval: 0.25)
            }
            #expect(refusals > 5)
            held.release()
            #expect(try repository.read("backup.lock") == nil)
        }

        /// A holder on this host whose process is gone left its lock behind: taken over at once.
        @Test func aLockLeftByADeadProcessOnThisHostIsTakenOverAtOnce() throws {
            let repository = try MotoServer.authenticated().repository()
            let gone = Process()
            gone.executableURL = URL(fileURLWithPath: "/bin/true")
            try gone.run()
            gone.waitUntilExit()
            var record = S3LockRecord.current("backup incr")
            record.pid = gone.processIdentifier
            try repository.write("backup.lock", record.encoded, replacing: true)
            let lock = try repository.lock(for: "backup full")
            #expect(
                try repository.read("backup.lock").flatMap { try? JSONDecoder().decode(S3LockRecord.self, from: Data($0)) }?.what == "backup full")
            lock.release()
            // Another host's lock is not judged by pid.
            record.host = "elsewhere"
            try repository.write("backup.lock", record.encoded, replacing: true)
            let error = #expect(throws: FerryError.self) { _ = try repository.lock(for: "backup full") }
            #expect(error?.message.contains("elsewhere") == true)
        }

        @Test func theWALArchiveWorksThroughS3AsLocally() throws {
            let repository = try MotoServer.open().repository(prefix: "archive")
            let archive = WALArchive(repository: repository)
            let segment = "000000010000000A000000FE"
            let system: UInt64 = 7_311_234_567_890_123_456
            var content = [UInt8](repeating: 0, count: 1 << 20)
            for index in stride(from: 0, to: content.count, by: 97) { content[index] = UInt8(truncatingIfNeeded: index) }
            guard case .stored = try archive.push(name: segment, content: content, system: system) else {
                Issue.record("not stored")
                return
            }
            #expect(try archive.push(name: segment, content: content, system: system) == .alreadyArchived)
            var other = content
            other[5] = 9
            let refused = #expect(throws: FerryError.self) { _ = try archive.push(name: segment, content: other, system: system) }
            #expect(refused?.code == .conflict && refused?.message.contains(segment) == true)
            #expect(try archive.fetch(name: segment, system: system) == content)
            #expect(try archive.fetch(name: "000000010000000A000000FF", system: system) == nil)
            #expect(try archive.contains(name: segment, system: system))
            #expect(try archive.contains(name: "000000010000000A000000FF", system: system) == false)
            let history = Array("1\t0/3000000\tno recovery target specified\n".utf8)
            _ = try archive.push(name: "00000002.history", content: history, system: system)
            #expect(try archive.fetch(name: "00000002.history", system: system) == history)
            #expect(try repository.list("wal/" + WALArchive.systemDirectoryName(system)) == ["000000010000000A", "history"])
        }

        /// The repository side of base backups through S3: a full backup and an incremental written by
        /// BaseBackupWriter, verified, restored byte for byte through the chain, then deleted.
        @Test func aBackupChainRestoresByteForByteFromS3() throws {
            let repository = try MotoServer.open().repository(prefix: "ferry")
            let root = NSTemporaryDirectory() + "ferry-s3-backup-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: root) }
            let data = root + "/data"
            func put(_ path: String, _ bytes: [UInt8]) throws {
                try FileManager.default.createDirectory(
                    atPath: (data + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(bytes).write(to: URL(fileURLWithPath: data + "/" + path))
            }
            for directory in ["global", "base/5", "pg_wal/archive_status", "pg_xact"] {
                try FileManager.default.createDirectory(atPath: data + "/" + directory, withIntermediateDirectories: true)
            }
            try put("global/pg_control", Array(repeating: 7, count: 8192))
            try put("PG_VERSION", Array("15\n".utf8))
            try put("base/5/16384", BaseBackupTests.relation(blocks: 20, seed: 1))
            try put("base/5/16390", BaseBackupTests.relation(blocks: 3, seed: 2))
            try put("pg_xact/0000", BaseBackupTests.relation(blocks: 1, seed: 3, tail: 100))

            func snapshot() throws -> [String: [UInt8]] {
                var files: [String: [UInt8]] = [:]
                for entry in try DataDirectoryScan(dataDirectory: data).files {
                    files[entry.path] = FileManager.default.contents(atPath: data + "/" + entry.path).map { Array($0) }
                }
                return files
            }
            func backup(_ id: String, prior: BackupManifest?) throws -> BackupManifest {
                let scan = try DataDirectoryScan(dataDirectory: data)
                var writer = BaseBackupWriter(repository: repository, id: id, compression: .zstd, prior: prior)
                writer.bundleSize = 1_000
                writer.pieceSize = 3 * 8192
                let result = try writer.write(dataDirectory: data, scan: scan)
                let manifest = BackupManifest(
                    id: id, kind: prior == nil ? .full : .incremental, prior: prior?.id, full: prior?.full ?? id, system: "0000000000000001",
                    serverVersion: 150000, timeline: 1, startLSN: "0/2000028", stopLSN: "0/2000100", startWAL: "000000010000000000000002",
                    stopWAL: "000000010000000000000002", walSegmentSize: 16 << 20, started: Date(), stopped: Date(),
                    backupLabel: "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n", tablespaceMap: nil, compression: .zstd,
                    bytes: result.bytes, storedBytes: result.storedBytes, storedBlocks: result.storedBlocks, directories: scan.directories,
                    files: result.files, bundles: result.bundles)
                #expect(try repository.write(BackupManifest.path(id), manifest.encoded(), replacing: false))
                return manifest
            }

            let full = try backup("20261207-100000F", prior: nil)
            #expect(full.bundles.count > 1, "several bundles")
            let fullState = try snapshot()
            var relation = BaseBackupTests.relation(blocks: 20, seed: 1)
            relation[5 * 8192 + 17] ^= 0xFF
            try put("base/5/16384", relation + BaseBackupTests.relation(blocks: 2, seed: 9))
            try put("base/5/16400", BaseBackupTests.relation(blocks: 1, seed: 4))
            try FileManager.default.removeItem(atPath: data + "/pg_xact/0000")
            let incremental = try backup("20261207-110000I", prior: full)
            #expect(incremental.storedBlocks == 1 + 2 + 1, "the changed block, the two added, the new file")
            let incrementalState = try snapshot()

            let store = BackupStore(repository: repository)
            #expect(try store.manifests().map(\.id) == [full.id, incremental.id])
            #expect(try store.verifyData(incremental.id).damage.isEmpty)
            for (id, state) in [(full.id, fullState), (incremental.id, incrementalState)] {
                let target = root + "/restored-\(id)"
                try BackupRestorer.prepareTarget(target)
                try BackupRestorer(repository: repository, chain: try store.chain(id), target: target).restoreFiles()
                for (path, bytes) in state {
                    #expect(FileManager.default.contents(atPath: target + "/" + path).map { Array($0) } == bytes, "\(path) restored from \(id)")
                }
                #expect(try DataDirectoryScan(dataDirectory: target).files.map(\.path) == state.keys.sorted())
            }
            #expect(try store.delete(full.id, withDependents: true) == [incremental.id, full.id])
            #expect(try repository.list("backups") == [])
        }

        @Test func refusedCredentialsAMissingBucketAndAnUnreachableStoreAreNamed() throws {
            let moto = try MotoServer.authenticated()
            let repository = try moto.repository(prefix: "p")
            try repository.write("x", [1], replacing: true)

            var wrong = repository.configuration
            wrong.credentials.secretAccessKey = Secret("not-the-secret-\(UUID().uuidString)")
            let refused = #expect(throws: FerryError.self) { _ = try S3Repository(configuration: wrong).read("x") }
            #expect(
                refused?.code == .permission && refused?.message.contains(repository.configuration.bucket) == true, "\(String(describing: refused))")
            #expect(refused?.fix?.contains("AWS_SECRET_ACCESS_KEY") == true)
            #expect(refused?.description.contains(wrong.credentials.secretAccessKey.value) == false)

            var outsider = repository.configuration
            outsider.credentials = moto.outsider
            let denied = #expect(throws: FerryError.self) { try S3Repository(configuration: outsider).write("y", [1], replacing: true) }
            #expect(
                denied?.code == .permission && denied?.message.contains("bucket \(repository.configuration.bucket)") == true,
                "\(String(describing: denied))")
            #expect(
                denied?.fix?.contains("s3:PutObject") == true && denied?.fix?.contains("arn:aws:s3:::\(repository.configuration.bucket)/p/*") == true)
            #expect(denied?.description.contains(moto.outsider.secretAccessKey.value) == false)

            let bucket = "no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())"
            for missing in [
                S3Repository(configuration: moto.configuration(bucket: bucket, prefix: "")), try MotoServer.open().repository(bucket: bucket),
            ] {
                let notFound = #expect(throws: FerryError.self) { _ = try missing.read("x") }
                #expect(notFound?.code == .notFound && notFound?.message.contains(bucket) == true, "\(String(describing: notFound))")
                #expect(notFound?.fix?.contains("AWS_ENDPOINT_URL_S3") == true)
            }
            let notListed = #expect(throws: FerryError.self) { _ = try MotoServer.open().repository(bucket: bucket).list("backups") }
            #expect(notListed?.code == .notFound)

            var unreachable = repository.configuration
            unreachable.endpoint = S3Configuration.Endpoint(secure: false, host: "127.0.0.1", port: try MotoServer.unusedPort())
            unreachable.retry = Backoff(base: .milliseconds(10), maximum: .milliseconds(20), maxRetries: 2)
            let down = #expect(throws: FerryError.self) { _ = try S3Repository(configuration: unreachable).read("x") }
            #expect(down?.code == .unreachable && down?.message.contains("3 tries") == true, "\(String(describing: down))")
            #expect(down?.message.contains(unreachable.endpoint!.authority) == true)
        }

        static func writeConcurrently(_ repository: S3Repository, _ paths: [String]) throws {
            let failure = Mutex<FerryError?>(nil)
            let next = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                while true {
                    let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard index < paths.count else { return }
                    do throws(FerryError) {
                        try repository.write(paths[index], [1], replacing: true)
                    } catch {
                        failure.withLock { $0 = error }
                        return
                    }
                }
            }
            if let error = failure.withLock({ $0 }) { throw error }
        }
    }
}

/// moto's S3 server on a free loopback port, two per test process: one with IAM authentication on, where `admin`
/// may do anything in S3 and `outsider` nothing, and one without (see S3RepositoryTests). Each test makes its own
/// bucket. A server ends with the test process: it is started under a shell that kills it when its standard input (a
/// pipe this process holds) closes.
final class MotoServer: Sendable {
    let endpoint: S3Configuration.Endpoint
    let admin: S3Configuration.Credentials
    let outsider: S3Configuration.Credentials
    let log: String

    /// `moto_server` from PATH, else `python3 -m moto.server` when python3 has moto; nil when neither.
    static let command: [String]? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/moto_server") {
            return ["\(directory)/moto_server"]
        }
        for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/python3") {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "\(directory)/python3")
            probe.arguments = ["-c", "import moto.server"]
            probe.standardOutput = FileHandle.nullDevice
            probe.standardError = FileHandle.nullDevice
            guard (try? probe.run()) != nil else { continue }
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return ["\(directory)/python3", "-m", "moto.server"] }
        }
        return nil
    }()

    private static let withAuthentication = Result { () throws(FerryError) -> MotoServer in try MotoServer(authenticating: true) }
    private static let withoutAuthentication = Result { () throws(FerryError) -> MotoServer in try MotoServer(authenticating: false) }
    /// Keep the shells' standard input open for as long as this process lives.
    private static let lifelines = Mutex<[FileHandle]>([])

    static func authenticated() throws -> MotoServer { try withAuthentication.get() }
    static func open() throws -> MotoServer { try withoutAuthentication.get() }

    private init(authenticating: Bool) throws(FerryError) {
        guard let command = Self.command else { throw FerryError(.sandbox, "moto_server not found", fix: "run scripts/setup.sh") }
        let port = try Self.unusedPort()
        let log = NSTemporaryDirectory() + "ferry-moto-\(port).log"
        let endpoint = S3Configuration.Endpoint(secure: false, host: "127.0.0.1", port: port)
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments =
            ["-c", #""$@" >"$LOG" 2>&1 & child=$!; read line; kill -KILL $child"#, "sh"] + command + ["-H", "127.0.0.1", "-p", "\(port)"]
        shell.environment = ProcessInfo.processInfo.environment.merging(["LOG": log]) { $1 }
        let pipe = Pipe()
        // Only this process may hold the writing end (no later child inherits it), so it closes when this process ends.
        for descriptor in [pipe.fileHandleForWriting.fileDescriptor, pipe.fileHandleForReading.fileDescriptor] {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        shell.standardInput = pipe
        do { try shell.run() } catch { throw FerryError(.sandbox, "cannot start \(command.joined(separator: " ")): \(error)") }
        Self.lifelines.withLock { $0.append(pipe.fileHandleForWriting) }
        let deadline = ContinuousClock.now + .seconds(60)
        while !Self.isListening(port) {
            guard ContinuousClock.now < deadline, shell.isRunning else {
                throw FerryError(.sandbox, "moto did not start on port \(port): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        self.endpoint = endpoint
        self.log = log
        // Before authentication is switched on, any key will do: the users and their keys are made with it.
        let root = S3Configuration.Credentials(accessKeyID: "AKIAROOTEXAMPLE", secretAccessKey: Secret("root-secret"))
        guard authenticating else {
            admin = root
            outsider = root
            return
        }
        let client = S3Repository(configuration: S3Configuration(bucket: "unused", endpoint: endpoint, credentials: root))
        func iam(_ parameters: [(String, String)]) throws(FerryError) -> S3XML {
            let form = (parameters + [("Version", "2010-05-08")]).map { "\($0)=\(S3Signer.uriEncode($1, encodeSlash: true))" }.joined(separator: "&")
            let response = try client.perform(
                "POST", server: endpoint, path: "/", query: [], headers: [(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                body: Array(form.utf8), signer: S3Signer(credentials: root, region: "us-east-1", service: "iam"), what: "set up IAM")
            guard response.status == 200, let reply = S3XML(response.body) else {
                throw FerryError(.sandbox, "moto's IAM refused \(parameters[0].1): \(String(decoding: response.body, as: UTF8.self))")
            }
            return reply
        }
        func user(_ name: String, policy: String?) throws(FerryError) -> S3Configuration.Credentials {
            _ = try iam([("Action", "CreateUser"), ("UserName", name)])
            if let policy { _ = try iam([("Action", "PutUserPolicy"), ("UserName", name), ("PolicyName", "s3"), ("PolicyDocument", policy)]) }
            let key = try iam([("Action", "CreateAccessKey"), ("UserName", name)])
            guard let id = key.first("AccessKeyId"), let secret = key.first("SecretAccessKey") else {
                throw FerryError(.sandbox, "moto's IAM gave no access key")
            }
            return S3Configuration.Credentials(accessKeyID: id, secretAccessKey: Secret(secret))
        }
        admin = try user("ferry", policy: #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        outsider = try user("outsider", policy: nil)
        let switched = try client.perform(
            "POST", server: endpoint, path: "/moto-api/reset-auth", query: [], headers: [], body: Array("0".utf8),
            signer: S3Signer(credentials: root, region: "us-east-1"), what: "switch on authentication")
        guard switched.status == 200 else { throw FerryError(.sandbox, "moto did not switch on authentication: HTTP \(switched.status)") }
    }

    func configuration(bucket: String, prefix: String) -> S3Configuration {
        var configuration = S3Configuration(bucket: bucket, prefix: prefix, endpoint: endpoint, credentials: admin)
        configuration.retry = Backoff(base: .milliseconds(50), maximum: .milliseconds(200), maxRetries: 2)
        return configuration
    }

    /// A repository in a new bucket of its own.
    func repository(prefix: String = "") throws -> S3Repository {
        let bucket = "ferry-\(UUID().uuidString.prefix(13).lowercased().replacingOccurrences(of: "-", with: ""))"
        let repository = self.repository(bucket: bucket, prefix: prefix)
        let created = try repository.send("PUT", key: nil, what: "create the bucket")
        guard created.status == 200 else { throw repository.failure(created, "create the bucket") }
        return repository
    }

    /// A repository in `bucket`, which is not created.
    func repository(bucket: String, prefix: String = "") -> S3Repository {
        S3Repository(configuration: configuration(bucket: bucket, prefix: prefix))
    }

    static func unusedPort() throws(FerryError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard fd >= 0, bound == 0, named == 0 else { throw FerryError(.sandbox, "cannot find a free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func isListening(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// A loopback HTTP server that answers each request on its own connection: 503 SlowDown `failures` times, then 200
/// with a body.
final class ScriptedStore: Sendable {
    let port: Int
    let requests = Atomic<Int>(0)

    init(failures: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listener >= 0, ready else { throw FerryError(.sandbox, "cannot listen on loopback") }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            defer { close(listener) }
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while !received.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
                    let count = read(connection, &buffer, buffer.count)
                    if count <= 0 { break }
                    received += buffer[0..<count]
                }
                let number = self.requests.wrappingAdd(1, ordering: .relaxed).newValue
                let body = number <= failures ? "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>" : "stored"
                let status = number <= failures ? "503 Slow Down" : "200 OK"
                let reply = Array("HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
                _ = reply.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                close(connection)
                if number >= failures + 1 || number >= 3 { return }
            }
        }
    }
}
