//! The PostgreSQL URL a hub is given (`--database postgres://…`): it may carry a password, so
//! it is shown, logged and put into errors only with the password replaced.

use std::fmt;
use std::str::FromStr;

use crate::error::HubError;

/// A `postgres://` (or `postgresql://`) URL. `Display` and `Debug` hide its password;
/// [`DatabaseUrl::expose`] is the one way to the URL itself, for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(std::sync::Arc<Parts>);

/// Boxed so that a command's arguments holding an optional URL stay small.
#[derive(PartialEq, Eq)]
struct Parts {
    url: String,
    /// The URL as shown: the password replaced.
    shown: String,
    /// The password as written and as decoded, to scrub from driver errors.
    secrets: Vec<String>,
}

impl DatabaseUrl {
    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0.url
    }

    /// `text` with every form of the password replaced.
    pub fn scrub(&self, text: &str) -> String {
        self.0
            .secrets
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"))
    }

    /// The error of a failed connection, naming the database as shown and never the password.
    pub(crate) fn opening_error(&self, error: &sqlx::Error) -> HubError {
        HubError::StoreOpen(format!(
            "cannot open the PostgreSQL store {}: {}",
            self.0.shown,
            self.scrub(&error.to_string())
        ))
    }
}

impl FromStr for DatabaseUrl {
    type Err = HubError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = url::Url::parse(s).map_err(|e| {
            HubError::Invalid(format!(
                "the database URL is not a URL ({e}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(HubError::Invalid(format!(
                "the database URL must start with postgres:// (not {}://)",
                parsed.scheme()
            )));
        }
        let mut secrets = Vec::new();
        let mut shown = parsed.clone();
        if let Some(password) = parsed.password().filter(|p| !p.is_empty()) {
            secrets.push(password.to_owned());
            if let Ok(decoded) = percent_decode(password)
                && decoded != password
            {
                secrets.push(decoded);
            }
            // Cannot fail: the URL has a host, since it has a password.
            let _ = shown.set_password(Some("redacted"));
        }
        // A password may also come as a query parameter (`?password=…`).
        let query: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if query.iter().any(|(k, _)| k == "password") {
            let mut pairs = shown.query_pairs_mut();
            pairs.clear();
            for (k, v) in &query {
                if k == "password" {
                    if !v.is_empty() {
                        secrets.push(v.clone());
                    }
                    pairs.append_pair(k, "redacted");
                } else {
                    pairs.append_pair(k, v);
                }
            }
        }
        Ok(Self(std::sync::Arc::new(Parts {
            url: s.to_owned(),
            shown: shown.to_string(),
            secrets,
        })))
    }
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.0.shown).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let url: DatabaseUrl =
            "postgres://hub:pa%2Fss%40word@db.example:5432/uplink?sslmode=require"
                .parse()
                .unwrap();
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(!shown.contains("pa%2Fss"), "{shown}");
            assert!(shown.contains("db.example:5432/uplink"), "{shown}");
        }
        assert_eq!(
            url.scrub("auth failed for pa/ss@word and pa%2Fss%40word"),
            "auth failed for <redacted> and <redacted>"
        );
        let err = url.opening_error(&sqlx::Error::Protocol("pa/ss@word".into()));
        assert!(!err.to_string().contains("pa/ss"), "{err}");
        let query: DatabaseUrl = "postgres://hub@db/uplink?password=hunter22&sslmode=disable"
            .parse()
            .unwrap();
        assert!(!query.to_string().contains("hunter22"), "{query}");
        assert!(query.to_string().contains("sslmode=disable"), "{query}");
    }

    #[test]
    fn only_postgres_urls_are_taken() {
        for bad in ["mysql://x@y/z", "hub.db", ""] {
            let err = bad.parse::<DatabaseUrl>().unwrap_err();
            assert_eq!(err.code(), "invalid_input", "{bad}: {err}");
        }
        assert!(
            "postgresql://localhost/uplink"
                .parse::<DatabaseUrl>()
                .is_ok()
        );
    }
}
