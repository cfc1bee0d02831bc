import CBLAS
import Foundation

/// OpenBLAS: which kernel it runs and with how many threads.
public enum BLAS {
    /// The kernel OpenBLAS chose (or was told to use through `OPENBLAS_CORETYPE`), e.g. `Haswell`, `SkylakeX`.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Threads each BLAS call may use. Callers that run several BLAS calls at once share the cores, so the
    /// product of both must not exceed them (oversubscription makes OpenBLAS's threads spin against each other).
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// Threads each BLAS call may use now.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel to ask for before OpenBLAS initialises, or `nil` to keep its own choice.
    ///
    /// Debian's OpenBLAS 0.3.21 picks its Haswell kernel on AVX-512 CPUs it does not recognise; its SkylakeX
    /// kernel runs about twice as fast there.
    public static func preferredCoreType(cpuFlags: Set<String>) -> String? {
        cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) ? "SkylakeX" : nil
    }

    /// The CPU feature flags of this machine (from `/proc/cpuinfo`), empty where unavailable.
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}

/// Matrix products through OpenBLAS `sgemm`, on row-major `Float` matrices.
public enum GEMM {
    /// `c = alpha · a · op(b) + beta · c`: `a` is m×k; `b` is k×n, or n×k when `transposeB` (weights stored
    /// [out, in], as PyTorch's `Linear` keeps them); `c` is m×n. Leading dimensions default to packed rows and
    /// let the operands be column slices of wider matrices (one attention head of a fused QKV projection).
    public static func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
                                m: Int, n: Int, k: Int, transposeB: Bool, alpha: Float = 1, beta: Float = 0,
                                lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda ?? k), b, Int32(ldb ?? (transposeB ? k : n)),
                    beta, c, Int32(ldc ?? n))
    }

    /// `c = alpha · aᵀ · a + beta · c` for `a` rows × columns: the columns' Gram matrix (columns × columns), only its
    /// upper triangle written.
    public static func gram(_ a: UnsafePointer<Float>, rows: Int, columns: Int, into c: UnsafeMutablePointer<Float>,
                            alpha: Float = 1, beta: Float = 0) {
        guard rows > 0, columns > 0 else { return }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(columns), Int32(rows), alpha, a, Int32(columns),
                    beta, c, Int32(columns))
    }
}
