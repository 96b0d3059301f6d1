import ArgumentParser
import FerryAPI
import FerryCore
import Foundation

/// `ferry token new|check`: API tokens, of which the permissions file keeps only the SHA-256.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "API tokens: print a new one with the line for the permissions file; check the file.",
        subcommands: [TokenNewCommand.self, TokenCheckCommand.self]
    )
}

struct TokenNewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Print a new API token and the permissions-file entry holding its SHA-256 (the token itself is never stored).",
        discussion:
            "Give the token to its user (it is shown once); put the entry in the permissions file (api.permissions) and add its permissions. `ferry run` reloads the file on SIGHUP."
    )

    @Option(help: "The user's name in the permissions file and the audit log.")
    var name: String

    @Flag(help: "Print {\"name\", \"token\", \"token_sha256\"} as JSON.")
    var json = false

    func validate() throws {
        guard !name.isEmpty, name.count <= 100, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw ValidationError("--name: letters, digits and - _ . @ (up to 100)")
        }
    }

    func run() throws {
        let token = APIToken.generate()
        if json {
            Terminal.print(
                "{\"name\":\(JSONText.string(name)),\"token\":\(JSONText.string(token.token)),\"token_sha256\":\(JSONText.string(token.sha256))}")
            return
        }
        Terminal.print("token (give it to \(name); it is not shown again): \(token.token)")
        Terminal.print("")
        Terminal.print("for the permissions file:")
        Terminal.print("  - name: \(name)")
        Terminal.print("    token_sha256: \(token.sha256)")
        Terminal.print("    permissions:")
        Terminal.print("      - query: \"*\"        # or a table: schema.table with access: read | write | read_write")
        Terminal.print("        access: read")
    }
}

struct TokenCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Read a permissions file and list its users and permissions, or every problem in it.")

    @Argument(help: ArgumentHelp("The permissions file.", valueName: "path"))
    var path: String

    func run() throws {
        let permissions = try Permissions.load(path: path)
        var table = TextTable(["USER", "ADMIN", "PERMISSIONS"])
        for user in permissions.users {
            let grants = user.grants.map { grant -> String in
                let scope: String =
                    switch grant.scope {
                    case .table(let name): "table \(name)"
                    case .query(let name): "query \(name)"
                    }
                return "\(scope) \(grant.access.rawValue)" + (grant.maxDeleteRows.map { " (max_delete_rows \($0))" } ?? "")
            }
            table.add([user.name, user.admin ? "yes" : "no", grants.isEmpty ? "-" : grants.joined(separator: "; ")])
        }
        Terminal.print(table.render())
    }
}
