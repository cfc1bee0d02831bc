import Locking

/// A bounded map that forgets the least recently used entry first; safe to share between threads.
///
/// An entry used again while it is among the most recent quarter of its shard is not moved to the front: it
/// stays ahead of three quarters of the shard either way, and reading a hot set (a /match's thousands of
/// vectors) then writes no neighbours' links, which are cache misses scattered in memory.
public final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Node {
        var key: Key
        var value: Value
        var previous: Int
        var next: Int
        /// `State.moves` when the entry last went to the front.
        var moved: Int
    }

    /// Entries in a doubly linked list threaded through an array (indices, not references: no per-entry
    /// allocation); `head` is the most recently used.
    private struct State {
        var index: [Key: Int] = [:]
        var nodes: [Node] = []
        var free: [Int] = []
        var head = -1
        var tail = -1
        /// How many times an entry went to the front: entries moved within the last `recent` moves are ahead
        /// of every other.
        var moves = 0
        var recent = 0

        mutating func unlink(_ i: Int) {
            let (previous, next) = (nodes[i].previous, nodes[i].next)
            if previous >= 0 { nodes[previous].next = next } else { head = next }
            if next >= 0 { nodes[next].previous = previous } else { tail = previous }
        }

        /// Marks entry `i` as just used.
        mutating func use(_ i: Int) {
            guard moves - nodes[i].moved >= recent else { return }
            unlink(i)
            pushFront(i)
        }

        mutating func pushFront(_ i: Int) {
            nodes[i].moved = moves
            moves += 1
            nodes[i].previous = -1
            nodes[i].next = head
            if head >= 0 { nodes[head].previous = i }
            head = i
            if tail < 0 { tail = i }
        }
    }

    public let capacity: Int
    /// A large cache is cut into shards by key hash, each with its own lock and recency order, so that requests
    /// (and the two halves of one /match) read it at once; a small one is one shard.
    private let shards: [Locked<State>]
    private let shardCapacity: Int

    /// `capacity` 0 keeps nothing.
    public init(capacity: Int) {
        self.capacity = max(0, capacity)
        let count = self.capacity >= Self.shardedFrom ? Self.shardCount : 1
        let shardCapacity = (self.capacity + count - 1) / count
        shards = (0..<count).map { _ in Locked(State(recent: shardCapacity / 4)) }
        self.shardCapacity = shardCapacity
    }

    /// From this capacity on the cache is sharded (each shard then forgets its own least recently used).
    static var shardedFrom: Int { 4096 }
    static var shardCount: Int { 16 }

    private func shard(_ key: Key) -> Int { shards.count == 1 ? 0 : Int(UInt(bitPattern: key.hashValue) % UInt(shards.count)) }

    public var count: Int { shards.reduce(0) { total, shard in total + shard.withLock { $0.index.count } } }

    /// Each key's value (`nil` where absent), in the keys' order; the present ones are marked as just used.
    public func values(_ keys: [Key]) -> [Value?] {
        var values = [Value?](repeating: nil, count: keys.count)
        _ = visit(keys) { position, value in values[position] = value.pointee }
        return values
    }

    /// Calls `body` with the position in `keys` and the value of each key present, marking it as just used;
    /// returns the positions of the keys absent, in order. The values are lent under their shard's lock, by
    /// address: no copy and no reference counting on thousands of values scattered in memory (a borrowed
    /// generic value is still copied to be passed), but `body` must not use the cache or keep the pointer.
    public func visit(_ keys: [Key], _ body: (Int, UnsafePointer<Value>) -> Void) -> [Int] {
        guard shards.count > 1 else { return Self.visit(shards[0], keys, positions: keys.indices, body) }
        var positions = [[Int]](repeating: [], count: shards.count)
        for (position, key) in keys.enumerated() { positions[shard(key)].append(position) }
        var absent: [Int] = []
        for (shard, positions) in zip(shards, positions) where !positions.isEmpty {
            absent += Self.visit(shard, keys, positions: positions, body)
        }
        return absent.sorted()
    }

    private static func visit(_ shard: Locked<State>, _ keys: [Key], positions: some Collection<Int>,
                              _ body: (Int, UnsafePointer<Value>) -> Void) -> [Int] {
        shard.withLock { state in
            // In passes (find every key, then mark each as used, then lend the values): the memory reads of one
            // pass do not wait for each other, where one pass per key would wait for each in turn.
            let found = positions.map { state.index[keys[$0]] ?? -1 }
            var absent: [Int] = []
            for (position, i) in zip(positions, found) {
                guard i >= 0 else {
                    absent.append(position)
                    continue
                }
                state.use(i)
            }
            let offset = MemoryLayout<Node>.offset(of: \Node.value)!
            state.nodes.withUnsafeBufferPointer { nodes in
                let base = UnsafeRawPointer(nodes.baseAddress!)
                for (position, i) in zip(positions, found) where i >= 0 {
                    body(position, (base + i * MemoryLayout<Node>.stride + offset).assumingMemoryBound(to: Value.self))
                }
            }
            return absent
        }
    }

    /// Inserts or replaces entries, evicting the least recently used (of the entry's shard) beyond the capacity.
    public func set(_ entries: some Sequence<(Key, Value)>) {
        guard capacity > 0 else { return }
        for (key, value) in entries {
            shards[shard(key)].withLock { state in
                if let i = state.index[key] {
                    state.nodes[i].value = value
                    state.use(i)
                    return
                }
                if state.index.count >= shardCapacity {
                    let last = state.tail
                    state.unlink(last)
                    state.index[state.nodes[last].key] = nil
                    state.free.append(last)
                }
                let node = Node(key: key, value: value, previous: -1, next: -1, moved: 0)
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
        for key in keys {
            shards[shard(key)].withLock { state in
                guard let i = state.index[key] else { return }
                body(key, &state.nodes[i].value)
            }
        }
    }

    public func remove(_ keys: some Sequence<Key>) {
        for key in keys {
            shards[shard(key)].withLock { state in
                guard let i = state.index.removeValue(forKey: key) else { return }
                state.unlink(i)
                state.free.append(i)
            }
        }
    }

    public func removeAll() {
        for shard in shards { shard.withLock { $0 = State(recent: shardCapacity / 4) } }
    }
}
