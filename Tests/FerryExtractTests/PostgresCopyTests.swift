import FerryCore
import Testing

@testable import FerryExtract

/// The COPY reader's login and its SQL: SCRAM-SHA-256 against RFC 7677's example, md5 against a known answer, and
/// values written as literals for COPY.
@Suite struct PostgresCopyTests {
    @Test func scramMatchesRFC7677() throws {
        var client = SCRAMClient(password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO", user: "user")
        #expect(String(decoding: client.firstMessage, as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let final = try client.finalMessage(serverFirst: Array(serverFirst.utf8), address: "test")
        #expect(
            String(decoding: final, as: UTF8.self)
                == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        #expect(client.verify(serverFinal: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)))
        #expect(!client.verify(serverFinal: Array("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)))
        var other = SCRAMClient(password: "pencil", nonce: "abc")
        #expect(throws: FerryError.self, "a nonce that does not extend ours") {
            try other.finalMessage(serverFirst: Array("r=xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8), address: "test")
        }
    }

    @Test func md5PasswordsAreHashedAsPostgreSQLDoes() {
        // 'md5' || md5(md5('secret' || 'ferry') || 'abcd'), as Python's hashlib computes it.
        #expect(WireSession.md5Password(user: "ferry", password: "secret", salt: Array("abcd".utf8)) == "md5e3ccd8de3402efbfea216933e6796f4e")
    }

    @Test func boundValuesBecomeLiteralsForCopy() throws {
        let template = try SQLTemplate("SELECT * FROM t WHERE a = '{a}' AND b LIKE '%{b}%'", file: "q.sql")
        let literal = try template.render(["a": "o'brien\\x", "b": "50%"], dialect: .postgres, file: "q.sql", literals: true)
        #expect(literal.sql == "SELECT * FROM t WHERE a = 'o''brien\\x' AND b LIKE '%50%%'")
        #expect(literal.bindings.isEmpty)
        #expect(throws: FerryError.self) { try template.render(["a": "nul\u{0}", "b": ""], dialect: .postgres, file: "q.sql", literals: true) }
    }
}
