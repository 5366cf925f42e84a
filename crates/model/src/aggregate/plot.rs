//! Shape-preserving down-sampling: per interval the first, last, smallest and largest samples.

use super::Intervals;
use crate::{Sample, Status};

/// Down-samples sorted `samples` to at most four per interval — the first, the last, the
/// smallest and the largest usable value — in time order without repeats, so a line drawn
/// through the result has every peak, trough and step of a line drawn through everything.
///
/// Samples outside the intervals are ignored. Bad samples can be an interval's first or last
/// (so gaps stay visible) but never its smallest or largest.
///
/// ```
/// use uplink_model::aggregate::{plot, Intervals};
/// use uplink_model::Sample;
///
/// let samples: Vec<Sample> = [3.0, 9.0, 1.0, 4.0, 5.0].iter().enumerate()
///     .map(|(i, &v)| Sample::good(i as i64, v)).collect();
/// let points = plot(&samples, &Intervals::split(0, 5, 1));
/// assert_eq!(points.iter().map(|s| s.value).collect::<Vec<_>>(), [3.0, 9.0, 1.0, 5.0]);
/// ```
pub fn plot(samples: &[Sample], intervals: &Intervals) -> Vec<Sample> {
    let count = intervals.count();
    let mut points = Vec::with_capacity(count.saturating_mul(4).min(samples.len()));
    let Some((first_start, _)) = intervals.iter().next() else {
        return points;
    };
    let mut lo = samples.partition_point(|s| s.time_us < first_start);
    for (_, end) in intervals.iter() {
        let rest = &samples[lo..];
        let hi = lo + rest.partition_point(|s| s.time_us < end);
        let slice = &samples[lo..hi];
        if !slice.is_empty() {
            push_shape(slice, &mut points);
        }
        lo = hi;
    }
    points
}

/// Appends the first, smallest, largest and last of one interval, in time order, once each.
fn push_shape(slice: &[Sample], points: &mut Vec<Sample>) {
    let (min, max) = extremes(slice);
    let last = slice.len() - 1;
    let mut picks = [0, min.unwrap_or(0), max.unwrap_or(0), last];
    picks.sort_unstable();
    let mut previous = usize::MAX;
    for index in picks {
        if index != previous {
            points.push(slice[index]);
            previous = index;
        }
    }
}

/// Indices of the first smallest and first largest usable values.
#[inline]
fn extremes(slice: &[Sample]) -> (Option<usize>, Option<usize>) {
    let (mut min_value, mut max_value) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut min_index, mut max_index) = (usize::MAX, usize::MAX);
    for (index, sample) in slice.iter().enumerate() {
        // NaN compares false both ways, so value-less samples never win.
        if sample.status == Status::Bad {
            continue;
        }
        if sample.value < min_value {
            min_value = sample.value;
            min_index = index;
        }
        if sample.value > max_value {
            max_value = sample.value;
            max_index = index;
        }
    }
    (
        (min_index != usize::MAX).then_some(min_index),
        (max_index != usize::MAX).then_some(max_index),
    )
}
