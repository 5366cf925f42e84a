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

/// [`plot`] fed chunk by chunk, for raw reads that stream: memory stays at four samples per
/// interval however many samples pass through. Chunks must come in time order.
///
/// ```
/// use uplink_model::aggregate::{plot, Intervals, PlotBuilder};
/// use uplink_model::Sample;
///
/// let samples: Vec<Sample> = (0..100).map(|i| Sample::good(i, ((i * 37) % 11) as f64)).collect();
/// let intervals = Intervals::split(0, 100, 7);
/// let mut builder = PlotBuilder::new(intervals);
/// for chunk in samples.chunks(9) {
///     builder.push(chunk);
/// }
/// assert_eq!(builder.finish(), plot(&samples, &intervals));
/// ```
#[derive(Debug, Clone)]
pub struct PlotBuilder {
    intervals: Intervals,
    /// The interval being filled and its end.
    index: usize,
    end: i64,
    current: Option<Shape>,
    points: Vec<Sample>,
}

/// What is known so far of one interval.
#[derive(Debug, Clone, Copy)]
struct Shape {
    first: Sample,
    last: Sample,
    /// (position among the interval's samples, sample), so ties keep the earliest.
    min: Option<(u64, Sample)>,
    max: Option<(u64, Sample)>,
    seen: u64,
}

impl PlotBuilder {
    /// A builder for these intervals.
    pub fn new(intervals: Intervals) -> Self {
        let end = if intervals.count() > 0 {
            intervals.bounds(0).1
        } else {
            i64::MIN
        };
        Self {
            intervals,
            index: 0,
            end,
            current: None,
            points: Vec::new(),
        }
    }

    /// Takes the next samples (after every sample pushed before).
    pub fn push(&mut self, chunk: &[Sample]) {
        let count = self.intervals.count();
        if count == 0 {
            return;
        }
        let first_start = self.intervals.bounds(0).0;
        let mut rest = &chunk[chunk.partition_point(|s| s.time_us < first_start)..];
        while !rest.is_empty() && self.index < count {
            let inside = rest.partition_point(|s| s.time_us < self.end);
            if inside > 0 {
                self.merge(&rest[..inside]);
                rest = &rest[inside..];
            }
            if !rest.is_empty() {
                self.close();
                self.index += 1;
                if self.index < count {
                    self.end = self.intervals.bounds(self.index).1;
                }
            }
        }
    }

    /// The points of every interval.
    pub fn finish(mut self) -> Vec<Sample> {
        self.close();
        self.points
    }

    fn merge(&mut self, slice: &[Sample]) {
        let (min, max) = extremes(slice);
        let seen = self.current.map_or(0, |c| c.seen);
        let candidate = |index: Option<usize>| index.map(|i| (seen + i as u64, slice[i]));
        let (min, max) = (candidate(min), candidate(max));
        let last = slice[slice.len() - 1];
        self.current = Some(match self.current.take() {
            None => Shape {
                first: slice[0],
                last,
                min,
                max,
                seen: slice.len() as u64,
            },
            Some(shape) => Shape {
                first: shape.first,
                last,
                min: pick(shape.min, min, |new, old| new < old),
                max: pick(shape.max, max, |new, old| new > old),
                seen: seen + slice.len() as u64,
            },
        });
    }

    /// Appends the current interval's points, as [`plot`] would for it.
    fn close(&mut self) {
        let Some(shape) = self.current.take() else {
            return;
        };
        let last = shape.seen - 1;
        let mut picks = [
            (0, shape.first),
            shape.min.unwrap_or((0, shape.first)),
            shape.max.unwrap_or((0, shape.first)),
            (last, shape.last),
        ];
        picks.sort_by_key(|(position, _)| *position);
        let mut previous = u64::MAX;
        for (position, sample) in picks {
            if position != previous {
                self.points.push(sample);
                previous = position;
            }
        }
    }
}

/// The earlier candidate unless the later one is strictly better.
fn pick(
    earlier: Option<(u64, Sample)>,
    later: Option<(u64, Sample)>,
    better: impl Fn(f64, f64) -> bool,
) -> Option<(u64, Sample)> {
    match (earlier, later) {
        (Some(e), Some(l)) if better(l.1.value, e.1.value) => Some(l),
        (Some(e), _) => Some(e),
        (None, l) => l,
    }
}
