package import FerryCore
import Foundation

extension DatabricksConfiguration {
    /// The configuration the Databricks SDKs and CLI read: `DATABRICKS_HOST`, and either `DATABRICKS_TOKEN` (a personal
    /// access token) or `DATABRICKS_CLIENT_ID` with `DATABRICKS_CLIENT_SECRET` (OAuth machine-to-machine). Empty
    /// variables count as unset; setting both kinds of credentials is an error, as in the SDKs.
    package static func fromEnvironment(_ environment: [String: String]) throws(FerryError) -> DatabricksConfiguration {
        func value(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
            return value
        }
        guard let host = value("DATABRICKS_HOST") else {
            throw FerryError(
                .configuration, "DATABRICKS_HOST is not set",
                fix: "set DATABRICKS_HOST to the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net")
        }
        let token = value("DATABRICKS_TOKEN")
        let clientID = value("DATABRICKS_CLIENT_ID")
        let clientSecret = value("DATABRICKS_CLIENT_SECRET")
        let authentication: Authentication
        switch (token, clientID, clientSecret) {
        case (let token?, nil, nil):
            authentication = .token(Secret(token))
        case (nil, let clientID?, let clientSecret?):
            authentication = .oauth(clientID: clientID, clientSecret: Secret(clientSecret))
        case (nil, _?, nil):
            throw FerryError(
                .configuration, "DATABRICKS_CLIENT_ID is set but DATABRICKS_CLIENT_SECRET is not",
                fix: "set DATABRICKS_CLIENT_SECRET to the service principal's OAuth secret")
        case (nil, nil, _?):
            throw FerryError(
                .configuration, "DATABRICKS_CLIENT_SECRET is set but DATABRICKS_CLIENT_ID is not",
                fix: "set DATABRICKS_CLIENT_ID to the service principal's application (client) id")
        case (nil, nil, nil):
            throw FerryError(
                .configuration, "neither DATABRICKS_TOKEN nor DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET are set",
                fix: "set DATABRICKS_TOKEN to a personal access token, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET for a service principal")
        case (_?, _, _):
            throw FerryError(
                .configuration, "both DATABRICKS_TOKEN and DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET are set",
                fix: "keep one way of signing in: unset DATABRICKS_TOKEN or the DATABRICKS_CLIENT_* variables")
        }
        return try DatabricksConfiguration(host: host, authentication: authentication)
    }
}
