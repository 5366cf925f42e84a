//! What can be wrong with a query, named so a person can fix it.

use crate::time_expr::TimeExprError;

/// A query or value the model refuses, with a stable [`code`](ModelError::code) for APIs and a
/// message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A time expression or duration could not be read.
    #[error(transparent)]
    TimeExpr(#[from] TimeExprError),
    /// A relative time moved outside the representable range.
    #[error("time expression '{expression}' resolves to a time out of range")]
    TimeOutOfRange {
        /// The expression, as written.
        expression: String,
    },
    /// The start of a time range is after its end.
    #[error("the start time {start} is after the end time {end}")]
    StartAfterEnd {
        /// The resolved start (RFC 3339).
        start: String,
        /// The resolved end (RFC 3339).
        end: String,
    },
    /// A plot or processed query needs a range of some length.
    #[error(
        "the time range is empty (start and end are both {at}); {what} needs a start before the end"
    )]
    EmptyRange {
        /// The instant both ends resolved to.
        at: String,
        /// The kind of query.
        what: &'static str,
    },
    /// An interval length that is zero or negative.
    #[error("the interval must be longer than zero, got {interval}")]
    NonPositiveInterval {
        /// The interval as written.
        interval: String,
    },
    /// A count outside the range that makes sense (zero intervals, a billion values…).
    #[error("{what} must be between {min} and {max}, got {value}")]
    CountOutOfRange {
        /// What is being counted, in words.
        what: &'static str,
        /// The count given.
        value: u64,
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A processed function the model does not know.
    #[error("unknown function '{name}' (known: {known})")]
    UnknownFunction {
        /// The name given.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// An events cursor that the data source did not hand out.
    #[error("cursor: '{cursor}' is not a cursor this data source handed out; send a page's 'next'")]
    BadCursor {
        /// The cursor given.
        cursor: String,
    },
    /// A required list is empty (no tags, no functions, no times).
    #[error("{what} must not be empty")]
    Empty {
        /// What is missing, in words.
        what: &'static str,
    },
    /// A tag search pattern that cannot be used.
    #[error("tag name pattern {reason}")]
    BadPattern {
        /// Why, in words.
        reason: String,
    },
}

impl ModelError {
    /// A stable snake_case code for APIs (`{code, message}` bodies); part of the wire contract.
    ///
    /// ```
    /// use uplink_model::ModelError;
    ///
    /// let err = ModelError::Empty { what: "the list of tags" };
    /// assert_eq!(err.code(), "empty");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::TimeExpr(_) => "bad_time_expression",
            ModelError::TimeOutOfRange { .. } => "time_out_of_range",
            ModelError::StartAfterEnd { .. } => "start_after_end",
            ModelError::EmptyRange { .. } => "empty_time_range",
            ModelError::NonPositiveInterval { .. } => "non_positive_interval",
            ModelError::CountOutOfRange { .. } => "count_out_of_range",
            ModelError::UnknownFunction { .. } => "unknown_function",
            ModelError::Empty { .. } => "empty",
            ModelError::BadCursor { .. } => "bad_cursor",
            ModelError::BadPattern { .. } => "bad_pattern",
        }
    }
}
