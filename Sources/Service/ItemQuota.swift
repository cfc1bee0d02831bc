import HTTP

/// The items a request may embed under its API key's quota (`auth.limits.itemsPerSecond`); no key, no quota.
struct ItemQuota: Sendable {
    var authenticator: Authenticator?
    var keyName: String?

    func admit(_ count: Int) throws(HTTPError) {
        try authenticator?.admitItems(count, keyName: keyName)
    }
}
