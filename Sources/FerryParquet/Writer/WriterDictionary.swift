/// The dictionary of one column chunk being written, whatever its physical type. A class holding the one typed
/// builder the column uses, so inserting in the hot loop mutates in place (an enum payload would be copied).
final class WriterDictionary {
    private var int32s: DictionaryBuilder<Int32>?
    private var int64s: DictionaryBuilder<Int64>?
    private var floats: DictionaryBuilder<Float>?
    private var doubles: DictionaryBuilder<Double>?
    private var arrays: ByteArrayDictionaryBuilder?
    private let fixed: Bool

    init(type: PhysicalType, width: Int) {
        fixed = type == .fixedLenByteArray
        switch type {
        case .int32: int32s = DictionaryBuilder()
        case .int64: int64s = DictionaryBuilder()
        case .float: floats = DictionaryBuilder()
        case .double: doubles = DictionaryBuilder()
        default: arrays = ByteArrayDictionaryBuilder()
        }
    }

    var count: Int { int32s?.count ?? int64s?.count ?? floats?.count ?? doubles?.count ?? arrays?.count ?? 0 }

    var plainEncodedSize: Int {
        if let arrays { return fixed ? arrays.plainEncodedSize - 4 * arrays.count : arrays.plainEncodedSize }
        return int32s?.plainEncodedSize ?? int64s?.plainEncodedSize ?? floats?.plainEncodedSize ?? doubles?.plainEncodedSize ?? 0
    }

    @inline(__always) func index(int32 value: Int32) -> UInt32? { int32s?.index(of: value) }
    @inline(__always) func index(int64 value: Int64) -> UInt32? { int64s?.index(of: value) }
    @inline(__always) func index(float value: Float) -> UInt32? { floats?.index(of: value) }
    @inline(__always) func index(double value: Double) -> UInt32? { doubles?.index(of: value) }
    @inline(__always) func index(bytes value: UnsafeRawBufferPointer) -> UInt32? { arrays?.index(of: value) }

    /// The dictionary page's values, PLAIN.
    func encodePlain(into out: inout [UInt8]) {
        if let int32s { int32s.encodePlain(into: &out) }
        if let int64s { int64s.encodePlain(into: &out) }
        if let floats { floats.encodePlain(into: &out) }
        if let doubles { doubles.encodePlain(into: &out) }
        if let arrays { fixed ? arrays.encodePlainFixed(into: &out) : arrays.encodePlain(into: &out) }
    }
}
