//! What a secret looks like, by name and by shape. The log layer uses it on every field of every
//! event, and the diagnostics export on every log file it takes, so a secret logged by mistake
//! is caught twice.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What a redacted value is replaced by.
pub const REDACTED: &str = "<redacted>";

/// Words that make a name (a setting, a log field, a query parameter) a secret's name.
pub const SECRET_WORDS: [&str; 8] = [
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "apikey",
    "api_key",
    "private_key",
];

/// Whether a setting's name says it holds a secret (`password`, `apiToken`, `client_secret`…).
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// Whether a log field's name says it holds a secret: [`looks_secret`], or a key
/// (`key`, `signing_key`, `privateKey`, `authorization`, `cookie`). A key's *id* is not a key.
pub fn is_secret_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    looks_secret(&lower)
        || lower.ends_with("key")
        || lower.contains("authorization")
        || lower.contains("cookie")
}

/// PASETO tokens (`v4.local.…`, with an optional footer).
static PASETO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bv[1-4]\.(?:local|public)\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)?")
        .expect("a valid pattern")
});

/// Credentials in an `Authorization` header value: `Bearer …`, `Basic …`.
static AUTH_SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]+").expect("a valid pattern")
});

/// `name=value`, `name: value` and `"name":"value"` where the name is a secret's.
static NAMED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_\-]*(?:password|passwd|secret|token|credential|apikey|api_key|private_key)[A-Za-z0-9_\-]*)("?\s*[:=]\s*"?)([^\s"'&,;}<]+)"#,
    )
    .expect("a valid pattern")
});

/// A long run of URL-safe characters mixing upper case, lower case and digits: how random
/// secrets (refresh tokens, client secrets, codes: 43 characters of base64url) look. Hex ids
/// and UUIDs have no upper case, so they stay.
static OPAQUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_\-]{40,}").expect("a valid pattern"));

fn mixes_cases_and_digits(run: &str) -> bool {
    run.bytes().any(|b| b.is_ascii_uppercase())
        && run.bytes().any(|b| b.is_ascii_lowercase())
        && run.bytes().any(|b| b.is_ascii_digit())
}

/// `text` with every token-shaped value replaced by [`REDACTED`]: PASETO tokens, `Bearer`/`Basic`
/// credentials, the value after a secret's name (`access_token=…`, `"password":"…"`), and long
/// random-looking runs. Borrows when there was nothing to replace.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    let mut apply = |regex: &Regex, with: &dyn Fn(&Captures<'_>) -> String| {
        if let Cow::Owned(next) = regex.replace_all(&out, |c: &Captures<'_>| with(c)) {
            out = Cow::Owned(next);
        }
    };
    apply(&PASETO, &|_| REDACTED.to_owned());
    apply(&AUTH_SCHEME, &|c| format!("{}{}{REDACTED}", &c[1], &c[2]));
    apply(&NAMED, &|c| format!("{}{}{REDACTED}", &c[1], &c[2]));
    if OPAQUE
        .find_iter(&out)
        .any(|run| mixes_cases_and_digits(run.as_str()))
    {
        let next = OPAQUE.replace_all(&out, |c: &Captures<'_>| {
            if mixes_cases_and_digits(&c[0]) {
                REDACTED.to_owned()
            } else {
                c[0].to_owned()
            }
        });
        out = Cow::Owned(next.into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASETO_TOKEN: &str = "v4.local.Xq3bJm0Zk9VgTz2rR8yQ1aW5uN7oP4sL6dF0hJ2kE9cV3xB_-Aa";
    const REFRESH: &str = "kP3x9Qw2LmZ7vB1nR8tY4uI6oA0sD5fG3hJ7kL9zXc";

    #[test]
    fn names_of_secrets_are_told_from_names_of_ids() {
        for secret in [
            "password",
            "refresh_token",
            "clientSecret",
            "apiKey",
            "key",
            "signing_key",
            "private_key",
            "Authorization",
            "credential",
        ] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for plain in [
            "key_id",
            "kid",
            "connector_id",
            "hub_url",
            "keyring",
            "path",
        ] {
            assert!(!is_secret_field(plain), "{plain}");
        }
        assert!(looks_secret("apiToken") && !looks_secret("host"));
    }

    #[test]
    fn token_shaped_values_are_scrubbed_and_the_rest_kept() {
        let cases = [
            (
                format!("token {PASETO_TOKEN} refused"),
                "token <redacted> refused".to_owned(),
            ),
            (
                format!("Authorization: Bearer {PASETO_TOKEN}"),
                "Authorization: Bearer <redacted>".to_owned(),
            ),
            (
                format!("GET /hubs/connector?id=1&access_token={REFRESH}&_=2"),
                "GET /hubs/connector?id=1&access_token=<redacted>&_=2".to_owned(),
            ),
            (
                format!(r#"{{"refresh_token":"{REFRESH}","expires_in":3600}}"#),
                r#"{"refresh_token":"<redacted>","expires_in":3600}"#.to_owned(),
            ),
            (
                format!("sent {REFRESH} to the hub"),
                "sent <redacted> to the hub".to_owned(),
            ),
            (
                "password: hunter22 was wrong".to_owned(),
                "password: <redacted> was wrong".to_owned(),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(scrub(&text), expected, "{text}");
        }
        // Ids, digests, paths and prose pass unchanged, without a copy.
        for plain in [
            "connector con_0123456789abcdef0123 linked via WebSockets",
            "8f14e45fceea167a5a36dedd4bea2543f00dbeefcafe0123456789abcdef0123",
            "session 3b241101-e2bb-4255-8caf-4136c566a962 closed",
            "/home/owner/.local/share/dev.uplink.desktop/logs/uplink-desktop.log",
            "the token expired: signing in again",
        ] {
            assert!(matches!(scrub(plain), Cow::Borrowed(_)), "{plain}");
        }
    }
}
