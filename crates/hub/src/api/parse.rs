//! What the app asked, as the data model's [`Query`]: from a GET route's parameters or from a
//! `POST …/query` body. Every error names the field (or parameter) it is about.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uplink_link::QueryOperation;
use uplink_model::{
    AtTimesQuery, Boundary, EventsQuery, Function, PlotQuery, ProcessedQuery, Query, RawQuery,
    SnapshotQuery, TagSearch, TimeExpr, time_expr,
};

use super::error::ApiError;
use super::params::{self, Params};

/// The query-string parameters each GET route takes (besides `format`).
pub fn known_params(operation: QueryOperation) -> &'static [&'static str] {
    match operation {
        QueryOperation::Search => &["pattern", "offset", "limit"],
        QueryOperation::Snapshot => &["tags", "tag"],
        QueryOperation::Raw => &["tag", "start", "end", "maxCount", "boundary"],
        QueryOperation::Plot => &["tag", "start", "end", "intervals"],
        QueryOperation::AtTimes => &["tag", "time"],
        QueryOperation::Processed => &["tag", "start", "end", "interval", "functions"],
        QueryOperation::Events => &["start", "end", "limit", "cursor"],
    }
}

/// The fields a `POST …/query` body of each type may hold (besides `type`).
fn known_fields(operation: QueryOperation) -> &'static [&'static str] {
    match operation {
        QueryOperation::Snapshot => &["tags"],
        QueryOperation::AtTimes => &["tag", "times"],
        other => known_params(other),
    }
}

const TYPES: [QueryOperation; 7] = [
    QueryOperation::Search,
    QueryOperation::Snapshot,
    QueryOperation::Raw,
    QueryOperation::Plot,
    QueryOperation::AtTimes,
    QueryOperation::Processed,
    QueryOperation::Events,
];

/// The query a GET route's parameters describe.
pub fn from_params(operation: QueryOperation, params: &Params) -> Result<Query, ApiError> {
    Ok(match operation {
        QueryOperation::Search => Query::Search(TagSearch {
            pattern: params.one("pattern")?.unwrap_or("*").to_owned(),
            offset: params.number("offset")?.unwrap_or(0),
            limit: params.number("limit")?.unwrap_or(TagSearch::DEFAULT_LIMIT),
        }),
        QueryOperation::Snapshot => {
            let tags: Vec<String> = params
                .list("tags")
                .chain(params.all("tag").filter(|t| !t.is_empty()))
                .map(str::to_owned)
                .collect();
            if tags.is_empty() {
                return Err(ApiError::invalid(
                    "tags",
                    "required: tags=A,B or tag=A&tag=B",
                ));
            }
            Query::Snapshot(SnapshotQuery { tags })
        }
        QueryOperation::Raw => Query::Raw(RawQuery {
            tag: tag(params)?,
            start: start(params)?,
            end: end(params)?,
            max_count: params.number("maxCount")?,
            boundary: match params.one("boundary")? {
                None => Boundary::default(),
                Some(text) if text.eq_ignore_ascii_case("inside") => Boundary::Inside,
                Some(text) if text.eq_ignore_ascii_case("outside") => Boundary::Outside,
                Some(text) => {
                    return Err(ApiError::invalid(
                        "boundary",
                        format!("expected inside or outside, got '{text}'"),
                    ));
                }
            },
        }),
        QueryOperation::Plot => Query::Plot(PlotQuery {
            tag: tag(params)?,
            start: start(params)?,
            end: end(params)?,
            intervals: params
                .number("intervals")?
                .ok_or_else(|| ApiError::invalid("intervals", "required"))?,
        }),
        QueryOperation::AtTimes => {
            let times = params
                .all("time")
                .map(|text| params::time_expr("time", text))
                .collect::<Result<Vec<_>, _>>()?;
            if times.is_empty() {
                return Err(ApiError::invalid("time", "required: one time= per instant"));
            }
            Query::AtTimes(AtTimesQuery {
                tag: tag(params)?,
                times,
            })
        }
        QueryOperation::Processed => {
            let interval = params.required("interval")?;
            let interval = time_expr::parse_span(interval)
                .map_err(|e| ApiError::invalid("interval", e.to_string()))?;
            let functions = params
                .list("functions")
                .map(|name| {
                    name.parse::<Function>()
                        .map_err(|e| ApiError::invalid("functions", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if functions.is_empty() {
                return Err(ApiError::invalid(
                    "functions",
                    "required: for example functions=AVG,MAX",
                ));
            }
            Query::Processed(ProcessedQuery {
                tag: tag(params)?,
                start: start(params)?,
                end: end(params)?,
                interval,
                functions,
            })
        }
        QueryOperation::Events => Query::Events(EventsQuery {
            start: start(params)?,
            end: end(params)?,
            limit: params.number("limit")?,
            cursor: params.one("cursor")?.map(str::to_owned),
        }),
    })
}

/// An error about the query a GET route built, named as the route's parameters name it: the
/// `values-at` route takes `time=` (once per instant) where the query has `times`, so a time
/// that resolves out of range is `time: … (time= number 2)`, not `times[1]: …`.
pub fn in_param_terms(operation: QueryOperation, error: ApiError) -> ApiError {
    match error {
        ApiError::Invalid { field, message } if operation == QueryOperation::AtTimes => {
            match field.strip_prefix("times") {
                Some("") => ApiError::invalid("time", message),
                Some(index) => {
                    let number = index
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<usize>()
                        .map_or_else(|_| index.to_owned(), |i| (i + 1).to_string());
                    ApiError::invalid("time", format!("{message} (time= number {number})"))
                }
                None => ApiError::Invalid { field, message },
            }
        }
        other => other,
    }
}

fn tag(params: &Params) -> Result<String, ApiError> {
    let tag = params.required("tag")?;
    if tag.is_empty() {
        return Err(ApiError::invalid("tag", "must not be empty"));
    }
    Ok(tag.to_owned())
}

fn start(params: &Params) -> Result<TimeExpr, ApiError> {
    params
        .time("start")?
        .ok_or_else(|| ApiError::invalid("start", "required, e.g. start=*-1h"))
}

/// The end of a range defaults to now.
fn end(params: &Params) -> Result<TimeExpr, ApiError> {
    Ok(params.time("end")?.unwrap_or(TimeExpr::NOW))
}

/// A JSON object whose members are each named once. `serde_json` keeps the last of
/// repeated members; a body naming `type` twice must not be checked as one query and run as
/// another, so a repeated name is refused instead.
struct UniqueMembers(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with a \"type\"")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut members: A,
            ) -> Result<UniqueMembers, A::Error> {
                let mut object = Map::new();
                while let Some((name, value)) = members.next_entry::<String, Value>()? {
                    if object.contains_key(&name) {
                        return Err(serde::de::Error::custom(format_args!(
                            "member \"{name}\" is given more than once"
                        )));
                    }
                    object.insert(name, value);
                }
                Ok(UniqueMembers(object))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The query in a `POST …/query` body. The route checks the scope of exactly this query.
pub fn from_body(body: &[u8]) -> Result<Query, ApiError> {
    let UniqueMembers(mut object) =
        serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data if e.to_string().starts_with("member ") => {
                ApiError::invalid("body", e.to_string())
            }
            serde_json::error::Category::Data => {
                ApiError::invalid("body", "expected a JSON object with a \"type\"")
            }
            _ => ApiError::invalid("body", format!("not valid JSON: {e}")),
        })?;
    let expected = || {
        TYPES
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let operation =
        match object.remove("type") {
            None => {
                return Err(ApiError::invalid(
                    "type",
                    format!("required: one of {}", expected()),
                ));
            }
            Some(Value::String(name)) => TYPES
                .into_iter()
                .find(|t| t.as_str() == name)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "type",
                        format!("unknown query type '{name}' (expected {})", expected()),
                    )
                })?,
            Some(_) => {
                return Err(ApiError::invalid(
                    "type",
                    format!("expected a string: one of {}", expected()),
                ));
            }
        };
    let known = known_fields(operation);
    if let Some(field) = object.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            field.clone(),
            format!(
                "unknown field for a {operation} query (expected {})",
                known.join(", ")
            ),
        ));
    }
    Ok(match operation {
        QueryOperation::Search => Query::Search(fields(object)?),
        QueryOperation::Snapshot => Query::Snapshot(fields(object)?),
        QueryOperation::Raw => Query::Raw(fields(object)?),
        QueryOperation::Plot => Query::Plot(fields(object)?),
        QueryOperation::AtTimes => Query::AtTimes(fields(object)?),
        QueryOperation::Processed => Query::Processed(fields(object)?),
        QueryOperation::Events => Query::Events(fields(object)?),
    })
}

/// Reads one query type's fields, naming the one that failed (`start`, `times[2]`).
fn fields<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // A missing field is reported at the root by serde; name it instead.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            return ApiError::invalid(name, "required");
        }
        ApiError::invalid(if path == "." { "body".into() } else { path }, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(operation: QueryOperation, query: &str) -> Result<Query, ApiError> {
        let params = Params::parse(Some(query), known_params(operation))?;
        from_params(operation, &params)
    }

    fn error(result: Result<Query, ApiError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn get_routes_build_the_model_queries() {
        let Query::Raw(raw) = get(
            QueryOperation::Raw,
            "tag=FIC101.PV&start=*-8h&maxCount=10&boundary=outside",
        )
        .unwrap() else {
            panic!("raw expected")
        };
        assert_eq!(raw.tag, "FIC101.PV");
        assert_eq!(raw.start.to_string(), "*-8h");
        assert_eq!(raw.end, TimeExpr::NOW);
        assert_eq!((raw.max_count, raw.boundary), (Some(10), Boundary::Outside));

        let Query::Snapshot(snapshot) = get(QueryOperation::Snapshot, "tags=A,B&tag=C,D").unwrap()
        else {
            panic!("snapshot expected")
        };
        assert_eq!(snapshot.tags, ["A", "B", "C,D"]);

        let Query::Processed(processed) = get(
            QueryOperation::Processed,
            "tag=T&start=*-1d&interval=1h&functions=avg,MAX",
        )
        .unwrap() else {
            panic!("processed expected")
        };
        assert_eq!(processed.functions, [Function::Avg, Function::Max]);

        let Query::Search(search) = get(QueryOperation::Search, "").unwrap() else {
            panic!("search expected")
        };
        assert_eq!((search.pattern.as_str(), search.limit), ("*", 100));
    }

    #[test]
    fn get_errors_name_the_parameter() {
        assert_eq!(
            error(get(QueryOperation::Raw, "start=*-1h")),
            "tag: required"
        );
        assert!(error(get(QueryOperation::Raw, "tag=T&start=yesterday")).starts_with("start: "));
        assert!(
            error(get(QueryOperation::Plot, "tag=T&start=*-1h&intervals=-3"))
                .starts_with("intervals: expected a whole number")
        );
        let message = error(get(
            QueryOperation::Processed,
            "tag=T&start=*-1d&interval=1h&functions=AVG,MEDIAN",
        ));
        assert!(
            message.starts_with("functions: unknown function 'MEDIAN'"),
            "{message}"
        );
        assert_eq!(
            error(get(QueryOperation::Raw, "tag=T&start=*-1h&boundary=edge")),
            "boundary: expected inside or outside, got 'edge'"
        );
        assert!(error(get(QueryOperation::AtTimes, "tag=T")).starts_with("time: required"));
    }

    #[test]
    fn bodies_of_every_type_parse() {
        for body in [
            r#"{"type":"search","pattern":"FIC*"}"#,
            r#"{"type":"snapshot","tags":["A"]}"#,
            r#"{"type":"raw","tag":"T","start":"*-1h","end":"*"}"#,
            r#"{"type":"plot","tag":"T","start":"*-1h","end":"*","intervals":10}"#,
            r#"{"type":"atTimes","tag":"T","times":["*-1h","2024-05-01T00:00:00Z"]}"#,
            r#"{"type":"processed","tag":"T","start":"*-1d","end":"*","interval":"1h","functions":["AVG"]}"#,
        ] {
            let query = from_body(body.as_bytes()).unwrap();
            let named: Value = serde_json::from_str(body).unwrap();
            assert_eq!(uplink_link::operation_of(&query).as_str(), named["type"]);
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        let cases = [
            ("{", "body: not valid JSON"),
            ("[1]", "body: expected a JSON object"),
            (r#"{"tag":"T"}"#, "type: required"),
            (r#"{"type":"median"}"#, "type: unknown query type 'median'"),
            (
                r#"{"type":"raw","type":"search","tag":"T","start":"*-1h"}"#,
                "body: member \"type\" is given more than once",
            ),
            (
                r#"{"type":"raw","tag":"T","start":"*-1h","end":"*","maxcount":5}"#,
                "maxcount: unknown field for a raw query",
            ),
            (r#"{"type":"raw","tag":"T","end":"*"}"#, "start: required"),
            (
                r#"{"type":"raw","tag":"T","start":"*-8x","end":"*"}"#,
                "start: time expression '*-8x'",
            ),
            (
                r#"{"type":"atTimes","tag":"T","times":["*","soon"]}"#,
                "times[1]: time expression 'soon'",
            ),
            (
                r#"{"type":"plot","tag":"T","start":"*-1h","end":"*","intervals":"many"}"#,
                "intervals: invalid type",
            ),
            (
                r#"{"type":"processed","tag":"T","start":"*-1d","end":"*","interval":"1h","functions":["AVG","SUM"]}"#,
                "functions[1]: unknown function 'SUM'",
            ),
        ];
        for (body, expected) in cases {
            let message = from_body(body.as_bytes()).unwrap_err().to_string();
            assert!(message.starts_with(expected), "{body} → {message}");
        }
    }
}
