//! Strict parsing of OAuth2 parameters: form or query encoding, each parameter at most once
//! (RFC 6749 §3.1, §3.2), empty values treated as absent.

use std::collections::BTreeMap;

/// Parsed parameters, each name once.
#[derive(Debug, Default, Clone)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text. A repeated parameter name is an error
    /// naming it: a request that says two things cannot be trusted to mean either.
    pub fn parse(input: &[u8]) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(input) {
            if map.insert(name.to_string(), value.to_string()).is_some() {
                return Err(format!("parameter '{name}' is given more than once"));
            }
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Self(map))
    }

    /// A parameter's value, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("parameter '{name}' is missing"))
    }
}

/// Splits a `scope` parameter; repeated scopes are an error.
pub fn parse_scope(scope: &str) -> Result<Vec<String>, String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if scopes.iter().any(|x| x == s) {
            return Err(format!("scope '{s}' is listed twice"));
        }
        scopes.push(s.to_owned());
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_by_name() {
        let err = Params::parse(b"a=1&b=2&a=3").unwrap_err();
        assert!(err.contains("'a'"));
        let err = Params::parse(b"a=1&a=").unwrap_err();
        assert!(err.contains("'a'"));
    }

    #[test]
    fn empty_values_count_as_absent_and_encoding_is_decoded() {
        let p = Params::parse(b"a=&b=x%20y+z").unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y z"));
        assert!(p.require("a").unwrap_err().contains("missing"));
    }

    #[test]
    fn scopes_split_on_spaces_without_repeats() {
        assert_eq!(parse_scope("a b").unwrap(), vec!["a", "b"]);
        assert!(parse_scope("a a").is_err());
    }
}
