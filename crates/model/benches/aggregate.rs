//! Aggregation speed over 10 M samples: plot into 1 000 intervals (goal ≤ 50 ms median) and AVG
//! (goal ≤ 100 ms), each beside a plain iterator pass over the same data as the baseline.

use std::hint::black_box;

use uplink_measure::{Runs, compare, describe};
use uplink_model::aggregate::{Intervals, plot, processed};
use uplink_model::{Function, Sample, Status};

const SAMPLES: usize = 10_000_000;
const INTERVALS: u32 = 1_000;

fn main() {
    // One sample a second: a slow sine with a fast ripple, like a noisy process value.
    let samples: Vec<Sample> = (0..SAMPLES)
        .map(|i| {
            let t = i as f64;
            Sample::good(
                i as i64 * 1_000_000,
                (t / 3_600.0).sin() * 50.0 + (t * 0.37).sin(),
            )
        })
        .collect();
    let end = SAMPLES as i64 * 1_000_000;
    let runs = Runs::new(2, 11);

    let intervals = Intervals::split(0, end, INTERVALS);
    let ours = runs.time(|| plot(black_box(&samples), &intervals));
    let baseline = runs.time(|| naive_min_max(black_box(&samples)));
    print_line(&compare(
        "plot 10M samples into 1000 intervals",
        &ours,
        "baseline one min/max pass",
        &baseline,
    ));
    print_line(&describe("plot", &ours, Some(SAMPLES as u64)));
    print_line(&goal("plot", ours.median().as_secs_f64(), 0.050));

    let whole = Intervals::split(0, end, 1);
    let ours = runs.time(|| processed(black_box(&samples), &whole, Function::Avg));
    let baseline = runs.time(|| naive_mean(black_box(&samples)));
    print_line(&compare(
        "AVG over 10M samples",
        &ours,
        "baseline iterator sum / count",
        &baseline,
    ));
    print_line(&describe("AVG", &ours, Some(SAMPLES as u64)));
    print_line(&goal("AVG", ours.median().as_secs_f64(), 0.100));

    let hourly = Intervals::every(0, end, 3_600_000_000);
    let ours = runs.time(|| processed(black_box(&samples), &hourly, Function::TimeAverage));
    print_line(&describe(
        "TIMEAVERAGE over 10M samples, hourly",
        &ours,
        Some(SAMPLES as u64),
    ));
}

fn naive_min_max(samples: &[Sample]) -> (f64, f64) {
    samples
        .iter()
        .filter(|s| s.status != Status::Bad)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.value), hi.max(s.value))
        })
}

fn naive_mean(samples: &[Sample]) -> f64 {
    let (sum, count) = samples
        .iter()
        .filter(|s| s.status != Status::Bad)
        .fold((0.0, 0usize), |(sum, count), s| (sum + s.value, count + 1));
    sum / count as f64
}

fn goal(label: &str, median_secs: f64, goal_secs: f64) -> String {
    let verdict = if median_secs <= goal_secs {
        "met"
    } else {
        "MISSED"
    };
    format!(
        "{label}: goal ≤ {:.0} ms, median {:.1} ms: {verdict}",
        goal_secs * 1e3,
        median_secs * 1e3
    )
}

#[allow(clippy::print_stdout)]
fn print_line(line: &str) {
    println!("{line}");
}
