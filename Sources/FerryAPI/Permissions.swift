import Crypto
package import FerryCore
import Foundation
import Yams

/// Who may use the API and for what, from the permissions file (`api.permissions`), as the original bridge's
/// `config/permissions.yaml`, with the tokens kept only as their SHA-256:
///
/// ```yaml
/// users:
///   - name: proyecto-abc
///     token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08   # from `ferry token new`
///     permissions:
///       - table: sales.ventas          # a pipeline's mirror (schema.table): sync needs write, reconcile read
///         access: read_write           # read | write | read_write
///         max_delete_rows: 10000       # deletes above this are refused before any row goes
///       - query: "*"                   # library queries `ferry extract` may run (a name, or * for all)
///         access: read
///       - admin: true                  # the cluster's control endpoints
/// ```
///
/// A plaintext `token:` is refused with the command that prints a token and its hash. Lookups compare the SHA-256 of
/// the presented token with every user's in constant time.
package struct Permissions: Sendable {
    package enum Access: String, Sendable, CaseIterable {
        case read, write
        case readWrite = "read_write"

        package var reads: Bool { self != .write }
        package var writes: Bool { self != .read }
    }

    /// What one grant covers.
    package enum Scope: Sendable, Equatable {
        /// `schema.table` (compared case-insensitively, quotes ignored).
        case table(String)
        /// A library query's name, or `*`.
        case query(String)
    }

    package struct Grant: Sendable, Equatable {
        package var scope: Scope
        package var access: Access
        /// nil: no limit.
        package var maxDeleteRows: Int?

        package init(scope: Scope, access: Access, maxDeleteRows: Int? = nil) {
            self.scope = scope
            self.access = access
            self.maxDeleteRows = maxDeleteRows
        }
    }

    package struct User: Sendable {
        package var name: String
        package var tokenHash: [UInt8]
        package var grants: [Grant]
        package var admin: Bool

        package init(name: String, tokenHash: [UInt8], grants: [Grant], admin: Bool) {
            self.name = name
            self.tokenHash = tokenHash
            self.grants = grants
            self.admin = admin
        }

        /// The grant for table `name` that allows `access` (the most permissive max_delete_rows when several do).
        package func grant(table name: String, _ access: Access) -> Grant? {
            let wanted = Permissions.normalized(name)
            return grants.filter { grant in
                guard case .table(let table) = grant.scope, table == wanted else { return false }
                return access == .read ? grant.access.reads : access == .write ? grant.access.writes : grant.access == .readWrite
            }.max { ($0.maxDeleteRows ?? .max) < ($1.maxDeleteRows ?? .max) }
        }

        /// Whether the user may run library query `name` (a `query:` grant that reads, naming it or `*`).
        package func mayRun(query name: String) -> Bool {
            grants.contains { grant in
                guard case .query(let query) = grant.scope, grant.access.reads else { return false }
                return query == "*" || query == name
            }
        }
    }

    package var users: [User]

    package init(users: [User]) { self.users = users }

    /// The user whose token is `token`, comparing its SHA-256 with every user's in constant time (no early exit, so
    /// the time says nothing about which hash or how much of it matched); nil for an unknown token.
    package func authenticate(_ token: String) -> User? {
        let presented = Array(SHA256.hash(data: Data(token.utf8)))
        var found: Int?
        for (index, user) in users.enumerated() {
            var difference: UInt8 = user.tokenHash.count == presented.count ? 0 : 1
            for (left, right) in zip(user.tokenHash, presented) { difference |= left ^ right }
            if difference == 0 && found == nil { found = index }
        }
        return found.map { users[$0] }
    }

    static func normalized(_ table: String) -> String {
        table.lowercased().replacingOccurrences(of: "\"", with: "").replacingOccurrences(of: "[", with: "").replacingOccurrences(of: "]", with: "")
    }

    // MARK: Reading

    /// Reads the permissions file at `path`. Every problem is named by its place (`users[1].permissions[0].access`)
    /// with the fix, all of them at once; nothing is half-loaded.
    package static func load(path: String) throws(FerryError) -> Permissions {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FerryError(
                .configuration, "cannot read the permissions file \(path)",
                fix: "create it (docs/API.md shows one), or point api.permissions at it")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    package static func parse(_ text: String, file: String) throws(FerryError) -> Permissions {
        let root: Any?
        do {
            root = try Yams.load(yaml: text)
        } catch {
            throw FerryError(.configuration, "\(file) is not valid YAML: \(error)", fix: "check its indentation and quotes")
        }
        guard let top = root as? [String: Any], let entries = top["users"] as? [Any] else {
            throw FerryError(.configuration, "\(file) has no `users:` list", fix: "start it with `users:` and one entry per token (docs/API.md)")
        }
        var problems: [String] = []
        var users: [User] = []
        var names: Set<String> = []
        var hashes: Set<[UInt8]> = []
        for (index, entry) in entries.enumerated() {
            let place = "users[\(index)]"
            guard let fields = entry as? [String: Any] else {
                problems.append("\(place): not a mapping")
                continue
            }
            if fields["token"] != nil {
                problems.append(
                    "\(place).token holds a plaintext token: Ferry keeps only hashes (run `ferry token new --name \((fields["name"] as? String) ?? "NAME")`, give the token to its user, and put the printed token_sha256 here instead)"
                )
            }
            for key in fields.keys where !["name", "token", "token_sha256", "permissions"].contains(key) {
                problems.append("\(place).\(key) is not a key Ferry knows (name, token_sha256, permissions)")
            }
            guard let name = fields["name"] as? String, !name.isEmpty, name.count <= 100,
                name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) })
            else {
                problems.append("\(place).name is missing or not a plain name (letters, digits, - _ . @)")
                continue
            }
            if !names.insert(name).inserted { problems.append("\(place).name \"\(name)\" is also another user's") }
            guard let hex = fields["token_sha256"] as? String, let hash = Self.hexBytes(hex), hash.count == 32 else {
                if fields["token"] == nil {
                    problems.append("\(place).token_sha256 is missing or not 64 hex digits (run `ferry token new --name \(name)`)")
                }
                continue
            }
            if !hashes.insert(hash).inserted { problems.append("\(place).token_sha256 is also another user's (one token per user)") }
            var grants: [Grant] = []
            var admin = false
            for (grantIndex, item) in ((fields["permissions"] as? [Any]) ?? []).enumerated() {
                let at = "\(place).permissions[\(grantIndex)]"
                guard let grant = item as? [String: Any] else {
                    problems.append("\(at): not a mapping")
                    continue
                }
                if let flag = grant["admin"] {
                    guard let value = flag as? Bool, grant.count == 1 else {
                        problems.append("\(at).admin must be `true` or `false`, alone in its entry")
                        continue
                    }
                    admin = admin || value
                    continue
                }
                for key in grant.keys where !["table", "query", "access", "max_delete_rows"].contains(key) {
                    problems.append("\(at).\(key) is not a key Ferry knows (table, query, access, max_delete_rows, admin)")
                }
                let scope: Scope
                switch (grant["table"] as? String, grant["query"] as? String) {
                case (let table?, nil) where !table.isEmpty: scope = .table(normalized(table))
                case (nil, let query?) where !query.isEmpty: scope = .query(query)
                default:
                    problems.append("\(at) must name one `table:` (schema.table) or one `query:` (a name or *)")
                    continue
                }
                guard let accessText = grant["access"] as? String, let access = Access(rawValue: accessText) else {
                    problems.append("\(at).access must be read, write or read_write")
                    continue
                }
                var limit: Int?
                if let raw = grant["max_delete_rows"] {
                    guard let value = raw as? Int, (0...1_000_000_000_000).contains(value) else {
                        problems.append("\(at).max_delete_rows must be a whole number from 0 to 10^12")
                        continue
                    }
                    limit = value
                }
                grants.append(Grant(scope: scope, access: access, maxDeleteRows: limit))
            }
            users.append(User(name: name, tokenHash: hash, grants: grants, admin: admin))
        }
        guard problems.isEmpty else {
            throw FerryError(
                .configuration, "\(file): " + problems.joined(separator: "; "),
                fix: problems.contains { $0.contains("plaintext") } ? "replace each plaintext token by its hash" : "correct the entries named")
        }
        return Permissions(users: users)
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.lowercased().utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}

/// A new API token: 32 random bytes as `ferry_` + base64url, and the SHA-256 the permissions file keeps.
package struct APIToken: Sendable {
    package let token: String
    package let sha256: String

    package static func generate() -> APIToken {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let encoded = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let token = "ferry_" + encoded
        return APIToken(token: token, sha256: SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined())
    }
}
