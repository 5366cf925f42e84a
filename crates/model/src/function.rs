//! The processed functions industrial historians offer, each with a descriptor a data source can
//! publish to say which it supports.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// One summary of the samples in an interval.
///
/// On the wire a function is its upper-case name (`"TIMEAVERAGE"`); names are read in any case.
///
/// ```
/// use uplink_model::Function;
///
/// let f: Function = "timeaverage".parse().unwrap();
/// assert_eq!(f, Function::TimeAverage);
/// assert!(f.descriptor().time_weighted);
/// assert_eq!("MEDIAN".parse::<Function>().unwrap_err().code(), "unknown_function");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// Linearly interpolated value at the interval's start.
    Interp,
    /// Value in effect at the interval's start (last value at or before it, held).
    StepInterpolate,
    /// Arithmetic mean of the usable values in the interval.
    Avg,
    /// Time-weighted mean of the linearly interpolated signal over the interval.
    TimeAverage,
    /// Smallest usable value.
    Min,
    /// Largest usable value.
    Max,
    /// Number of samples, whatever their status.
    Count,
    /// Largest minus smallest usable value.
    Range,
    /// Last minus first usable value.
    Delta,
    /// Share of samples with good status, in percent.
    PercentGood,
    /// Share of samples with bad status, in percent.
    PercentBad,
    /// Sample standard deviation of the usable values.
    StdDev,
    /// Sample variance of the usable values.
    Variance,
}

/// What a function is, for people and for capability lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "WireFunctionDescriptor")]
pub struct FunctionDescriptor {
    /// The function (its wire name).
    pub name: Function,
    /// One sentence saying what it computes. Read from the wire, the function's own sentence
    /// (what almost every source sends) is shared rather than copied: a hub keeps every linked
    /// source's list, thirteen sentences each.
    pub description: Cow<'static, str>,
    /// True when samples count by how long they lasted rather than once each.
    pub time_weighted: bool,
}

/// [`FunctionDescriptor`] as read, before its description is shared.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFunctionDescriptor {
    name: Function,
    description: String,
    time_weighted: bool,
}

impl From<WireFunctionDescriptor> for FunctionDescriptor {
    fn from(wire: WireFunctionDescriptor) -> Self {
        let own = wire.name.description();
        Self {
            name: wire.name,
            description: if wire.description == own {
                Cow::Borrowed(own)
            } else {
                Cow::Owned(wire.description)
            },
            time_weighted: wire.time_weighted,
        }
    }
}

impl Function {
    /// Every function, in the order historians usually list them.
    pub const ALL: [Function; 13] = [
        Function::Interp,
        Function::StepInterpolate,
        Function::Avg,
        Function::TimeAverage,
        Function::Min,
        Function::Max,
        Function::Count,
        Function::Range,
        Function::Delta,
        Function::PercentGood,
        Function::PercentBad,
        Function::StdDev,
        Function::Variance,
    ];

    /// The upper-case wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Function::Interp => "INTERP",
            Function::StepInterpolate => "STEPINTERPOLATE",
            Function::Avg => "AVG",
            Function::TimeAverage => "TIMEAVERAGE",
            Function::Min => "MIN",
            Function::Max => "MAX",
            Function::Count => "COUNT",
            Function::Range => "RANGE",
            Function::Delta => "DELTA",
            Function::PercentGood => "PERCENTGOOD",
            Function::PercentBad => "PERCENTBAD",
            Function::StdDev => "STDDEV",
            Function::Variance => "VARIANCE",
        }
    }

    /// True for functions that weigh samples by duration (TIMEAVERAGE, INTERP, STEPINTERPOLATE).
    pub const fn is_time_weighted(self) -> bool {
        matches!(
            self,
            Function::TimeAverage | Function::Interp | Function::StepInterpolate
        )
    }

    /// One sentence on what the function computes.
    pub const fn description(self) -> &'static str {
        match self {
            Function::Interp => {
                "The value at the start of each interval, linearly interpolated between the samples around it."
            }
            Function::StepInterpolate => {
                "The value in effect at the start of each interval: the last sample at or before it, held."
            }
            Function::Avg => "The arithmetic mean of the usable samples in each interval.",
            Function::TimeAverage => {
                "The time-weighted mean of the linearly interpolated signal over each interval."
            }
            Function::Min => "The smallest usable value in each interval.",
            Function::Max => "The largest usable value in each interval.",
            Function::Count => "The number of samples in each interval, whatever their status.",
            Function::Range => "The largest minus the smallest usable value in each interval.",
            Function::Delta => "The last minus the first usable value in each interval.",
            Function::PercentGood => {
                "The share of samples in each interval with good status, in percent."
            }
            Function::PercentBad => {
                "The share of samples in each interval with bad status, in percent."
            }
            Function::StdDev => {
                "The sample standard deviation of the usable values in each interval."
            }
            Function::Variance => "The sample variance of the usable values in each interval.",
        }
    }

    /// The descriptor a data source publishes for this function.
    pub fn descriptor(self) -> FunctionDescriptor {
        FunctionDescriptor {
            name: self,
            description: Cow::Borrowed(self.description()),
            time_weighted: self.is_time_weighted(),
        }
    }

    /// Descriptors of every function: what a source that relies on the model's aggregation offers.
    pub fn all_descriptors() -> Vec<FunctionDescriptor> {
        Function::ALL
            .into_iter()
            .map(Function::descriptor)
            .collect()
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Function {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Function::ALL
            .into_iter()
            .find(|function| function.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ModelError::UnknownFunction {
                name: s.to_owned(),
                known: Function::ALL.map(Function::name).join(", "),
            })
    }
}

impl Serialize for Function {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Function {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_read_shares_its_functions_own_sentence_and_keeps_another() {
        let own = Function::Avg.descriptor();
        let json = serde_json::to_string(&own).unwrap();
        let read: FunctionDescriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(read, own);
        assert!(matches!(read.description, Cow::Borrowed(_)));
        assert_eq!(serde_json::to_string(&read).unwrap(), json);

        let other: FunctionDescriptor = serde_json::from_str(
            r#"{"name":"AVG","description":"the mean, our way","timeWeighted":false}"#,
        )
        .unwrap();
        assert_eq!(other.description, "the mean, our way");
        assert!(matches!(other.description, Cow::Owned(_)));
    }

    #[test]
    fn every_name_reads_back_in_any_case() {
        for function in Function::ALL {
            assert_eq!(function.name().parse::<Function>().unwrap(), function);
            assert_eq!(
                function.name().to_lowercase().parse::<Function>().unwrap(),
                function
            );
        }
    }

    #[test]
    fn unknown_function_names_the_known_ones() {
        let err = "MEDIAN".parse::<Function>().unwrap_err();
        assert_eq!(err.code(), "unknown_function");
        let message = err.to_string();
        assert!(
            message.contains("'MEDIAN'") && message.contains("TIMEAVERAGE"),
            "{message}"
        );
        let err = serde_json::from_str::<Function>("\"SUM\"").unwrap_err();
        assert!(err.to_string().contains("unknown function 'SUM'"), "{err}");
    }

    #[test]
    fn exactly_three_functions_are_time_weighted() {
        let weighted: Vec<_> = Function::ALL
            .into_iter()
            .filter(|f| f.is_time_weighted())
            .collect();
        assert_eq!(
            weighted,
            [
                Function::Interp,
                Function::StepInterpolate,
                Function::TimeAverage
            ]
        );
    }

    #[test]
    fn descriptor_wire_shape_is_stable() {
        let json = serde_json::to_value(Function::Avg.descriptor()).unwrap();
        assert_eq!(json["name"], "AVG");
        assert_eq!(json["timeWeighted"], false);
        assert!(json["description"].as_str().unwrap().contains("mean"));
    }
}
