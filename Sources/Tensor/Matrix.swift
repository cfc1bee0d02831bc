/// A dense row-major matrix of `Float`.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public init(zeros rows: Int, _ columns: Int) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: 0, count: rows * columns))
    }

    public subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    /// `self · other`, or `self · otherᵀ` when `transposeOther` (then `other` is n×k).
    public func multiplied(by other: Matrix, transposeOther: Bool = false) -> Matrix {
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
