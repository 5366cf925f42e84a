//! Tag name patterns with `*` (any run of characters) and `?` (one character), case-insensitive
//! as historian tag searches are.

use crate::ModelError;

/// The longest pattern accepted; longer is a mistake, not a search.
pub const MAX_PATTERN_LEN: usize = 256;

/// A compiled tag name pattern.
///
/// ```
/// use uplink_model::NamePattern;
///
/// let pattern = NamePattern::new("fic1??.*").unwrap();
/// assert!(pattern.matches("FIC101.PV"));
/// assert!(!pattern.matches("FIC1.PV"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    chars: Vec<char>,
}

impl NamePattern {
    /// Compiles a pattern.
    ///
    /// # Errors
    /// [`ModelError::BadPattern`] for an empty or overlong pattern.
    pub fn new(pattern: &str) -> Result<Self, ModelError> {
        if pattern.is_empty() {
            return Err(ModelError::BadPattern {
                reason: "is empty (use * to list every tag)".into(),
            });
        }
        let len = pattern.chars().count();
        if len > MAX_PATTERN_LEN {
            return Err(ModelError::BadPattern {
                reason: format!("is {len} characters long; at most {MAX_PATTERN_LEN} are accepted"),
            });
        }
        Ok(Self {
            chars: fold(pattern).collect(),
        })
    }

    /// True when the whole of `name` matches (case-insensitive).
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = fold(name).collect();
        let pattern = &self.chars;
        // Greedy match that remembers the last `*` and retries from there: linear for
        // patterns with one star, never exponential.
        let (mut p, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match pattern.get(p) {
                Some('*') => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(&c) if c == '?' || c == name[n] => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((star_p, star_n)) => {
                        p = star_p + 1;
                        n = star_n + 1;
                        star = Some((star_p, star_n + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }

    /// True when the pattern has no wildcard and so names one tag.
    pub fn is_literal(&self) -> bool {
        !self.chars.iter().any(|&c| c == '*' || c == '?')
    }
}

fn fold(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().flat_map(char::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_historians_do() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("FIC*", "fic101.pv", true),
            ("*.PV", "FIC101.PV", true),
            ("*.PV", "FIC101.SP", false),
            ("F?C*", "FIC101", true),
            ("F?C*", "FC101", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("???", "abc", true),
            ("???", "ab", false),
            ("exact", "EXACT", true),
            ("exact", "exactly", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                NamePattern::new(pattern).unwrap().matches(name),
                expected,
                "{pattern} vs {name}"
            );
        }
    }

    #[test]
    fn empty_and_overlong_patterns_are_refused() {
        let err = NamePattern::new("").unwrap_err();
        assert_eq!(err.code(), "bad_pattern");
        assert!(err.to_string().contains("is empty"), "{err}");
        let err = NamePattern::new(&"a".repeat(MAX_PATTERN_LEN + 1)).unwrap_err();
        assert!(err.to_string().contains("257 characters"), "{err}");
    }

    #[test]
    fn many_stars_stay_fast_on_long_names() {
        let pattern = NamePattern::new("*a*a*a*a*a*a*b").unwrap();
        assert!(!pattern.matches(&"a".repeat(5_000)));
    }
}
