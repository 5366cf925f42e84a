//! The processed functions: one value per interval, computed from raw samples.

use super::Intervals;
use super::interpolate::{interpolate_at, line, step_at};
use crate::{Function, Sample, Status};

/// `function` over each interval of sorted `samples`, one sample per interval stamped with the
/// interval's start. An interval with nothing to summarise gets a bad sample (NaN value), except
/// COUNT, which is 0.
///
/// Event-weighted functions (AVG, MIN, MAX, RANGE, DELTA, STDDEV, VARIANCE) use the usable
/// samples inside `[start, end)`; their status is good when every sample there is good, uncertain
/// otherwise. COUNT, PERCENTGOOD and PERCENTBAD count every sample there. The time-weighted ones
/// (INTERP, STEPINTERPOLATE, TIMEAVERAGE) also look at the samples around the interval, so read
/// raw data with [`crate::Boundary::Outside`] for them.
///
/// ```
/// use uplink_model::aggregate::{processed, Intervals};
/// use uplink_model::{Function, Sample};
///
/// // 0 for 9 s, then 10 for 1 s: the plain mean is 5, the time-weighted one is not.
/// let samples = [Sample::good(0, 0.0), Sample::good(9, 0.0), Sample::good(10, 10.0)];
/// let whole = Intervals::split(0, 10, 1);
/// assert_eq!(processed(&samples[..2], &whole, Function::Avg)[0].value, 0.0);
/// assert_eq!(processed(&samples, &whole, Function::TimeAverage)[0].value, 0.5);
/// ```
pub fn processed(samples: &[Sample], intervals: &Intervals, function: Function) -> Vec<Sample> {
    let mut out = Vec::with_capacity(intervals.count());
    let mut lo = intervals.iter().next().map_or(0, |(start, _)| {
        samples.partition_point(|s| s.time_us < start)
    });
    for (start, end) in intervals.iter() {
        let hi = lo + samples[lo..].partition_point(|s| s.time_us < end);
        let inside = &samples[lo..hi];
        out.push(match function {
            Function::Interp => Sample {
                time_us: start,
                ..interpolate_at(samples, start)
            },
            Function::StepInterpolate => step_at(samples, start),
            Function::TimeAverage => time_average(samples, lo, start, end),
            Function::Count => Sample::good(start, inside.len() as f64),
            Function::PercentGood => share(inside, start, Status::Good),
            Function::PercentBad => share(inside, start, Status::Bad),
            Function::StdDev | Function::Variance => spread(inside, start, function),
            _ => from_summary(&Summary::of(inside), start, function),
        });
        lo = hi;
    }
    out
}

/// What one pass over an interval's samples learns.
#[derive(Debug)]
struct Summary {
    usable: usize,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
    all_good: bool,
}

impl Summary {
    fn of(inside: &[Sample]) -> Self {
        let mut summary = Summary {
            usable: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first: f64::NAN,
            last: f64::NAN,
            all_good: true,
        };
        for sample in inside {
            summary.all_good &= sample.status == Status::Good;
            if !sample.is_usable() {
                continue;
            }
            if summary.usable == 0 {
                summary.first = sample.value;
            }
            summary.usable += 1;
            summary.sum += sample.value;
            summary.min = summary.min.min(sample.value);
            summary.max = summary.max.max(sample.value);
            summary.last = sample.value;
        }
        summary
    }

    fn status(&self) -> Status {
        if self.all_good {
            Status::Good
        } else {
            Status::Uncertain
        }
    }

    /// The mean, kept within [min, max] where rounding would push it out.
    fn mean(&self) -> f64 {
        (self.sum / self.usable as f64).clamp(self.min, self.max)
    }
}

fn from_summary(summary: &Summary, start: i64, function: Function) -> Sample {
    if summary.usable == 0 {
        return Sample::bad(start);
    }
    let value = match function {
        Function::Avg => summary.mean(),
        Function::Min => summary.min,
        Function::Max => summary.max,
        Function::Range => summary.max - summary.min,
        Function::Delta => summary.last - summary.first,
        other => unreachable!("{other} is not computed from a summary"),
    };
    Sample {
        time_us: start,
        value,
        status: summary.status(),
        source_code: 0,
    }
}

/// Sample variance (n − 1) or its square root, two passes for accuracy.
fn spread(inside: &[Sample], start: i64, function: Function) -> Sample {
    let summary = Summary::of(inside);
    if summary.usable < 2 {
        return Sample::bad(start);
    }
    let mean = summary.sum / summary.usable as f64;
    let squares: f64 = inside
        .iter()
        .filter(|s| s.is_usable())
        .map(|s| (s.value - mean).powi(2))
        .sum();
    let variance = squares / (summary.usable - 1) as f64;
    Sample {
        time_us: start,
        value: if function == Function::StdDev {
            variance.sqrt()
        } else {
            variance
        },
        status: summary.status(),
        source_code: 0,
    }
}

fn share(inside: &[Sample], start: i64, status: Status) -> Sample {
    if inside.is_empty() {
        return Sample::bad(start);
    }
    let matching = inside.iter().filter(|s| s.status == status).count();
    Sample::good(start, 100.0 * matching as f64 / inside.len() as f64)
}

/// The time-weighted mean of the straight lines between usable neighbours over `[start, end)`.
/// Time not covered by such a line (before the data, after it, beside a bad sample) does not
/// count, and makes the result uncertain.
fn time_average(samples: &[Sample], first_inside: usize, start: i64, end: i64) -> Sample {
    let mut index = first_inside.saturating_sub(1);
    let (mut integral, mut covered) = (0.0, 0i64);
    let mut status = Status::Good;
    while index + 1 < samples.len() && samples[index].time_us < end {
        let (a, b) = (&samples[index], &samples[index + 1]);
        index += 1;
        let (from, to) = (a.time_us.max(start), b.time_us.min(end));
        if to <= from || !a.is_usable() || !b.is_usable() {
            continue;
        }
        let width = to - from;
        integral += (line(a, b, from) + line(a, b, to)) / 2.0 * width as f64;
        covered += width;
        status = status.worst(a.status).worst(b.status);
    }
    if covered == 0 {
        return Sample::bad(start);
    }
    if covered < end - start {
        status = status.worst(Status::Uncertain);
    }
    Sample {
        time_us: start,
        value: integral / covered as f64,
        status,
        source_code: 0,
    }
}
