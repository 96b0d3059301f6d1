import FerryCore
import Foundation

extension DatabricksFilesClient {
    /// The error for an answer the caller cannot use, naming the workspace, the path, Databricks' error code and
    /// message (secrets blanked) and the fix. `writing`: the request needs the volume to exist (an upload, a new
    /// directory), so a 404 means the volume (or its catalog or schema) is missing.
    func failure(_ response: DatabricksResponse, _ what: String, _ path: VolumePath?, writing: Bool) -> FerryError {
        let detail = self.detail(response)
        let failed = "cannot \(what) at \(configuration.authority)"
        let code = response.error.code ?? ""
        switch response.status {
        case 401:
            return FerryError(.authentication, "\(failed): the credentials were refused (\(detail))", fix: credentialsFix)
        case 403 where code == "PERMISSION_DENIED":
            let volume = path?.volumeName ?? "the volume"
            return FerryError(
                .permission, "\(failed): permission denied (\(detail))",
                fix: "grant the principal USE CATALOG, USE SCHEMA and \(writing ? "WRITE VOLUME" : "READ VOLUME") on \(volume)")
        case 403:
            return FerryError(.authentication, "\(failed): the credentials were refused (\(detail))", fix: credentialsFix)
        case 404:
            let volumeFix =
                path.map { "create the volume in Unity Catalog (CREATE VOLUME \($0.volumeName)) or fix the path" }
                ?? "create the volume in Unity Catalog (CREATE VOLUME catalog.schema.volume) or fix the path"
            if writing {
                return FerryError(.notFound, "\(failed): the volume \(path?.volume ?? "") does not exist (\(detail))", fix: volumeFix)
            }
            return FerryError(
                .notFound, "\(failed): it does not exist (\(detail))",
                fix: "check the path (list its directory); if the volume itself is missing, \(volumeFix)")
        case 409:
            if code == "ALREADY_EXISTS" || code == "RESOURCE_ALREADY_EXISTS" {
                return FerryError(.conflict, "\(failed): it already exists (\(detail))", fix: "upload with overwrite, or choose another name")
            }
            return FerryError(
                .conflict, "\(failed): \(detail)", fix: "check what is at the path (a directory where a file goes, or a non-empty directory)")
        case 413:
            return FerryError(
                .tooLarge, "\(failed): the file is too large (\(detail))", fix: "the Files API takes files of up to 5 GiB: split the output")
        case 429:
            return FerryError(
                .server, "\(failed): Databricks kept refusing for its rate limit (\(detail)) in each of \(response.tries) tries",
                fix: "try again later, or lower the request rate")
        case 400:
            return FerryError(.invalidInput, "\(failed): the request was refused (\(detail))", fix: "check the path and its name's characters")
        case 500...:
            return FerryError(
                .server, "\(failed): Databricks failed (\(detail)) in \(response.tries == 1 ? "1 try" : "each of \(response.tries) tries")",
                fix: "try again later; if it persists, check the workspace's status")
        default:
            return FerryError(.server, "\(failed): \(detail)", fix: "check the path and the workspace")
        }
    }

    private var credentialsFix: String {
        switch configuration.authentication {
        case .token:
            return "check DATABRICKS_TOKEN: it may be expired or revoked; create a personal access token in the workspace's user settings"
        case .oauth:
            return "check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, and that the service principal is in the workspace"
        }
    }

    /// `HTTP 404 RESOURCE_DOES_NOT_EXIST: message`, with control characters escaped, any secret the request carried
    /// blanked, and the message cut at 300 characters.
    func detail(_ response: DatabricksResponse) -> String {
        let (code, message) = response.error
        var text = "HTTP \(response.status)"
        if let code { text += " " + PrintableText.escaped(String(code.prefix(80))) }
        if var message {
            for secret in response.secrets where secret.value.count >= 4 {
                message = message.replacingOccurrences(of: secret.value, with: "***")
            }
            message = String(message.prefix(300))
            text += ": " + PrintableText.escaped(message)
        }
        return text
    }

    /// The error for an answer Ferry does not understand.
    func unexpected(_ reply: String, _ what: String) -> FerryError {
        FerryError(
            .protocolViolation, "cannot \(what): \(configuration.authority) answered with \(reply)",
            fix: "check that DATABRICKS_HOST (\(configuration.baseURL)) is a Databricks workspace")
    }
}
