//! The query string of a data API request, read strictly: a parameter the route does not know,
//! or one given twice where one is expected, is an error naming it — a typo such as `strat=`
//! must not silently read the default.
//!
//! (axum's `Query` extractor cannot take a repeated key into a list, which `tag=` and `time=`
//! need.)

use std::str::FromStr;

use uplink_model::TimeExpr;

use super::error::ApiError;

/// Present on every route: `json` or `ndjson`.
pub const FORMAT: &str = "format";

/// The decoded `name=value` pairs of a query string, in order.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `query` (without the `?`), refusing names outside `known` and [`FORMAT`].
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if let Some((name, _)) = pairs
            .iter()
            .find(|(name, _)| name != FORMAT && !known.contains(&name.as_str()))
        {
            let expected = if known.is_empty() {
                "this route takes only 'format'".to_owned()
            } else {
                format!("expected {}", known.join(", "))
            };
            return Err(ApiError::invalid(
                name.clone(),
                format!("unknown parameter ({expected})"),
            ));
        }
        Ok(Self { pairs })
    }

    /// Every value given for `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, if given once; an error if given more than once.
    pub fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid(name, "given more than once"));
        }
        Ok(first)
    }

    /// The value of `name`, which must be given once.
    pub fn required<'a>(&'a self, name: &'a str) -> Result<&'a str, ApiError> {
        self.one(name)?
            .ok_or_else(|| ApiError::invalid(name, "required"))
    }

    /// Every comma-separated item of every `name=` value, trimmed, empty items dropped.
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(name)
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
    }

    /// `name` as a number, if given.
    pub fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.one(name)?
            .map(|text| {
                text.trim().parse::<T>().map_err(|_| {
                    ApiError::invalid(name, format!("expected a whole number, got '{text}'"))
                })
            })
            .transpose()
    }

    /// `name` as a time expression, if given.
    pub fn time(&self, name: &str) -> Result<Option<TimeExpr>, ApiError> {
        self.one(name)?
            .map(|text| time_expr(name, text))
            .transpose()
    }
}

/// `text` as a time expression, an error naming `field` otherwise.
pub fn time_expr(field: &str, text: &str) -> Result<TimeExpr, ApiError> {
    uplink_model::time_expr::parse(text).map_err(|e| ApiError::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(err: ApiError) -> String {
        err.to_string()
    }

    #[test]
    fn unknown_parameters_are_named() {
        let err = Params::parse(Some("tag=T1&strat=*-1h"), &["tag", "start", "end"]).unwrap_err();
        assert_eq!(
            message(err),
            "strat: unknown parameter (expected tag, start, end)"
        );
        assert!(Params::parse(Some("format=ndjson&tag=T1"), &["tag"]).is_ok());
    }

    #[test]
    fn repeated_and_missing_values_are_errors() {
        let params = Params::parse(Some("start=*-1h&start=*-2h"), &["start", "tag"]).unwrap();
        assert_eq!(
            message(params.one("start").unwrap_err()),
            "start: given more than once"
        );
        assert_eq!(
            message(params.required("tag").unwrap_err()),
            "tag: required"
        );
    }

    #[test]
    fn lists_join_commas_and_repeats() {
        let params =
            Params::parse(Some("tags=a,%20b,&tag=c%2Cd&tags=e"), &["tags", "tag"]).unwrap();
        assert_eq!(params.list("tags").collect::<Vec<_>>(), ["a", "b", "e"]);
        assert_eq!(params.all("tag").collect::<Vec<_>>(), ["c,d"]);
    }

    #[test]
    fn numbers_and_times_name_the_field() {
        let params = Params::parse(
            Some("limit=ten&start=*-8x&end=*-1h"),
            &["limit", "start", "end"],
        )
        .unwrap();
        assert_eq!(
            message(params.number::<u32>("limit").unwrap_err()),
            "limit: expected a whole number, got 'ten'"
        );
        let err = message(params.time("start").unwrap_err());
        assert!(err.starts_with("start: time expression '*-8x'"), "{err}");
        assert!(params.time("end").unwrap().unwrap().is_relative());
        assert_eq!(params.time("missing").unwrap(), None);
    }
}
