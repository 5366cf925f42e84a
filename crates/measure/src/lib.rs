//! Benchmark timing for Uplink: run a piece of work repeatedly, keep every sample, and
//! report medians, percentiles and ratios against a baseline measured in the same process.
//!
//! Benchmarks in this workspace are plain binaries (`harness = false`) so that the subject
//! and its baseline run side by side under the same conditions; this crate is the small
//! shared part they use to time and to report.
//!
//! ```
//! use uplink_measure::{Runs, compare};
//!
//! let runs = Runs::new(2, 9);
//! let ours = runs.time(|| (0..10_000u64).sum::<u64>());
//! let baseline = runs.time(|| (0..10_000u64).fold(0, |a, b| a + b));
//! let line = compare("sum of 10k", &ours, "fold", &baseline);
//! assert!(line.contains("ratio"));
//! ```
#![warn(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How many warm-up and measured runs to make of each piece of work.
#[derive(Debug, Clone, Copy)]
pub struct Runs {
    warmup: usize,
    measured: usize,
}

impl Runs {
    /// `warmup` unmeasured runs, then `measured` timed runs (at least one).
    pub fn new(warmup: usize, measured: usize) -> Self {
        Self {
            warmup,
            measured: measured.max(1),
        }
    }

    /// Times `work`, keeping its result alive so the optimiser cannot drop it.
    pub fn time<R>(&self, mut work: impl FnMut() -> R) -> Timing {
        for _ in 0..self.warmup {
            black_box(work());
        }
        let samples = (0..self.measured)
            .map(|_| {
                let start = Instant::now();
                black_box(work());
                start.elapsed()
            })
            .collect();
        Timing::from_samples(samples)
    }
}

/// The durations of every measured run, sorted.
#[derive(Debug, Clone)]
pub struct Timing {
    sorted: Vec<Duration>,
}

impl Timing {
    /// Builds a timing from raw samples (for work timed elsewhere, such as round trips).
    ///
    /// # Panics
    /// If `samples` is empty: a timing without samples has no median.
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "a timing needs at least one sample");
        samples.sort_unstable();
        Self { sorted: samples }
    }

    /// The median run.
    pub fn median(&self) -> Duration {
        self.percentile(50.0)
    }

    /// The run at percentile `p` (0–100, nearest rank).
    pub fn percentile(&self, p: f64) -> Duration {
        let p = p.clamp(0.0, 100.0);
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.saturating_sub(1).min(self.sorted.len() - 1)]
    }

    /// The fastest run.
    pub fn min(&self) -> Duration {
        self.sorted[0]
    }

    /// How many runs were measured.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Always false: a timing has at least one sample.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Items per second at the median, for work that handled `items` items per run.
    pub fn per_second(&self, items: u64) -> f64 {
        items as f64 / self.median().as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// One line: the subject's median, the baseline's median, and subject speed relative to the
/// baseline (above 1 means the subject is faster).
pub fn compare(
    subject_label: &str,
    subject: &Timing,
    baseline_label: &str,
    baseline: &Timing,
) -> String {
    let ratio =
        baseline.median().as_secs_f64() / subject.median().as_secs_f64().max(f64::MIN_POSITIVE);
    let mut line = String::new();
    let _ = write!(
        line,
        "{subject_label}: median {} (p99 {}, n={}) | {baseline_label}: median {} | ratio {ratio:.2}",
        human(subject.median()),
        human(subject.percentile(99.0)),
        subject.len(),
        human(baseline.median()),
    );
    line
}

/// One line for a timing with no baseline, with throughput when `items` is given.
pub fn describe(label: &str, timing: &Timing, items: Option<u64>) -> String {
    let mut line = format!(
        "{label}: median {} (min {}, p99 {}, n={})",
        human(timing.median()),
        human(timing.min()),
        human(timing.percentile(99.0)),
        timing.len()
    );
    if let Some(items) = items {
        let _ = write!(line, ", {} items/s", si(timing.per_second(items)));
    }
    line
}

/// A duration in the unit that reads best.
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 10_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// A rate with an SI suffix (k, M, G).
pub fn si(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Timing {
        Timing::from_samples(v.iter().map(|&m| Duration::from_millis(m)).collect())
    }

    #[test]
    fn median_and_percentiles_use_nearest_rank() {
        let t = ms(&[5, 1, 4, 2, 3]);
        assert_eq!(t.median(), Duration::from_millis(3));
        assert_eq!(t.min(), Duration::from_millis(1));
        assert_eq!(t.percentile(99.0), Duration::from_millis(5));
        assert_eq!(t.percentile(0.0), Duration::from_millis(1));
    }

    #[test]
    fn ratio_above_one_means_subject_is_faster() {
        let line = compare("ours", &ms(&[10]), "theirs", &ms(&[20]));
        assert!(line.ends_with("ratio 2.00"), "{line}");
    }

    #[test]
    fn throughput_is_items_over_median() {
        let t = ms(&[500]);
        assert!((t.per_second(1000) - 2000.0).abs() < 1e-9);
        assert!(describe("x", &t, Some(1000)).contains("2.0 k items/s"));
    }

    #[test]
    fn runs_measure_every_sample() {
        let mut calls = 0;
        let t = Runs::new(3, 7).time(|| calls += 1);
        assert_eq!(t.len(), 7);
        assert_eq!(calls, 10);
    }
}
