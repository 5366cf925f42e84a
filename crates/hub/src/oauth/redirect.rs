//! Redirect URIs: what may be registered, and exact matching of what is requested. The one
//! relaxation is RFC 8252 §7.3: for a loopback IP literal with `http`, the port may differ
//! (native apps listen on an ephemeral port). `localhost` gets no such relaxation, and nothing
//! is normalised: case, trailing slashes, dot segments, user info and query must match as
//! registered, byte for byte.

use crate::error::{HubError, Result};

/// Checks a redirect URI an administrator wants to register.
pub fn validate_registration(uri: &str) -> Result<()> {
    let parsed = url::Url::parse(uri)
        .map_err(|e| HubError::Invalid(format!("redirect URI '{uri}' is not a URL: {e}")))?;
    if parsed.fragment().is_some() {
        return Err(HubError::Invalid(format!(
            "redirect URI '{uri}' must not have a fragment"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(HubError::Invalid(format!(
            "redirect URI '{uri}' must not carry user information"
        )));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback_parts(uri).is_some() => Ok(()),
        "http" => Err(HubError::Invalid(format!(
            "redirect URI '{uri}' uses http: only loopback IP literals (127.0.0.1, [::1]) may, everything else needs https"
        ))),
        // RFC 8252 §7.1: private-use schemes in reverse domain order, e.g. com.example.app:/cb
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(HubError::Invalid(format!(
            "redirect URI '{uri}' has scheme '{scheme}': use https, http on a loopback IP, or a reverse-domain private scheme"
        ))),
    }
}

/// Splits `http://127.0.0.1[:port]rest` (or `[::1]`) into (host, port, rest), where rest is
/// the path and query. None for anything else.
fn loopback_parts(uri: &str) -> Option<(&str, Option<&str>, &str)> {
    let after = uri.strip_prefix("http://")?;
    let host = ["127.0.0.1", "[::1]"]
        .into_iter()
        .find(|h| after.starts_with(h))?;
    let after_host = &after[host.len()..];
    let (port, rest) = match after_host.strip_prefix(':') {
        Some(p) => {
            let end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            if end == 0 {
                return None;
            }
            (Some(&p[..end]), &p[end..])
        }
        None => (None, after_host),
    };
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        // e.g. http://127.0.0.1.evil.com/ — not a loopback address at all.
        return None;
    }
    Some((host, port, rest))
}

/// Whether `requested` matches one of `registered` exactly (a loopback port may vary).
pub fn matches(registered: &[String], requested: &str) -> bool {
    if requested.contains('#') {
        return false;
    }
    registered.iter().any(|r| {
        if r == requested {
            return true;
        }
        match (loopback_parts(r), loopback_parts(requested)) {
            (Some((rh, _, rrest)), Some((qh, _, qrest))) => rh == qh && rrest == qrest,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_exact_matches_pass() {
        let r = reg(&["https://app.example/cb"]);
        assert!(matches(&r, "https://app.example/cb"));
        for bad in [
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example/CB",
            "https://app.example/cb/",
            "https://app.example/cb/../cb",
            "https://app.example/x/../cb",
            "https://good@evil.example/cb",
            "https://app.example@evil.example/cb",
            "https://app.example/cb#frag",
            "https://app.example:443/cb",
            "http://app.example/cb",
            "https://app.example.evil.com/cb",
        ] {
            assert!(!matches(&r, bad), "{bad} must not match");
        }
    }

    #[test]
    fn loopback_port_may_vary_nothing_else() {
        let r = reg(&["http://127.0.0.1/callback"]);
        assert!(matches(&r, "http://127.0.0.1:51234/callback"));
        assert!(matches(&r, "http://127.0.0.1/callback"));
        for bad in [
            "http://localhost:51234/callback",
            "http://[::1]:51234/callback",
            "http://127.0.0.1.evil.com/callback",
            "http://127.0.0.1:51234/callback/",
            "http://127.0.0.1:51234/Callback",
            "http://127.0.0.1:51234/callback?x=1",
            "https://127.0.0.1:51234/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:51234@evil.com/callback",
        ] {
            assert!(!matches(&r, bad), "{bad} must not match");
        }
        // localhost registrations are exact.
        let r = reg(&["http://localhost:8080/cb"]);
        assert!(!matches(&r, "http://localhost:9090/cb"));
    }

    #[test]
    fn registration_refuses_unsafe_uris_with_reasons() {
        assert!(validate_registration("https://app.example/cb").is_ok());
        assert!(validate_registration("http://127.0.0.1/cb").is_ok());
        assert!(validate_registration("com.example.app:/cb").is_ok());
        let e = validate_registration("http://app.example/cb").unwrap_err();
        assert!(e.to_string().contains("https"));
        assert!(validate_registration("https://app.example/cb#x").is_err());
        assert!(validate_registration("https://u:p@app.example/cb").is_err());
        assert!(validate_registration("javascript:alert(1)").is_err());
        assert!(validate_registration("not a url").is_err());
    }
}
