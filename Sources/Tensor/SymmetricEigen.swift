import CBLAS

/// Eigen-decomposition of a symmetric matrix through LAPACK's `dsyevd` (which OpenBLAS carries).
public enum SymmetricEigen {
    public struct Failure: Error, CustomStringConvertible {
        public let info: Int32
        public var description: String { "LAPACK dsyevd failed (info \(info))" }
    }

    /// Eigenvalues in descending order and the matching unit eigenvectors, one per row (n × n, row-major), of the
    /// symmetric n × n `matrix` (row-major; only one triangle is read).
    public static func decompose(_ matrix: [Double], n: Int) throws(Failure) -> (values: [Double], vectors: [Double]) {
        precondition(matrix.count == n * n, "matrix is not \(n) × \(n)")
        // Column-major LAPACK on a symmetric row-major matrix sees the same matrix; it returns the eigenvectors as
        // columns, which read row-major are rows.
        var a = matrix
        var values = [Double](repeating: 0, count: n)
        var size = Int32(n), info: Int32 = 0
        var workQuery = 0.0, iworkQuery: Int32 = 0, query: Int32 = -1
        dsyevd_("V", "U", &size, &a, &size, &values, &workQuery, &query, &iworkQuery, &query, &info, 1, 1)
        guard info == 0 else { throw Failure(info: info) }
        var lwork = Int32(workQuery), liwork = iworkQuery
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_("V", "U", &size, &a, &size, &values, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else { throw Failure(info: info) }
        // LAPACK orders them ascending.
        var vectors = [Double](repeating: 0, count: n * n)
        for (row, source) in (0..<n).reversed().enumerated() {
            for column in 0..<n { vectors[row * n + column] = a[source * n + column] }
        }
        return (values.reversed(), vectors)
    }
}
