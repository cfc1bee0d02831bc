import Tensor

/// A dense row-major matrix of `Float`: the tests' way to call `GEMM` and check it against loops.
struct Matrix: Sendable, Equatable {
    let rows: Int
    let columns: Int
    var values: [Float]

    init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    init(zeros rows: Int, _ columns: Int) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: 0, count: rows * columns))
    }

    subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    /// `self · other`, or `self · otherᵀ` when `transposeOther` (then `other` is n×k).
    func multiplied(by other: Matrix, transposeOther: Bool = false) -> Matrix {
        let n = transposeOther ? other.rows : other.columns
        precondition(columns == (transposeOther ? other.columns : other.rows), "inner dimensions differ")
        var result = Matrix(zeros: rows, n)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                result.values.withUnsafeMutableBufferPointer { c in
                    GEMM.multiply(a.baseAddress!, b.baseAddress!, into: c.baseAddress!, m: rows, n: n, k: columns,
                                  transposeB: transposeOther)
                }
            }
        }
        return result
    }
}
