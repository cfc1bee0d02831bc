internal import CPostgres
import Foundation

/// One libpq connection, used by one thread at a time (the pool hands it out). Statements are prepared once per
/// connection and run with binary results; parameters are text, or `bytea` sent as binary.
final class PostgresConnection {
    enum Value {
        case text(String)
        case bytes([UInt8])
        case null
    }

    private let connection: OpaquePointer
    private var prepared: Set<String> = []

    /// `parameters`: libpq's connection keywords (host, port, dbname, user, password, options, ...); a `dbname`
    /// first may be a `postgresql://` URL, which the later keywords override.
    init(parameters: [(String, String)]) throws(StoreError) {
        let keywords = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer { (keywords + values).forEach { free($0) } }
        let connection = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordPointers in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
                PQconnectdbParams(keywordPointers.baseAddress, valuePointers.baseAddress, 1)
            }
        }
        guard let connection else { throw .unavailable("cannot allocate a PostgreSQL connection") }
        self.connection = connection
        guard PQstatus(connection) == CONNECTION_OK else {
            throw .unavailable("cannot connect to PostgreSQL: \(Self.message(connection))")
        }
        // The server's notices ("relation ... already exists, skipping") are not errors: not printed to stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
    }

    deinit { PQfinish(connection) }

    /// Whether the connection still works as far as libpq knows (a failed call may have found it broken).
    var isHealthy: Bool { PQstatus(connection) == CONNECTION_OK }

    /// Runs `sql` (no parameters, any number of statements); commands only.
    func execute(_ sql: String) throws(StoreError) {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        try check(result, sql)
    }

    /// Runs the statement `sql`, prepared on first use under `name` (`nil`: not prepared, for statements that
    /// cannot be, such as DECLARE), with `values`; the rows it returns.
    func query(_ name: String?, _ sql: String, _ values: [Value] = []) throws(StoreError) -> PostgresRows {
        if let name, !prepared.contains(name) {
            let result = PQprepare(connection, name, sql, Int32(values.count), nil)
            defer { PQclear(result) }
            try check(result, sql)
            prepared.insert(name)
        }
        var buffers: [[UInt8]?] = values.map {
            switch $0 {
            case .text(let text): Array(text.utf8) + [0]
            case .bytes(let bytes): bytes
            case .null: nil
            }
        }
        let lengths = buffers.map { Int32($0?.count ?? 0) }
        let formats = values.map { if case .bytes = $0 { Int32(1) } else { Int32(0) } }
        let result = withPointers(&buffers) { pointers in
            if let name {
                PQexecPrepared(connection, name, Int32(values.count), pointers, lengths, formats, 1)
            } else {
                PQexecParams(connection, sql, Int32(values.count), nil, pointers, lengths, formats, 1)
            }
        }
        do { try check(result, sql) } catch {
            PQclear(result)
            throw error
        }
        return PostgresRows(result!)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    func transaction<R>(_ body: () throws(StoreError) -> R) throws(StoreError) -> R {
        try execute("BEGIN")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if isHealthy { try? execute("ROLLBACK") }
            throw error
        }
    }

    private func check(_ result: OpaquePointer?, _ sql: String) throws(StoreError) {
        let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let message = result.flatMap { PQresultErrorMessage($0).map { String(cString: $0) } }.flatMap { $0.isEmpty ? nil : $0 }
                ?? Self.message(connection)
            let statement = sql.prefix(60).replacingOccurrences(of: "\n", with: " ")
            let text = "PostgreSQL: \(message.trimmingCharacters(in: .whitespacesAndNewlines)) (in: \(statement)...)"
            // A broken connection, or a server shutting down or refusing connections: the store is unavailable,
            // not wrong. SQLSTATE class 08 (connection), 57 (operator intervention: shutdown, cancelled by timeout).
            let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } } ?? ""
            if !isHealthy || state.hasPrefix("08") || state.hasPrefix("57") || state.isEmpty {
                throw .unavailable(text)
            }
            throw .failed(text)
        }
    }

    /// Waits up to `timeout` for the server to send something (a NOTIFY of a channel this connection LISTENs to)
    /// or for `interrupt` to become readable, then takes in what came; whether a notification did.
    func waitForNotification(timeout: Duration, interrupt: Int32) -> Bool {
        var descriptors = [pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0),
                           pollfd(fd: interrupt, events: Int16(POLLIN), revents: 0)]
        guard descriptors[0].fd >= 0 else { return false }
        _ = poll(&descriptors, 2, Int32(timeout.milliseconds))
        guard PQconsumeInput(connection) == 1 else { return false }
        var notified = false
        while let notification = PQnotifies(connection) {
            notified = true
            PQfreemem(notification)
        }
        return notified
    }

    private static func message(_ connection: OpaquePointer) -> String {
        PQerrorMessage(connection).map { String(cString: $0) }?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown error"
    }

    private func withPointers<R>(_ buffers: inout [[UInt8]?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        var pointers: [UnsafePointer<CChar>?] = []
        func nest(_ index: Int) -> R {
            guard index < buffers.count else { return body(pointers) }
            guard buffers[index] != nil else {
                pointers.append(nil)
                return nest(index + 1)
            }
            return buffers[index]!.withUnsafeBufferPointer { buffer in
                pointers.append(buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
                                ?? UnsafePointer(bitPattern: 1))
                return nest(index + 1)
            }
        }
        return nest(0)
    }
}

/// A result's rows in binary format, freed with it.
final class PostgresRows {
    private let result: OpaquePointer
    let count: Int

    init(_ result: OpaquePointer) {
        self.result = result
        count = Int(PQntuples(result))
    }

    deinit { PQclear(result) }

    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) == 1 }

    func bytes(_ row: Int, _ column: Int) -> [UInt8]? {
        guard !isNull(row, column), let value = PQgetvalue(result, Int32(row), Int32(column)) else { return nil }
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        return Array(UnsafeRawBufferPointer(start: value, count: length))
    }

    /// The column's bytes in place (empty for NULL), for the length of `body`.
    func withBytes<R, E: Error>(_ row: Int, _ column: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        guard !isNull(row, column), let value = PQgetvalue(result, Int32(row), Int32(column)) else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: value, count: Int(PQgetlength(result, Int32(row), Int32(column)))))
    }

    func text(_ row: Int, _ column: Int) -> String? {
        isNull(row, column) ? nil : withBytes(row, column) { String(decoding: $0, as: UTF8.self) }
    }

    /// An `int2`, `int4` or `int8` column.
    func int(_ row: Int, _ column: Int) -> Int? {
        guard let bytes = bytes(row, column), [2, 4, 8].contains(bytes.count) else { return nil }
        var value: Int64 = bytes[0] & 0x80 != 0 ? -1 : 0
        for byte in bytes { value = value << 8 | Int64(byte) }
        return Int(value)
    }

    /// A `float8` column.
    func double(_ row: Int, _ column: Int) -> Double? {
        guard let bytes = bytes(row, column), bytes.count == 8 else { return nil }
        return Double(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    func bool(_ row: Int, _ column: Int) -> Bool? {
        bytes(row, column).flatMap { $0.count == 1 ? $0[0] != 0 : nil }
    }
}
