import Crypto
import FerryCore
import Foundation
import Testing

@testable import FerryAPI

@Suite struct PermissionsTests {
    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    static let file = """
        users:
          - name: proyecto-abc
            token_sha256: \(hash("token-abc"))
            permissions:
              - table: dbo.Ventas
                access: read_write
                max_delete_rows: 10000
              - query: ventas
                access: read
          - name: ops
            token_sha256: \(hash("token-ops"))
            permissions:
              - admin: true
              - query: "*"
                access: read
        """

    @Test func tokensAreFoundByTheirHashOnly() throws {
        let permissions = try Permissions.parse(Self.file, file: "permissions.yaml")
        #expect(permissions.authenticate("token-abc")?.name == "proyecto-abc")
        #expect(permissions.authenticate("token-ops")?.admin == true)
        #expect(permissions.authenticate("token-ab") == nil && permissions.authenticate("") == nil)
        #expect(permissions.authenticate(Self.hash("token-abc")) == nil, "the hash itself is no token")
    }

    @Test func grantsSayWhatEachUserMayDo() throws {
        let permissions = try Permissions.parse(Self.file, file: "permissions.yaml")
        let abc = try #require(permissions.authenticate("token-abc"))
        #expect(abc.grant(table: "dbo.ventas", .write)?.maxDeleteRows == 10000, "tables compare without case")
        #expect(abc.grant(table: "[dbo].[Ventas]", .read) != nil)
        #expect(abc.grant(table: "dbo.Compras", .read) == nil, "a token for one table cannot touch another")
        #expect(abc.mayRun(query: "ventas") && !abc.mayRun(query: "compras") && !abc.admin)
        let ops = try #require(permissions.authenticate("token-ops"))
        #expect(ops.mayRun(query: "anything") && ops.grant(table: "dbo.Ventas", .read) == nil)
    }

    @Test func aPlaintextTokenIsRefusedWithTheCommandThatHashesIt() {
        let text = """
            users:
              - token: "proyecto-abc-token"
                name: "proyecto-abc"
                permissions:
                  - table: "dbo.Ventas"
                    access: "read_write"
            """
        do {
            _ = try Permissions.parse(text, file: "config/permissions.yaml")
            Issue.record("a plaintext token was accepted")
        } catch {
            #expect(error.message.contains("users[0].token holds a plaintext token") && error.message.contains("ferry token new --name proyecto-abc"))
            #expect(!error.message.contains("proyecto-abc-token"), "the token is never repeated")
            #expect(error.code == .configuration)
        }
    }

    @Test func everyProblemIsNamedByItsPlace() {
        let text = """
            users:
              - name: a
                token_sha256: nothex
              - name: b
                token_sha256: \(Self.hash("b"))
                permissions:
                  - table: t
                    access: everything
                  - query: q
                    access: read
                    max_delete_rows: -1
                  - admin: yes please
                  - colour: blue
              - name: b
                token_sha256: \(Self.hash("b"))
            """
        do {
            _ = try Permissions.parse(text, file: "p.yaml")
            Issue.record("a broken file was accepted")
        } catch {
            for place in [
                "users[0].token_sha256", "users[1].permissions[0].access", "users[1].permissions[1].max_delete_rows",
                "users[1].permissions[2].admin", "users[1].permissions[3].colour", "users[2].name \"b\" is also",
                "users[2].token_sha256 is also",
            ] {
                #expect(error.message.contains(place), "\(place) in \(error.message)")
            }
        }
        #expect(throws: FerryError.self) { try Permissions.parse("users: [", file: "p.yaml") }
        #expect(throws: FerryError.self) { try Permissions.parse("tokens: []", file: "p.yaml") }
    }

    @Test func newTokensAreLongRandomAndHashAsTheFileSays() throws {
        let first = APIToken.generate()
        let second = APIToken.generate()
        #expect(first.token != second.token && first.token.hasPrefix("ferry_") && first.token.count == 49)
        #expect(first.sha256 == Self.hash(first.token))
        let permissions = try Permissions.parse("users:\n  - name: n\n    token_sha256: \(first.sha256)\n", file: "p.yaml")
        #expect(permissions.authenticate(first.token)?.name == "n")
    }
}
