import CoreMetrics
import Locking

/// Who may call the routes that name a scope: the API keys in force, replaced whole when the keys file is read
/// again. A request without a valid `Authorization: Bearer KEY` gets 401 (with `WWW-Authenticate: Bearer`); a key
/// without the route's scope gets 403 naming it.
public final class Authenticator: Sendable {
    private let current: Locked<APIKeys>
    /// Requests and items a second each key may make (`nil`: no limit), with a burst of one second's worth.
    private let requestsPerSecond: Double?
    private let itemsPerSecond: Double?
    private let buckets = Locked<[String: TokenBucket]>([:])
    private let itemBuckets = Locked<[String: TokenBucket]>([:])
    private let metrics: APIKeyMetrics

    public init(_ keys: APIKeys, requestsPerSecond: Double? = nil, itemsPerSecond: Double? = nil,
                metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance) {
        current = Locked(keys)
        metrics = APIKeyMetrics(factory: metricsFactory)
        self.requestsPerSecond = requestsPerSecond
        self.itemsPerSecond = itemsPerSecond
    }

    /// 429 with `Retry-After` when the key named `keyName` (`nil`: no key, no quota) has embedded its items for now.
    /// A request of more items than one second's worth is admitted when the bucket is full.
    public func admitItems(_ count: Int, keyName: String?, now: MonotonicInstant = .now()) throws(HTTPError) {
        guard let keyName, count > 0 else { return }
        guard let rate = itemsPerSecond else { return metrics.embedded(count, key: keyName) }
        let wait = itemBuckets.withLock { buckets in
            var bucket = buckets[keyName] ?? TokenBucket(rate: rate, burst: max(1, rate), now: now)
            defer { buckets[keyName] = bucket }
            return bucket.take(min(Double(count), bucket.burst), now: now)
        }
        guard let wait else { return metrics.embedded(count, key: keyName) }
        metrics.refused(key: keyName, reason: "items_rate_limited")
        throw HTTPError(.tooManyRequests, code: "rate_limited",
                        message: "the key '\(keyName)' is over its \(rate) items a second",
                        headers: HTTPHeaders([("Retry-After", String(max(1, Int(wait.rounded(.up)))))]))
    }

    /// 429 with `Retry-After` when `key` has used its requests for now.
    func admit(_ key: APIKeys.Key, now: MonotonicInstant = .now()) throws(HTTPError) {
        guard let rate = requestsPerSecond else { return }
        let wait = buckets.withLock { buckets in
            var bucket = buckets[key.name] ?? TokenBucket(rate: rate, burst: max(1, rate), now: now)
            defer { buckets[key.name] = bucket }
            return bucket.take(now: now)
        }
        guard let wait else { return }
        metrics.refused(key: key.name, reason: "rate_limited")
        throw HTTPError(.tooManyRequests, code: "rate_limited",
                        message: "the key '\(key.name)' is over its \(rate) requests a second",
                        headers: HTTPHeaders([("Retry-After", String(max(1, Int(wait.rounded(.up)))))]))
    }

    public var keys: APIKeys { current.withLock { $0 } }

    public func replace(_ keys: APIKeys) {
        current.withLock { $0 = keys }
    }

    /// The key `request` presents for `scope`, or the refusal to answer with.
    func authorize(_ request: HTTPRequest, scope: String) throws(HTTPError) -> APIKeys.Key {
        guard let key = keys.authenticate(request.headers["Authorization"]) else {
            metrics.refused(key: "", reason: "unauthorized")
            throw HTTPError(.unauthorized, code: "unauthorized",
                            message: "this route needs an API key: Authorization: Bearer KEY",
                            headers: HTTPHeaders([("WWW-Authenticate", "Bearer")]))
        }
        guard key.scopes.contains(scope) else {
            metrics.refused(key: key.name, reason: "forbidden")
            throw HTTPError(.forbidden, code: "forbidden", message: "the key '\(key.name)' lacks the '\(scope)' scope")
        }
        try admit(key)
        metrics.admitted(key: key.name)
        return key
    }
}
