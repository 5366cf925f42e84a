//! The scopes an app can ask for, each with the plain words the consent page shows.

/// Read tag values (snapshot, raw, plot, processed) from the granted data sources.
pub const DATA_READ: &str = "data.read";
/// Find and list tags of the granted data sources.
pub const TAGS_READ: &str = "tags.read";

/// Open a connector link: a site connector's own tokens (device flow or client credentials)
/// carry it, and nothing else does unless registered for it.
pub const CONNECTOR: &str = uplink_link::CONNECTOR_SCOPE;

/// Every scope the hub knows, with its description for people.
pub const ALL: &[(&str, &str)] = &[
    (
        TAGS_READ,
        "See the tags in the data sources you choose: names, descriptions and units",
    ),
    (
        DATA_READ,
        "Read current and historical values from the data sources you choose",
    ),
    (
        CONNECTOR,
        "Connect a site connector to your account, so it can offer its data sources through this hub",
    ),
];

/// The plain-words description of `scope`, if the hub knows it.
pub fn describe(scope: &str) -> Option<&'static str> {
    ALL.iter().find(|(s, _)| *s == scope).map(|(_, d)| *d)
}

/// Whether the hub knows `scope`.
pub fn is_known(scope: &str) -> bool {
    describe(scope).is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_scope_has_words() {
        for (scope, words) in super::ALL {
            assert!(super::is_known(scope));
            assert!(words.len() > 20);
        }
        assert!(!super::is_known("admin"));
    }
}
