/// Entry points for the libFuzzer targets in `Fuzz/` (a separate package, built with the fuzzer and address
/// sanitizers, that sees only public API). Each takes any bytes and must return without crashing; what they
/// check is in `Fuzz/Sources`.
public enum FerryFuzzEntry {
    /// Parses `bytes` as a configuration file and reads it into a configuration. Returns whether it was accepted.
    @discardableResult
    public static func configuration(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let text = String(validating: bytes, as: UTF8.self) else { return false }
        do {
            let tree = try ConfigLoader.parseYAML(text, file: "fuzz.yaml")
            let issues = ConfigIssues()
            let configuration = FerryConfiguration.read(ConfigReader(node: tree, issues: issues))
            // Issues name a key and a fix; rendering the result must work whatever was read.
            for issue in issues.all { precondition(!issue.description.isEmpty) }
            _ = configuration.http.port
            return issues.all.isEmpty
        } catch {
            precondition(!error.issues.isEmpty, "a refused file says why")
            return false
        }
    }

    /// Parses `bytes` as a cluster API request body and reads its timeout. Returns whether it was accepted.
    @discardableResult
    public static func clusterRequestBody(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        do {
            let body = try ClusterRequestBody.parse(bytes)
            let timeout = try body.timeout(default: 30)
            precondition(timeout >= .seconds(1) && timeout <= .seconds(ClusterRequestBody.maximumTimeout))
            return true
        } catch {
            precondition(!error.message.isEmpty && error.fix != nil, "a refused body says why and what to send")
            return false
        }
    }
}
