//! Fields of a submitted HTML form, where some names (checkboxes) may repeat.

/// The fields of an `application/x-www-form-urlencoded` body, in order.
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses a form body.
    pub fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The value of a single-valued field; None if absent or given more than once.
    pub fn one<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut values = self.all(name);
        let first = values.next()?;
        values.next().is_none().then_some(first)
    }

    /// Every value of a repeated field (ticked checkboxes).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_fields_must_be_single() {
        let f = Fields::parse(b"a=1&s=x&s=y&b=2&b=3");
        assert_eq!(f.one("a"), Some("1"));
        assert_eq!(f.one("b"), None);
        assert_eq!(f.all("s").collect::<Vec<_>>(), vec!["x", "y"]);
    }
}
