import Locking

/// A bounded map that forgets the least recently used entry first; safe to share between threads.
public final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Node {
        var key: Key
        var value: Value
        var previous: Int
        var next: Int
    }

    /// Entries in a doubly linked list threaded through an array (indices, not references: no per-entry
    /// allocation); `head` is the most recently used.
    private struct State {
        var index: [Key: Int] = [:]
        var nodes: [Node] = []
        var free: [Int] = []
        var head = -1
        var tail = -1

        mutating func unlink(_ i: Int) {
            let (previous, next) = (nodes[i].previous, nodes[i].next)
            if previous >= 0 { nodes[previous].next = next } else { head = next }
            if next >= 0 { nodes[next].previous = previous } else { tail = previous }
        }

        mutating func pushFront(_ i: Int) {
            nodes[i].previous = -1
            nodes[i].next = head
            if head >= 0 { nodes[head].previous = i }
            head = i
            if tail < 0 { tail = i }
        }
    }

    public let capacity: Int
    private let state = Locked(State())

    /// `capacity` 0 keeps nothing.
    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    public var count: Int { state.withLock { $0.index.count } }

    /// Each key's value (`nil` where absent), in the keys' order; the present ones are marked as just used.
    public func values(_ keys: [Key]) -> [Value?] {
        var values = [Value?](repeating: nil, count: keys.count)
        _ = visit(keys) { position, value in values[position] = copy value }
        return values
    }

    /// Calls `body` with the position in `keys` and the value of each key present, marking it as just used;
    /// returns the positions of the keys absent. The values are lent under the lock, not copied: no reference
    /// counting on thousands of values scattered in memory, but `body` must not use the cache.
    public func visit(_ keys: [Key], _ body: (Int, borrowing Value) -> Void) -> [Int] {
        state.withLock { state in
            // In passes (find every key, then mark each as used, then lend the values): the memory reads of one
            // pass do not wait for each other, where one pass per key would wait for each in turn.
            let found = keys.map { state.index[$0] ?? -1 }
            var absent: [Int] = []
            for (position, i) in found.enumerated() {
                guard i >= 0 else {
                    absent.append(position)
                    continue
                }
                state.unlink(i)
                state.pushFront(i)
            }
            // Through the buffer: an array subscript would copy each node (retaining its key and value).
            state.nodes.withUnsafeBufferPointer { nodes in
                for (position, i) in found.enumerated() where i >= 0 { body(position, nodes[i].value) }
            }
            return absent
        }
    }

    /// Inserts or replaces entries, evicting the least recently used beyond the capacity.
    public func set(_ entries: some Sequence<(Key, Value)>) {
        guard capacity > 0 else { return }
        state.withLock { state in
            for (key, value) in entries {
                if let i = state.index[key] {
                    state.nodes[i].value = value
                    state.unlink(i)
                    state.pushFront(i)
                    continue
                }
                if state.index.count >= capacity {
                    let last = state.tail
                    state.unlink(last)
                    state.index[state.nodes[last].key] = nil
                    state.free.append(last)
                }
                let node = Node(key: key, value: value, previous: -1, next: -1)
                let i: Int
                if let reused = state.free.popLast() {
                    state.nodes[reused] = node
                    i = reused
                } else {
                    state.nodes.append(node)
                    i = state.nodes.count - 1
                }
                state.index[key] = i
                state.pushFront(i)
            }
        }
    }

    /// Changes the values of the keys present in place (their recency unchanged).
    public func update(_ keys: some Sequence<Key>, _ body: (Key, inout Value) -> Void) {
        state.withLock { state in
            for key in keys {
                guard let i = state.index[key] else { continue }
                body(key, &state.nodes[i].value)
            }
        }
    }

    public func remove(_ keys: some Sequence<Key>) {
        state.withLock { state in
            for key in keys {
                guard let i = state.index.removeValue(forKey: key) else { continue }
                state.unlink(i)
                state.free.append(i)
            }
        }
    }

    public func removeAll() {
        state.withLock { $0 = State() }
    }
}
