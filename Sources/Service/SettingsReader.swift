import Configuration

/// Reads settings from swift-configuration's providers. A key no provider has leaves the value as it is (its
/// default); a key that is present with a malformed value is an error naming the key, never silently the default.
struct SettingsReader {
    let providers: [any ConfigProvider]
    let reader: ConfigReader

    init(providers: [any ConfigProvider]) {
        self.providers = providers
        reader = ConfigReader(providers: providers)
    }

    /// The value at `key` read by `read`; `nil` when no provider has the key (asked of the providers as `type`).
    func present<T>(_ key: String, as type: ConfigType, _ read: (ConfigReader, ConfigKey) throws -> T) throws(ConfigurationError) -> T? {
        do {
            let absolute = AbsoluteConfigKey(ConfigKey(key))
            guard try providers.contains(where: { try $0.value(forKey: absolute, type: type).value != nil }) else { return nil }
            return try read(reader, ConfigKey(key))
        } catch {
            throw .invalid(key: key, reason: "\(error)")
        }
    }

    func int(_ key: String, _ value: inout Int) throws(ConfigurationError) {
        if let found = try present(key, as: .int, { try $0.requiredInt(forKey: $1) }) { value = found }
    }

    func int32(_ key: String, _ value: inout Int32) throws(ConfigurationError) {
        var wide = Int(value)
        try int(key, &wide)
        value = Int32(clamping: wide)
    }

    func string(_ key: String, _ value: inout String) throws(ConfigurationError) {
        if let found = try present(key, as: .string, { try $0.requiredString(forKey: $1) }) { value = found }
    }

    func bool(_ key: String, _ value: inout Bool) throws(ConfigurationError) {
        if let found = try present(key, as: .bool, { try $0.requiredBool(forKey: $1) }) { value = found }
    }

    func double(_ key: String) throws(ConfigurationError) -> Double? {
        try present(key, as: .double, { try $0.requiredDouble(forKey: $1) })
    }

    func ints(_ key: String, _ value: inout [Int]) throws(ConfigurationError) {
        if let found = try present(key, as: .intArray, { try $0.requiredIntArray(forKey: $1) }) { value = found }
    }

    /// A duration given in whole milliseconds.
    func milliseconds(_ key: String, _ value: inout Duration) throws(ConfigurationError) {
        var ms = Int(value.seconds * 1000)
        try int(key, &ms)
        value = .milliseconds(ms)
    }

    /// One of an enumeration's raw values.
    func choice<Choice: RawRepresentable & CaseIterable>(_ key: String, _ value: inout Choice) throws(ConfigurationError)
        where Choice.RawValue == String {
        var found: Choice?
        try choice(key, &found)
        if let found { value = found }
    }

    /// An enum setting that may be absent (`nil`: another setting decides).
    func choice<Choice: RawRepresentable & CaseIterable>(_ key: String, _ value: inout Choice?) throws(ConfigurationError)
        where Choice.RawValue == String {
        guard let name = try present(key, as: .string, { try $0.requiredString(forKey: $1) }) else { return }
        guard let found = Choice(rawValue: name) else {
            throw .invalid(key: key, reason: "'\(name)' is not one of \(Choice.allCases.map(\.rawValue))")
        }
        value = found
    }
}
