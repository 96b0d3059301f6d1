import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Short, user-facing text for socket-level failures ("connection refused", "cannot resolve host").
package enum NetworkErrorText {
    package static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.isEmpty, error.dnsAError != nil || error.dnsAAAAError != nil {
                return "cannot resolve host \"\(error.host)\""
            }
            if let first = error.connectionErrors.first { return describe(first.error) }
            return "cannot connect"
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused (nothing listens there)"
            case ETIMEDOUT: return "connection timed out"
            case EHOSTUNREACH, ENETUNREACH: return "host unreachable"
            case ECONNRESET: return "connection reset by the server"
            case EPIPE: return "connection closed by the server"
            default: return String(cString: strerror(error.errnoCode))
            }
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout(let amount): return "connection timed out after \(Double(amount.nanoseconds) / 1e9)s"
            case .ioOnClosedChannel, .alreadyClosed, .eof: return "connection closed"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}
