import FerryCore
import FerryDatabricks
import Testing

@Suite struct DatabricksConfigurationTests {
    @Test func readsATokenFromTheEnvironment() throws {
        let configuration = try DatabricksConfiguration.fromEnvironment([
            "DATABRICKS_HOST": "https://adb-123.4.azuredatabricks.net/", "DATABRICKS_TOKEN": "dapi-secret-value",
        ])
        #expect(configuration.baseURL == "https://adb-123.4.azuredatabricks.net")
        #expect(configuration.authority == "adb-123.4.azuredatabricks.net")
        guard case .token(let token) = configuration.authentication else {
            Issue.record("expected a token")
            return
        }
        #expect(token.value == "dapi-secret-value")
        #expect(!"\(configuration.authentication)".contains("dapi-secret-value"))
    }

    @Test func readsOAuthClientCredentials() throws {
        let configuration = try DatabricksConfiguration.fromEnvironment([
            "DATABRICKS_HOST": "adb-123.4.azuredatabricks.net", "DATABRICKS_CLIENT_ID": "sp-id", "DATABRICKS_CLIENT_SECRET": "dose-secret",
        ])
        #expect(configuration.baseURL == "https://adb-123.4.azuredatabricks.net")
        guard case .oauth(let id, let secret) = configuration.authentication else {
            Issue.record("expected OAuth")
            return
        }
        #expect(id == "sp-id" && secret.value == "dose-secret")
        #expect(!"\(configuration.authentication)".contains("dose-secret"))
    }

    @Test func namesTheMissingVariable() {
        let cases: [([String: String], String)] = [
            ([:], "DATABRICKS_HOST"),
            (["DATABRICKS_HOST": "https://h"], "DATABRICKS_TOKEN"),
            (["DATABRICKS_HOST": "https://h", "DATABRICKS_CLIENT_ID": "id"], "DATABRICKS_CLIENT_SECRET"),
            (["DATABRICKS_HOST": "https://h", "DATABRICKS_CLIENT_SECRET": "s3cr3t"], "DATABRICKS_CLIENT_ID"),
            (
                ["DATABRICKS_HOST": "https://h", "DATABRICKS_TOKEN": "t0k3n", "DATABRICKS_CLIENT_ID": "id", "DATABRICKS_CLIENT_SECRET": "s3cr3t"],
                "both"
            ),
            (["DATABRICKS_HOST": "ftp://h/x", "DATABRICKS_TOKEN": "t0k3n"], "DATABRICKS_HOST"),
        ]
        for (environment, expected) in cases {
            do {
                _ = try DatabricksConfiguration.fromEnvironment(environment)
                Issue.record("accepted \(environment.keys.sorted())")
            } catch {
                #expect(error.code == .configuration)
                #expect(error.description.contains(expected), "\(error)")
                #expect(!error.description.contains("s3cr3t") && !error.description.contains("t0k3n"))
            }
        }
    }
}
