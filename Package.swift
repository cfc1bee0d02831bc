// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "omniembed",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "omniembed", targets: ["omniembed"]),
        // The service's modules, for the fuzz targets (Tests/Fuzz), which build them with libFuzzer's instrumentation.
        .library(name: "OmniEmbedModules", targets: ["HTTP", "Media", "Models", "Embedding", "Service"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // <sys/epoll.h>, which the Glibc module leaves out.
        .systemLibrary(name: "CEpoll"),
        // OpenBLAS's CBLAS interface.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // TLS for the listener through OpenSSL's libssl: non-blocking sessions, with macros turned into calls.
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // Shared state behind a lock that ThreadSanitizer can see (scripts/check/sanitize).
        .target(name: "Locking"),
        // HTTP/1.1 on POSIX sockets and Dispatch. Knows nothing about models.
        .target(
            name: "HTTP",
            dependencies: [
                "Locking",
                "CZlib",
                "CEpoll",
                "CCrypto",
                "CTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // Kernels in C by family (math, attention, packed GEMM, convolution, centroids, top-k), each compiled for
        // AVX-512, AVX2 and baseline x86-64 and dispatched at run time (OMNIEMBED_KERNELS picks a narrower set):
        // clang vectorises them, where Swift's SIMD types compile to scalar code for min/max and selects on
        // baseline x86-64. Optimised in debug builds too, or the encoder's fixture tests take minutes.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Tensor", dependencies: ["CBLAS", "CKernels"]),
        // JPEG and PNG decoding through libjpeg-turbo and libpng, with their error exits turned into returns.
        .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
        // FFmpeg's libraries from Debian (libavformat, libavcodec, libswscale, libswresample, libavutil), and the C
        // glue that reads videos and compressed audio through them from memory only.
        .systemLibrary(name: "CFFmpeg", path: "Sources/CFFmpeg",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libswresample-dev"])]),
        // (A C target is not autolinked against a system library it depends on, as a Swift importer is: hence the
        // explicit libraries.)
        .target(name: "CVideoCodecs", dependencies: ["CFFmpeg"],
                linkerSettings: ["avformat", "avcodec", "swscale", "swresample", "avutil"].map { .linkedLibrary($0) }),
        // FFTW's single-precision interface, for log-mel spectrograms.
        .systemLibrary(name: "CFFTW", path: "Sources/CFFTW"),
        // Media's kernels: Pillow-exact 8-bit image resampling, audio resampling, image planes; dispatched as CKernels.
        .target(name: "CMediaKernels", dependencies: ["CKernels"], cSettings: [.unsafeFlags(["-O3"])]),
        // Image and audio decoding and preprocessing.
        .target(name: "Media", dependencies: ["CImageCodecs", "CVideoCodecs", "CMediaKernels", "CFFTW"]),
        // Model files and model code: safetensors, tokenizer, the towers, the Fusion-Q-Former.
        .target(name: "Models", dependencies: ["Locking", "Tensor", "CKernels"]),
        // PostgreSQL's own client library, libpq: the item store when several replicas share it. Chosen over
        // postgres-nio: blocking calls on the store's own threads, as SQLite's are, and no second event loop
        // framework (NIO's threads and minutes of build) beside the server's.
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // SHA-256 from OpenSSL's libcrypto: items' content hashes and the model revision.
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // The work: the pipeline (towers behind dynamic batchers, fusion, Matryoshka sizes), the item store, semantic
        // IDs, /match's vectors and features. Its public API exposes no type of Models, Media or Tensor.
        .target(
            name: "Embedding",
            dependencies: [
                "Locking",
                "Models",
                "Media",
                "Tensor",
                "CCrypto",
                "CPostgres",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The HTTP adapter over Embedding: routes, settings and metrics wiring. Knows nothing of Models, Tensor
        // or Media (scripts/check/check-imports).
        .target(
            name: "Service",
            dependencies: [
                "Locking",
                "HTTP",
                "Embedding",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            // The OpenAPI document, served at GET /openapi.json from the binary itself.
            resources: [.embedInCode("Resources/openapi.json")]
        ),
        .executableTarget(
            name: "omniembed",
            dependencies: [
                "Service",
                "HTTP",
                "Embedding",
                "Models",
                "Media",
                "Tensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // Test clients: a raw-socket HTTP client for the live tests, an in-process one for route tests.
        .target(name: "TestSupport", dependencies: ["HTTP"], path: "Tests/TestSupport"),
        .testTarget(name: "LockingTests", dependencies: ["Locking"]),
        .testTarget(
            name: "HTTPTests",
            dependencies: [
                "HTTP", "TestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "Service", "HTTP", "Embedding", "Models", "Locking", "TestSupport", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Media", "Tensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CKernels"]),
        .testTarget(
            name: "EmbeddingTests",
            dependencies: [
                "Embedding", "Tensor", "Locking", .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "MediaTests", dependencies: ["Media", "Tensor"], resources: [.copy("Fixtures")]),
    ]
)
