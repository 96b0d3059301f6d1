import Foundation

/// The official Python `databricks-sdk` (installed by scripts/setup.sh), run through python3: it reads and writes
/// files through the emulator, so the emulator is checked against Databricks' own client and not only Ferry's.
enum PythonDatabricksSDK {
    /// Runs python3 with `arguments` in a clean environment (no DATABRICKS_* variables, no ~/.databrickscfg) and waits
    /// for it without blocking a thread; returns its exit status and output.
    static func run(_ arguments: [String], in directory: URL) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        var environment = ["HOME": directory.path, "PYTHONDONTWRITEBYTECODE": "1"]
        environment["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        process.environment = environment
        let log = directory.appendingPathComponent("python.log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try handle.close()
        return (status, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    /// Signs in (a token, or an OAuth client id and secret), downloads `ferryPath` into `downloaded`, uploads the bytes
    /// of `upload` to `sdkPath`, lists `directory` and reads `sdkPath`'s metadata; prints
    /// `RESULT {"names": [...], "size": n}` last.
    static let script = #"""
        import io, json, sys, logging
        from databricks.sdk import WorkspaceClient
        logging.basicConfig(level=logging.WARNING)
        mode, host, first, second, ferry_path, sdk_path, directory, downloaded, upload = sys.argv[1:]
        if mode == "pat":
            w = WorkspaceClient(host=host, token=first, auth_type="pat")
        else:
            w = WorkspaceClient(host=host, client_id=first, client_secret=second, auth_type="oauth-m2m")
        data = w.files.download(ferry_path).contents.read()
        with open(downloaded, "wb") as f:
            f.write(data)
        with open(upload, "rb") as f:
            payload = f.read()
        w.files.upload(sdk_path, io.BytesIO(payload), overwrite=True)
        names = sorted(entry.name for entry in w.files.list_directory_contents(directory))
        metadata = w.files.get_metadata(sdk_path)
        print("RESULT " + json.dumps({"names": names, "size": int(metadata.content_length)}))
        """#
}
