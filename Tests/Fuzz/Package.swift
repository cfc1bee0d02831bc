// swift-tools-version: 6.1
// libFuzzer targets, one per parser (OSS-Fuzz practice), in one binary: `omniembed-fuzz TARGET ...`. Built only by
// `scripts/check/fuzz`, with `-sanitize=fuzzer,address` over this package and the service's modules.
import PackageDescription

let package = Package(
    name: "omniembed-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "main", path: "../..")],
    targets: [
        .executableTarget(name: "omniembed-fuzz", dependencies: [.product(name: "OmniEmbedModules", package: "main")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
