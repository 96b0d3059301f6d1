import FerryCore

/// libFuzzer entry point: any bytes as `ferry.yaml` give a configuration or a list of issues (each naming a key and
/// a fix), never a crash, a hang or unbounded memory (nested aliases are bounded).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigLoader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FerryFuzzEntry.configuration(UnsafeBufferPointer(start: data, count: size))
    return 0
}
