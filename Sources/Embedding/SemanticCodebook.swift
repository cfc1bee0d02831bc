import Foundation
internal import Models
internal import Tensor

/// A fitted codebook (`omniembed fit`): the PCA rotation of the embedding space and QARM's residual k-means levels,
/// optionally ending in an FSQ level. Items' semantic IDs are their codes, one per level.
///
/// Vectors are rotated without centring (a rotation keeps lengths and dot products, so cosines at full size are
/// unchanged) and the levels quantise rotated vectors.
public struct SemanticCodebook: Sendable {
    /// The final level of QARM V2: finite scalar quantisation of what residual k-means leaves, along the
    /// residuals' leading principal directions; each direction bounded by tanh and rounded to a few levels.
    public struct FSQ: Sendable, Equatable {
        /// Levels per direction; the code is their mixed-radix index.
        public var levels: [Int]
        /// levels.count × dimensions: the directions.
        public var projection: [Float]
        /// Per direction: the residuals' standard deviation along it.
        public var scale: [Float]

        public var codeCount: Int { levels.reduce(1, *) }

        public init(levels: [Int], projection: [Float], scale: [Float]) {
            self.levels = levels
            self.projection = projection
            self.scale = scale
        }

        /// The code of one residual's projections.
        func code(_ projected: UnsafePointer<Float>) -> Int {
            var code = 0, radix = 1
            for (i, count) in levels.enumerated() {
                let bounded = tanh(projected[i] / scale[i])
                let index = min(count - 1, max(0, Int(((bounded + 1) / 2 * Float(count - 1)).rounded())))
                code += index * radix
                radix *= count
            }
            return code
        }
    }

    public static let format = "omniembed-codebook/1"

    /// The first 16 hex digits of the file's SHA-256: names what produced a code or a rotated vector.
    public let version: String
    public let dimensions: Int
    /// dimensions × dimensions, row-major: the principal axes, by decreasing variance.
    public let rotation: [Float]
    /// The rotation packed once as a layer: each vector rotated alone, the same bits in any batch, and no
    /// repacking of the matrix per call as OpenBLAS does.
    let rotator: Linear
    let levels: [NearestCentroids]
    public let fsq: FSQ?
    /// The model whose vectors it was fitted on; `nil` when fitted on vectors of unknown origin.
    public let model: ModelIdentity?
    public let metadata: [String: String]

    /// Codes per item: one per residual k-means level, and one more with FSQ.
    public var codeLength: Int { levels.count + (fsq == nil ? 0 : 1) }

    init(dimensions: Int, rotation: [Float], levels: [NearestCentroids], fsq: FSQ?, model: ModelIdentity?,
                metadata: [String: String] = [:], version: String = "") {
        self.dimensions = dimensions
        self.rotation = rotation
        rotator = Linear(weight: rotation, bias: [Float](repeating: 0, count: dimensions), outputs: dimensions, inputs: dimensions)
        self.levels = levels
        self.fsq = fsq
        self.model = model
        self.metadata = metadata
        self.version = version
    }

    /// Largest codebook file read (a 4096-d rotation with three levels of 65536 centroids is about 3 GB; ours are
    /// a few MB).
    public static let maxFileBytes = 1 << 30
    /// Largest FSQ code space: codes are counted per code value when `/match` compares prefixes.
    public static let maxFSQCodes = 1 << 24

    /// Reads an artifact written by `bytes()`: a regular file of at most `maxFileBytes`, read once (its hash is
    /// the version of exactly the bytes parsed). Every count is checked with overflow-safe arithmetic and every
    /// value must be finite; errors name the file and what is wrong with it.
    public init(path: String) throws {
        try self.init(bytes: try RegularFile.read(path, maxBytes: Self.maxFileBytes), path: path)
    }

    /// A codebook file's bytes, already read (`path` names it in messages).
    public init(bytes: [UInt8], path: String) throws {
        let file = try SafetensorsFile(bytes: bytes, path: path)
        func fail(_ reason: String) -> ModelLoadingError { ModelLoadingError(file: path, reason: reason) }
        func finite(_ name: String) throws -> [Float] {
            let values = try file.floats(name)
            guard values.allSatisfy(\.isFinite) else { throw fail("\(name) has values that are not finite") }
            return values
        }
        guard file.metadata["format"] == Self.format else {
            throw fail("not an OmniEmbed codebook (metadata format \(file.metadata["format"].map { "'\($0)'" } ?? "missing"), expected '\(Self.format)')")
        }
        let shape = try file.shape("rotation")
        guard shape.count == 2, shape[0] == shape[1], shape[0] > 0 else { throw fail("rotation has shape \(shape), not d × d") }
        let d = shape[0]
        var levels: [NearestCentroids] = []
        while file.tensors["level.\(levels.count).centroids"] != nil {
            let name = "level.\(levels.count).centroids"
            let shape = try file.shape(name)
            guard shape.count == 2, shape[1] == d, shape[0] > 0, shape[0] <= Int(Int32.max) else {
                throw fail("\(name) has shape \(shape), not k × \(d)")
            }
            levels.append(NearestCentroids(try finite(name), count: shape[0], dimensions: d))
        }
        guard !levels.isEmpty else { throw fail("no level.0.centroids") }
        var fsq: FSQ?
        if let list = file.metadata["fsq_levels"], !list.isEmpty {
            let parts = list.split(separator: ",", omittingEmptySubsequences: false)
            let counts = parts.compactMap { Int($0) }
            guard counts.count == parts.count, counts.allSatisfy({ $0 >= 2 }) else {
                throw fail("fsq_levels '\(list)' is not a list of integers ≥ 2")
            }
            var product = 1
            for count in counts {
                let (next, overflow) = product.multipliedReportingOverflow(by: count)
                guard !overflow, next <= Self.maxFSQCodes else {
                    throw fail("fsq_levels '\(list)' make more than \(Self.maxFSQCodes) codes")
                }
                product = next
            }
            try file.require(["fsq.projection": [counts.count, d], "fsq.scale": [counts.count]])
            let scale = try finite("fsq.scale")
            guard scale.allSatisfy({ $0 > 0 }) else { throw fail("fsq.scale has values that are not positive") }
            fsq = FSQ(levels: counts, projection: try finite("fsq.projection"), scale: scale)
        }
        let model: ModelIdentity? = switch (file.metadata["model_id"], file.metadata["model_revision"]) {
        case (let id?, let revision?) where !id.isEmpty: ModelIdentity(id: id, revision: revision)
        default: nil
        }
        self.init(dimensions: d, rotation: try finite("rotation"), levels: levels, fsq: fsq, model: model,
                  metadata: file.metadata, version: String(ContentHash.sha256(bytes).prefix(16)))
    }

    /// The artifact: rotation, centroids per level, FSQ, and `metadata` plus what `init(path:)` needs.
    public func bytes() -> [UInt8] {
        var tensors = [SafetensorsWriter.Tensor("rotation", shape: [dimensions, dimensions], rotation)]
        for (index, level) in levels.enumerated() {
            tensors.append(.init("level.\(index).centroids", shape: [level.count, dimensions], level.centroids))
        }
        var metadata = self.metadata
        metadata["format"] = Self.format
        metadata["levels"] = String(levels.count)
        metadata["clusters"] = levels.map { String($0.count) }.joined(separator: ",")
        metadata["model_id"] = model?.id ?? ""
        metadata["model_revision"] = model?.revision ?? ""
        metadata["fsq_levels"] = fsq?.levels.map(String.init).joined(separator: ",") ?? ""
        if let fsq {
            tensors.append(.init("fsq.projection", shape: [fsq.levels.count, dimensions], fsq.projection))
            tensors.append(.init("fsq.scale", shape: [fsq.levels.count], fsq.scale))
        }
        return SafetensorsWriter.bytes(tensors, metadata: metadata)
    }

    /// `count` vectors (row-major) in the rotated space: yᵢ = R·xᵢ.
    public func rotate(_ vectors: [Float], count: Int) -> [Float] {
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count * dimensions) { out, initialized in
            // Always the packed kernel (never OpenBLAS, whose result for a row depends on the call's shape).
            vectors.withUnsafeBufferPointer { rotator.apply($0.baseAddress!, rows: count, into: out.baseAddress!, packedRowLimit: .max) }
            initialized = count * dimensions
        }
    }

    /// The inverse of `rotate`: xᵢ = Rᵀ·yᵢ.
    public func unrotate(_ vectors: [Float], count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count * dimensions)
        GEMM.multiply(vectors, rotation, into: &out, m: count, n: dimensions, k: dimensions, transposeB: false)
        return out
    }

    /// The codes of `count` vectors (row-major, model space).
    public func codes(_ vectors: [Float], count: Int) -> [[Int]] {
        codes(rotated: rotate(vectors, count: count), count: count)
    }

    /// The codes of `count` vectors already rotated.
    public func codes(rotated: [Float], count: Int) -> [[Int]] {
        guard count > 0 else { return [] }
        var residual = rotated
        var codes = [[Int]](repeating: [], count: count)
        var index = [Int32](repeating: 0, count: count)
        var distance = [Float](repeating: 0, count: count)
        residual.withUnsafeMutableBufferPointer { residual in
            for level in levels {
                level.assign(residual.baseAddress!, rows: count, index: &index, distance: &distance)
                level.centroids.withUnsafeBufferPointer { centroids in
                    Rows.subtract(centroids.baseAddress!, from: residual.baseAddress!, rows: count, columns: dimensions,
                                  assignment: index)
                }
                for i in 0..<count { codes[i].append(Int(index[i])) }
            }
            if let fsq {
                let m = fsq.levels.count
                var projected = [Float](repeating: 0, count: count * m)
                GEMM.multiply(residual.baseAddress!, fsq.projection, into: &projected, m: count, n: m, k: dimensions,
                              transposeB: true)
                projected.withUnsafeBufferPointer { projected in
                    for i in 0..<count { codes[i].append(fsq.code(projected.baseAddress! + i * m)) }
                }
            }
        }
        return codes
    }
}

extension SemanticCodebook {
    /// Whether this codebook fits vectors of `dimensions` from `model`; a message saying why not otherwise. A
    /// codebook that names no model fits only with `allowUnstamped`: its codes would otherwise be served for
    /// whatever model runs.
    public func mismatch(dimensions: Int, model: ModelIdentity, allowUnstamped: Bool = false) -> String? {
        if self.dimensions != dimensions {
            return "the codebook is for \(self.dimensions)-dimensional vectors; the model gives \(dimensions)"
        }
        switch self.model {
        case let fitted? where fitted != model:
            return "the codebook was fitted on vectors of \(fitted.id) revision \(fitted.revision); the service runs \(model.id) revision \(model.revision)"
        case nil where !allowUnstamped:
            return "the codebook names no model (fitted with --unstamped); set codebook.allowUnstamped to serve it for \(model.id) revision \(model.revision)"
        default:
            break
        }
        var product = 1
        for count in levels.map(\.count) + (fsq.map { [$0.codeCount] } ?? []) {
            let (next, overflow) = product.multipliedReportingOverflow(by: count)
            if overflow { return "its full code space (the product of the code counts) exceeds 2^63" }
            product = next
        }
        return nil
    }

    /// Code counts per level (the FSQ level's last).
    public var codeCounts: [Int] { levels.map(\.count) + (fsq.map { [$0.codeCount] } ?? []) }
}
