import HTTP

/// The request decoder on arbitrary bytes, fed whole and split at a point the input chooses: both must end the
/// same way (the same requests, the same error). The connection state machine sees the same bytes.

func fuzzHttp(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let split = Int(data[0]) * (size - 1) / 255 + 1
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var limits = HTTPDecoderLimits()
    limits.maxBodyBytes = 1 << 16
    func decode(_ pieces: [ArraySlice<UInt8>]) -> String {
        var decoder = HTTPRequestDecoder(limits: limits)
        var events: [String] = []
        for piece in pieces {
            decoder.feed(piece)
            do {
                while let event = try decoder.next() {
                    if case .request(let request) = event { events.append("\(request.head.method) \(request.head.target) \(request.body.count)") }
                }
            } catch {
                return events.joined(separator: "|") + " error \(error)"
            }
        }
        return events.joined(separator: "|")
    }
    let whole = decode([bytes[...]])
    let halves = decode([bytes[..<min(split, bytes.count)], bytes[min(split, bytes.count)...]])
    precondition(whole == halves, "split at \(split) decodes differently: \(whole) vs \(halves)")

    var machine = HTTPConnectionStateMachine(limits: limits, now: MonotonicInstant(nanoseconds: 0))
    machine.bytesReceived(bytes, now: MonotonicInstant(nanoseconds: 1))
    machine.receivedEndOfInput()
    for step in 0..<64 {
        switch machine.nextAction(now: MonotonicInstant(nanoseconds: UInt64(2 + step))) {
        case .dispatch(let request):
            _ = machine.responseReady(for: request.head, now: MonotonicInstant(nanoseconds: UInt64(2 + step)))
            machine.responseWritten(now: MonotonicInstant(nanoseconds: UInt64(2 + step)))
        case .sendContinue: continue
        case .reject, .close, .wait: return 0
        }
    }
    return 0
}
