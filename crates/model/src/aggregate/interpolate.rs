//! Values between samples: linear interpolation and step (hold-last) values.

use crate::{Sample, Status};

/// The linearly interpolated value at `time_us`: a sample exactly there, or the straight line
/// between the samples either side. Bad (no value) before the first sample, after the last, or
/// next to a bad sample; the status is the worse of the two neighbours.
///
/// ```
/// use uplink_model::aggregate::interpolate_at;
/// use uplink_model::{Sample, Status};
///
/// let samples = [Sample::good(0, 10.0), Sample::good(10, 20.0)];
/// assert_eq!(interpolate_at(&samples, 5).value, 15.0);
/// assert_eq!(interpolate_at(&samples, 11).status, Status::Bad);
/// ```
pub fn interpolate_at(samples: &[Sample], time_us: i64) -> Sample {
    let after = samples.partition_point(|s| s.time_us <= time_us);
    let Some(before) = after.checked_sub(1).map(|i| samples[i]) else {
        return Sample::bad(time_us);
    };
    if before.time_us == time_us {
        return Sample { time_us, ..before };
    }
    match samples.get(after) {
        Some(next) if before.is_usable() && next.is_usable() => Sample {
            time_us,
            value: line(&before, next, time_us),
            status: before.status.worst(next.status),
            source_code: 0,
        },
        _ => Sample::bad(time_us),
    }
}

/// The value in effect at `time_us`: the last sample at or before it, held. Bad before the
/// first sample.
///
/// ```
/// use uplink_model::aggregate::step_at;
/// use uplink_model::Sample;
///
/// let samples = [Sample::good(0, 10.0), Sample::good(10, 20.0)];
/// assert_eq!(step_at(&samples, 9).value, 10.0);
/// assert_eq!(step_at(&samples, 99).value, 20.0);
/// ```
pub fn step_at(samples: &[Sample], time_us: i64) -> Sample {
    let after = samples.partition_point(|s| s.time_us <= time_us);
    match after.checked_sub(1).map(|i| samples[i]) {
        Some(before) if before.status != Status::Bad => Sample { time_us, ..before },
        _ => Sample::bad(time_us),
    }
}

/// Interpolated values at each of `times_us` (any order; the answer keeps it).
pub fn at_times(samples: &[Sample], times_us: &[i64]) -> Vec<Sample> {
    times_us
        .iter()
        .map(|&time_us| interpolate_at(samples, time_us))
        .collect()
}

/// The value at `time_us` on the straight line through `a` and `b` (`a` before `b`).
#[inline]
pub(super) fn line(a: &Sample, b: &Sample, time_us: i64) -> f64 {
    let span = (b.time_us - a.time_us) as f64;
    let fraction = (time_us - a.time_us) as f64 / span;
    a.value + (b.value - a.value) * fraction
}
