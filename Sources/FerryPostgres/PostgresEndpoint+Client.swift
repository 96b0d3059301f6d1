package import FerryCore
import NIOSSL
package import PostgresNIO

extension PostgresEndpoint {
    /// TLS as libpq's `sslmode` of the same name: `prefer` and `require` encrypt without verifying the
    /// certificate chain (libpq's `verify-full` is not supported yet).
    private var tlsConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        return tls
    }

    /// A single-connection configuration (checks, one-off commands).
    package func connectionConfiguration() throws(FerryError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch self.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration))
            case .require: tls = .require(try NIOSSLContext(configuration: tlsConfiguration))
            }
        } catch {
            throw FerryError(
                .configuration, "postgres.tls: cannot set up TLS", fix: "set `tls: disable` or check the system's OpenSSL", underlying: error)
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password?.value, database: database, tls: tls)
        configuration.options.connectTimeout = .nanoseconds(Int64(connectTimeout.seconds * 1e9))
        return configuration
    }

    /// A pooled client configuration for long-running work.
    package func clientConfiguration(maximumConnections: Int = 10) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch self.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(tlsConfiguration)
        case .require: tls = .require(tlsConfiguration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password?.value, database: database, tls: tls)
        configuration.options.connectTimeout = connectTimeout
        configuration.options.maximumConnections = maximumConnections
        return configuration
    }

    package var address: String { "\(host):\(port)" }
}
