//! Aggregation as pure functions over raw samples, so every data source answers plot, processed
//! and values-at-times queries from its raw reads alone.
//!
//! Every function takes samples sorted by time (oldest first), as raw reads return them, and
//! never allocates per sample.
//!
//! ```
//! use uplink_model::aggregate::{self, Intervals};
//! use uplink_model::{Function, Sample};
//!
//! let samples: Vec<Sample> = (0..10).map(|i| Sample::good(i, (i * i) as f64)).collect();
//! let hourly = aggregate::processed(&samples, &Intervals::every(0, 10, 5), Function::Max);
//! assert_eq!(hourly.iter().map(|s| s.value).collect::<Vec<_>>(), [16.0, 81.0]);
//! ```

mod interpolate;
mod plot;
mod processed;

pub use interpolate::{at_times, interpolate_at, step_at};
pub use plot::{PlotBuilder, plot};
pub use processed::processed;

use crate::{Boundary, Sample};

/// A time range cut into consecutive intervals `[start, end)`, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    start: i64,
    end: i64,
    kind: Cut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// `count` equal parts (boundaries rounded down to the microsecond).
    Equal { count: u32 },
    /// Parts `step` long, the last cut short at the end.
    Every { step: i64 },
}

impl Intervals {
    /// `[start, end)` in `count` equal parts; empty when `count` is 0 or the range is empty.
    pub fn split(start: i64, end: i64, count: u32) -> Self {
        Self {
            start,
            end,
            kind: Cut::Equal { count },
        }
    }

    /// `[start, end)` in parts `step` long from the start; the last part ends at `end`.
    /// Empty when `step` is not positive or the range is empty.
    pub fn every(start: i64, end: i64, step: i64) -> Self {
        Self {
            start,
            end,
            kind: Cut::Every { step },
        }
    }

    /// The number of intervals.
    pub fn count(&self) -> usize {
        if self.end <= self.start {
            return 0;
        }
        match self.kind {
            Cut::Equal { count } => count as usize,
            Cut::Every { step } if step <= 0 => 0,
            Cut::Every { step } => {
                let length = (i128::from(self.end) - i128::from(self.start)) as u128;
                usize::try_from(length.div_ceil(step as u128)).unwrap_or(usize::MAX)
            }
        }
    }

    /// Start (inclusive) and end (exclusive) of interval `index`.
    pub fn bounds(&self, index: usize) -> (i64, i64) {
        (self.boundary(index), self.boundary(index + 1))
    }

    fn boundary(&self, index: usize) -> i64 {
        let start = i128::from(self.start);
        let end = i128::from(self.end);
        let at = match self.kind {
            Cut::Equal { count } => {
                start + (end - start) * index as i128 / i128::from(count.max(1))
            }
            Cut::Every { step } => start + i128::from(step) * index as i128,
        };
        at.min(end) as i64
    }

    /// Every interval's bounds, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        (0..self.count()).map(|index| self.bounds(index))
    }
}

/// The samples of a raw read of `[start, end]` (both inclusive), with [`Boundary::Outside`]
/// adding the neighbour just before the start and just after the end when no sample sits exactly
/// on that end. `max_count` keeps the oldest ones.
///
/// ```
/// use uplink_model::aggregate::raw_window;
/// use uplink_model::{Boundary, Sample};
///
/// let samples: Vec<Sample> = (0..10).map(|i| Sample::good(i * 10, i as f64)).collect();
/// assert_eq!(raw_window(&samples, 15, 45, Boundary::Inside, None).len(), 3);
/// assert_eq!(raw_window(&samples, 15, 45, Boundary::Outside, None).len(), 5);
/// assert_eq!(raw_window(&samples, 15, 45, Boundary::Outside, Some(2))[1].time_us, 20);
/// ```
pub fn raw_window(
    samples: &[Sample],
    start: i64,
    end: i64,
    boundary: Boundary,
    max_count: Option<u64>,
) -> &[Sample] {
    let (lo, hi) = window_indices(samples, start, end, boundary);
    let hi = match max_count {
        Some(max) => hi.min(lo.saturating_add(usize::try_from(max).unwrap_or(usize::MAX))),
        None => hi,
    };
    &samples[lo..hi]
}

/// The index range [`raw_window`] returns, before `max_count`: for sources that keep other data
/// beside the samples (text values, per-row files) in the same order.
pub fn window_indices(
    samples: &[Sample],
    start: i64,
    end: i64,
    boundary: Boundary,
) -> (usize, usize) {
    let mut lo = samples.partition_point(|s| s.time_us < start);
    let mut hi = samples.partition_point(|s| s.time_us <= end).max(lo);
    if boundary == Boundary::Outside {
        if lo > 0 && samples.get(lo).is_none_or(|s| s.time_us != start) {
            lo -= 1;
        }
        if hi < samples.len() && (hi == 0 || samples[hi - 1].time_us != end) {
            hi += 1;
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests;
