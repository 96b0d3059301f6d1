/// The first byte of every RESP2/RESP3 value.
public enum RESPTypeIdentifier: UInt8, Sendable {
    case simpleString = 43  // +
    case simpleError = 45  // -
    case integer = 58  // :
    case bulkString = 36  // $
    case array = 42  // *
    case null = 95  // _
    case boolean = 35  // #
    case double = 44  // ,
    case bigNumber = 40  // (
    case bulkError = 33  // !
    case verbatimString = 61  // =
    case map = 37  // %
    case set = 126  // ~
    case attribute = 124  // |
    case push = 62  // >

    /// Types whose header is followed by a length-prefixed payload.
    var isBlob: Bool {
        switch self {
        case .bulkString, .bulkError, .verbatimString: true
        default: false
        }
    }

    /// Types whose header is a count of child values (map-like types count pairs).
    var childrenPerCount: Int? {
        switch self {
        case .array, .set, .push: 1
        case .map, .attribute: 2
        default: nil
        }
    }
}
