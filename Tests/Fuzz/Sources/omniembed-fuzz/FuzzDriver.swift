/// One binary for every target: `omniembed-fuzz TARGET [libFuzzer options] CORPUS`. SwiftPM links an executable
/// with its entry point renamed to `<module>_main`, so that is where libFuzzer's driver is started, with the
/// target's callback.
typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: FuzzCallback) -> CInt

let targets: [String: FuzzCallback] = [
    "fuzz-http": { data, size in fuzzHttp(data ?? UnsafePointer(bitPattern: 1)!, size) },
    "fuzz-json": { data, size in fuzzJson(data ?? UnsafePointer(bitPattern: 1)!, size) },
    "fuzz-image": { data, size in fuzzImage(data ?? UnsafePointer(bitPattern: 1)!, size) },
    "fuzz-wav": { data, size in fuzzWav(data ?? UnsafePointer(bitPattern: 1)!, size) },
    "fuzz-video": { data, size in fuzzVideo(data ?? UnsafePointer(bitPattern: 1)!, size) },
    "fuzz-safetensors": { data, size in fuzzSafetensors(data ?? UnsafePointer(bitPattern: 1)!, size) },
    "fuzz-api-keys": { data, size in fuzzAPIKeys(data ?? UnsafePointer(bitPattern: 1)!, size) },
]

@_cdecl("omniembed_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    guard argc >= 2, let name = argv[1].map({ String(cString: $0) }), let callback = targets[name] else {
        print("usage: omniembed-fuzz {\(targets.keys.sorted().joined(separator: ","))} [libFuzzer options] CORPUS")
        return 2
    }
    // libFuzzer sees the program name and the options after the target.
    argv[1] = argv[0]
    var count = argc - 1
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv + 1
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}
