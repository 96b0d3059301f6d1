import FerryCore
import Foundation

/// The Python peers in `Benchmarks/python/`: each prints one JSON object with how much it moved (`rows` or
/// `count`) and in how many `seconds`.
enum PythonPeer {
    /// Runs `script` with `arguments` and returns items per second.
    static func rate(script: String, arguments: [String]) throws -> Double {
        guard FileManager.default.fileExists(atPath: script) else {
            throw FerryError(.invalidInput, "\(script) not found", fix: "run the benchmark from the repository's root, or pass --skip-peers")
        }
        // stderr goes to a file: a pipe nobody reads while stdout is drained would stall a talkative peer.
        let errorsPath = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-python-peer-\(UUID().uuidString).err").path
        _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: errorsPath)
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        struct Result: Decodable {
            var rows: Int?
            var count: Int?
            var seconds: Double
        }
        guard process.terminationStatus == 0, let result = try? JSONDecoder().decode(Result.self, from: data),
            let moved = result.rows ?? result.count, moved > 0, result.seconds > 0
        else {
            let message = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
            throw FerryError(
                .invalidInput, "the Python peer failed: \(message.suffix(400))",
                fix: "install the peers' Python packages (`scripts/setup.sh bench`), or pass --skip-peers")
        }
        return Double(moved) / result.seconds
    }
}
