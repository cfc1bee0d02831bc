import Testing
@testable import Tensor

/// The product by three nested loops in Double: the reference for the BLAS call.
func naiveProduct(_ a: Matrix, _ b: Matrix, transposeB: Bool) -> [Double] {
    let n = transposeB ? b.rows : b.columns
    var out = [Double](repeating: 0, count: a.rows * n)
    for i in 0..<a.rows {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<a.columns {
                sum += Double(a[i, p]) * Double(transposeB ? b[j, p] : b[p, j])
            }
            out[i * n + j] = sum
        }
    }
    return out
}

func randomMatrix(_ rows: Int, _ columns: Int, seed: inout UInt64) -> Matrix {
    Matrix(rows: rows, columns: columns, values: (0..<rows * columns).map { _ in
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
    })
}

@Suite struct GEMMTests {
    @Test(arguments: [(1, 1, 1), (3, 5, 7), (16, 384, 384), (37, 1536, 384), (64, 384, 1536), (1, 3, 384)])
    func productMatchesNaiveLoops(_ m: Int, _ n: Int, _ k: Int) {
        var seed: UInt64 = UInt64(m * 1_000_003 + n * 1009 + k)
        let a = randomMatrix(m, k, seed: &seed)
        for transposeB in [false, true] {
            let b = transposeB ? randomMatrix(n, k, seed: &seed) : randomMatrix(k, n, seed: &seed)
            let product = a.multiplied(by: b, transposeOther: transposeB)
            let expected = naiveProduct(a, b, transposeB: transposeB)
            let worst = zip(product.values, expected).map { abs(Double($0) - $1) }.max() ?? 0
            #expect(worst <= 1e-4 * Double(k).squareRoot(), "\(m)×\(n)×\(k) transposeB=\(transposeB): \(worst)")
        }
    }

    @Test func kernelPreference() {
        #expect(BLAS.preferredCoreType(cpuFlags: ["avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"]) == "SkylakeX")
        #expect(BLAS.preferredCoreType(cpuFlags: ["avx2", "fma"]) == nil)
        #expect(!BLAS.coreName.isEmpty && BLAS.coreName != "unknown")
    }
}
