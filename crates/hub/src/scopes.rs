//! The scopes an app can ask for, each with the plain words the consent page shows.

/// OpenID Connect: sign the user in; the app gets an ID token naming them (`sub`).
pub const OPENID: &str = "openid";
/// OpenID Connect: the user's display name and sign-in name.
pub const PROFILE: &str = "profile";
/// OpenID Connect: the user's email address.
pub const EMAIL: &str = "email";
/// Debit the user's hub account, within the monthly limit the user sets on the consent page.
pub const ACCOUNT_DEBIT: &str = "account.debit";
/// Read tag values (snapshot, raw, plot, processed) from the granted data sources.
pub const DATA_READ: &str = "data.read";
/// Find and list tags of the granted data sources.
pub const TAGS_READ: &str = "tags.read";
/// Set values in the data sources the user ticked for writing (each source ticked on its own
/// on the consent page, and only where its site turned writing on).
pub const DATA_WRITE: &str = "data.write";
/// See alarms and events of the data sources whose events the user ticked (per source: a
/// grant carries it only for the sources ticked for events on the consent page).
pub const EVENTS_READ: &str = "events.read";

/// Open a connector link: a site connector's own tokens (device flow or client credentials)
/// carry it, and nothing else does unless registered for it.
pub const CONNECTOR: &str = uplink_link::CONNECTOR_SCOPE;

/// What an app registered without naming its scopes may ask for: reading tags and values.
/// Never [`CONNECTOR`]: that one makes a link act as the owner's connector, so an operator
/// gives it to an app only on purpose (`uplink hub app add --allow-connector-scope`).
pub const DEFAULT_APP: &[&str] = &[TAGS_READ, DATA_READ];

/// Every scope the hub knows, with its description for people.
pub const ALL: &[(&str, &str)] = &[
    (
        OPENID,
        "Sign you in with your hub account: the app learns an id for you that stays the same",
    ),
    (
        PROFILE,
        "See your name: your display name and the name you sign in with",
    ),
    (EMAIL, "See your email address"),
    (
        ACCOUNT_DEBIT,
        "Charge your hub account for what you use, up to the monthly limit you set here",
    ),
    (
        TAGS_READ,
        "See the tags in the data sources you choose: names, descriptions and units",
    ),
    (
        DATA_READ,
        "Read current and historical values from the data sources you choose",
    ),
    (DATA_WRITE, "Change values in the data sources you choose"),
    (
        EVENTS_READ,
        "See alarms and events from the data sources you choose",
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

/// Whether `scope` uses data sources, so a consent for it needs at least one ticked.
pub fn reads_data(scope: &str) -> bool {
    scope == TAGS_READ || scope == DATA_READ || scope == DATA_WRITE || scope == EVENTS_READ
}

/// Where `scope` comes on the consent page: profile first, then the rest as [`ALL`] lists them.
pub fn order(scope: &str) -> usize {
    ALL.iter()
        .position(|(s, _)| *s == scope)
        .unwrap_or(ALL.len())
}

/// Whether the hub knows `scope`.
pub fn is_known(scope: &str) -> bool {
    describe(scope).is_some()
}

/// Why a set of scopes asked for together is refused, if it is: [`CONNECTOR`] is asked for
/// on its own (a connector's sign-in reads no data), never beside data scopes, so a consent
/// page for an app's data access never carries it.
pub fn mixing_problem(scopes: &[String]) -> Option<String> {
    let connector = scopes.iter().any(|s| s == CONNECTOR);
    (connector && scopes.len() > 1).then(|| {
        format!(
            "scope '{CONNECTOR}' is asked for on its own, by a connector's sign-in, never together with data scopes"
        )
    })
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

    #[test]
    fn connector_is_never_a_default_and_never_mixed() {
        assert!(!super::DEFAULT_APP.contains(&super::CONNECTOR));
        assert!(!super::DEFAULT_APP.contains(&super::DATA_WRITE));
        assert!(!super::DEFAULT_APP.contains(&super::EVENTS_READ));
        let asked = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(super::mixing_problem(&asked(&["connector"])).is_none());
        assert!(super::mixing_problem(&asked(&["data.read", "tags.read"])).is_none());
        assert!(super::mixing_problem(&asked(&["data.read", "connector"])).is_some());
    }
}
