use proptest::prelude::*;

use super::*;
use crate::{Function, Status};

fn good(pairs: &[(i64, f64)]) -> Vec<Sample> {
    pairs.iter().map(|&(t, v)| Sample::good(t, v)).collect()
}

fn values(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.value).collect()
}

#[test]
fn intervals_split_evenly_and_every_cuts_the_last_short() {
    let equal = Intervals::split(0, 10, 3);
    assert_eq!(equal.iter().collect::<Vec<_>>(), [(0, 3), (3, 6), (6, 10)]);
    let every = Intervals::every(0, 10, 4);
    assert_eq!(every.iter().collect::<Vec<_>>(), [(0, 4), (4, 8), (8, 10)]);
    assert_eq!(Intervals::every(0, 10, 0).count(), 0);
    assert_eq!(Intervals::split(5, 5, 3).count(), 0);
    assert_eq!(Intervals::split(0, 10, 0).count(), 0);
    let extreme = Intervals::split(i64::MIN, i64::MAX, 2);
    assert_eq!(extreme.bounds(1).1, i64::MAX);
}

#[test]
fn raw_window_outside_adds_neighbours_only_when_needed() {
    let samples = good(&[(0, 0.0), (10, 1.0), (20, 2.0), (30, 3.0)]);
    assert_eq!(
        raw_window(&samples, 10, 20, Boundary::Inside, None).len(),
        2
    );
    // Samples sit exactly on both ends: nothing to add.
    assert_eq!(
        raw_window(&samples, 10, 20, Boundary::Outside, None).len(),
        2
    );
    assert_eq!(
        raw_window(&samples, 11, 19, Boundary::Inside, None).len(),
        0
    );
    let around = raw_window(&samples, 11, 19, Boundary::Outside, None);
    assert_eq!(values(around), [1.0, 2.0]);
    assert_eq!(
        raw_window(&samples, 100, 200, Boundary::Outside, None).len(),
        1
    );
    assert_eq!(
        raw_window(&samples, -20, -10, Boundary::Outside, None).len(),
        1
    );
    assert_eq!(
        raw_window(&samples, 0, 30, Boundary::Inside, Some(0)).len(),
        0
    );
}

#[test]
fn plot_keeps_first_last_min_max_in_time_order() {
    let samples = good(&[(0, 5.0), (1, 9.0), (2, 7.0), (3, 1.0), (4, 6.0), (5, 4.0)]);
    let points = plot(&samples, &Intervals::split(0, 6, 1));
    assert_eq!(values(&points), [5.0, 9.0, 1.0, 4.0]);
    // Two intervals, each of three samples: first, max/min, last.
    let points = plot(&samples, &Intervals::split(0, 6, 2));
    assert_eq!(values(&points), [5.0, 9.0, 7.0, 1.0, 6.0, 4.0]);
}

#[test]
fn plot_skips_empty_intervals_and_never_picks_bad_extremes() {
    let samples = vec![
        Sample::good(0, 1.0),
        Sample::bad(1),
        Sample::good(2, 2.0),
        Sample::good(50, 3.0),
        Sample::bad(55),
    ];
    let points = plot(&samples, &Intervals::split(0, 100, 10));
    let times: Vec<i64> = points.iter().map(|p| p.time_us).collect();
    // The bad sample inside the first interval is neither first, last nor an extreme; the one
    // ending the sixth interval is its last, so the gap stays visible.
    assert_eq!(times, [0, 2, 50, 55]);
    assert_eq!(points[3].status, Status::Bad);
}

#[test]
fn interp_and_step_differ_as_historians_define_them() {
    let samples = good(&[(0, 0.0), (10, 10.0), (20, 0.0)]);
    let intervals = Intervals::every(0, 20, 5);
    assert_eq!(
        values(&processed(&samples, &intervals, Function::Interp)),
        [0.0, 5.0, 10.0, 5.0]
    );
    assert_eq!(
        values(&processed(&samples, &intervals, Function::StepInterpolate)),
        [0.0, 0.0, 10.0, 10.0]
    );
}

#[test]
fn interpolation_is_bad_beside_a_bad_sample_and_outside_the_data() {
    let samples = vec![
        Sample::good(0, 0.0),
        Sample::bad(10),
        Sample::good(20, 20.0),
    ];
    assert_eq!(interpolate_at(&samples, 5).status, Status::Bad);
    assert_eq!(interpolate_at(&samples, -1).status, Status::Bad);
    assert_eq!(interpolate_at(&samples, 21).status, Status::Bad);
    assert_eq!(interpolate_at(&samples, 20).value, 20.0);
    assert_eq!(step_at(&samples, 15).status, Status::Bad);
    let mixed = [
        Sample::good(0, 0.0),
        Sample {
            time_us: 10,
            value: 10.0,
            status: Status::Uncertain,
            source_code: 0,
        },
    ];
    assert_eq!(interpolate_at(&mixed, 5).status, Status::Uncertain);
    assert_eq!(
        at_times(&mixed, &[5, 0])
            .iter()
            .map(|s| s.value)
            .collect::<Vec<_>>(),
        [5.0, 0.0]
    );
}

#[test]
fn time_average_weights_by_duration() {
    // Ramp 0→10 over [0,10) then flat 10 until 20: means 5 and 10.
    let samples = good(&[(0, 0.0), (10, 10.0), (20, 10.0)]);
    let intervals = Intervals::every(0, 20, 10);
    let result = processed(&samples, &intervals, Function::TimeAverage);
    assert_eq!(values(&result), [5.0, 10.0]);
    assert!(result.iter().all(|s| s.status == Status::Good));
    // Only half of [0, 40) is covered by data: a value, but uncertain.
    let partial = processed(&samples, &Intervals::split(0, 40, 1), Function::TimeAverage);
    assert_eq!(partial[0].value, 7.5);
    assert_eq!(partial[0].status, Status::Uncertain);
    // No data at all.
    let empty = processed(&[], &Intervals::split(0, 40, 1), Function::TimeAverage);
    assert_eq!(empty[0].status, Status::Bad);
}

#[test]
fn event_functions_compute_what_they_say() {
    let samples = good(&[
        (0, 2.0),
        (1, 4.0),
        (2, 4.0),
        (3, 4.0),
        (4, 5.0),
        (5, 5.0),
        (6, 7.0),
        (7, 9.0),
    ]);
    let all = Intervals::split(0, 8, 1);
    let one = |f| processed(&samples, &all, f)[0].value;
    assert_eq!(one(Function::Avg), 5.0);
    assert_eq!(one(Function::Min), 2.0);
    assert_eq!(one(Function::Max), 9.0);
    assert_eq!(one(Function::Range), 7.0);
    assert_eq!(one(Function::Delta), 7.0);
    assert_eq!(one(Function::Count), 8.0);
    assert!((one(Function::Variance) - 32.0 / 7.0).abs() < 1e-12);
    assert!((one(Function::StdDev) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    assert_eq!(one(Function::PercentGood), 100.0);
    assert_eq!(one(Function::PercentBad), 0.0);
}

#[test]
fn bad_samples_are_counted_but_not_averaged() {
    let samples = vec![
        Sample::good(0, 1.0),
        Sample::bad(1),
        Sample::good(2, 3.0),
        Sample {
            time_us: 3,
            value: 1e9,
            status: Status::Bad,
            source_code: 0,
        },
    ];
    let all = Intervals::split(0, 4, 1);
    let avg = processed(&samples, &all, Function::Avg)[0];
    assert_eq!(avg.value, 2.0);
    assert_eq!(avg.status, Status::Uncertain);
    assert_eq!(processed(&samples, &all, Function::Count)[0].value, 4.0);
    assert_eq!(
        processed(&samples, &all, Function::PercentBad)[0].value,
        50.0
    );
    assert_eq!(processed(&samples, &all, Function::Max)[0].value, 3.0);
}

#[test]
fn empty_intervals_are_bad_except_count() {
    let samples = good(&[(0, 1.0)]);
    let intervals = Intervals::every(0, 20, 10);
    for function in Function::ALL {
        let result = processed(&samples, &intervals, function);
        assert_eq!(result.len(), 2, "{function}");
        assert_eq!(result[1].time_us, 10, "{function}");
        match function {
            Function::Count => assert_eq!(result[1].value, 0.0),
            Function::StepInterpolate => assert_eq!(result[1].value, 1.0),
            _ => assert_eq!(result[1].status, Status::Bad, "{function}"),
        }
    }
    // Variance needs two values.
    assert_eq!(
        processed(&samples, &intervals, Function::Variance)[0].status,
        Status::Bad
    );
}

fn sorted_samples() -> impl Strategy<Value = Vec<Sample>> {
    proptest::collection::vec((0i64..50, -1e6f64..1e6, 0u8..10), 0..300).prop_map(|raw| {
        let mut time = 0;
        raw.into_iter()
            .map(|(step, value, quality)| {
                time += step;
                match quality {
                    0 => Sample::bad(time),
                    1 => Sample {
                        time_us: time,
                        value,
                        status: Status::Uncertain,
                        source_code: 0,
                    },
                    _ => Sample::good(time, value),
                }
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn min_avg_max_are_ordered(samples in sorted_samples(), count in 1u32..40) {
        let intervals = Intervals::split(0, 8_000, count);
        let min = processed(&samples, &intervals, Function::Min);
        let avg = processed(&samples, &intervals, Function::Avg);
        let max = processed(&samples, &intervals, Function::Max);
        for ((min, avg), max) in min.iter().zip(&avg).zip(&max) {
            prop_assert_eq!(min.status == Status::Bad, avg.status == Status::Bad);
            if avg.status != Status::Bad {
                prop_assert!(min.value <= avg.value && avg.value <= max.value,
                    "{} <= {} <= {}", min.value, avg.value, max.value);
            }
        }
    }

    #[test]
    fn time_average_stays_within_the_values_it_weighs(samples in sorted_samples(), count in 1u32..20) {
        let intervals = Intervals::split(0, 8_000, count);
        let usable: Vec<f64> = samples.iter().filter(|s| s.is_usable()).map(|s| s.value).collect();
        let (lowest, highest) = usable.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        for average in processed(&samples, &intervals, Function::TimeAverage) {
            if average.status != Status::Bad {
                prop_assert!(average.value >= lowest - 1e-6 && average.value <= highest + 1e-6);
            }
        }
    }

    #[test]
    fn plot_keeps_every_intervals_extremes(samples in sorted_samples(), count in 1u32..40) {
        let intervals = Intervals::split(0, 8_000, count);
        let points = plot(&samples, &intervals);
        prop_assert!(points.windows(2).all(|w| w[0].time_us <= w[1].time_us));
        for (start, end) in intervals.iter() {
            let inside: Vec<&Sample> = samples.iter().filter(|s| s.time_us >= start && s.time_us < end).collect();
            let kept: Vec<&Sample> = points.iter().filter(|s| s.time_us >= start && s.time_us < end).collect();
            prop_assert!(kept.len() <= 4);
            // Bit-for-bit, so value-less (NaN) samples compare equal to themselves.
            let same = |a: &Sample, b: &Sample| a.time_us == b.time_us && a.value.to_bits() == b.value.to_bits() && a.status == b.status;
            if let (Some(first), Some(last)) = (inside.first(), inside.last()) {
                prop_assert!(kept.iter().any(|k| same(k, first)) && kept.iter().any(|k| same(k, last)));
            }
            let usable = inside.iter().filter(|s| s.status != Status::Bad);
            let (lo, hi) = usable.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| (l.min(s.value), h.max(s.value)));
            if lo.is_finite() {
                prop_assert!(kept.iter().any(|k| k.value == lo), "min {} lost", lo);
                prop_assert!(kept.iter().any(|k| k.value == hi), "max {} lost", hi);
            }
        }
    }

    #[test]
    fn plot_fed_in_chunks_equals_plot_of_everything(
        samples in sorted_samples(),
        count in 1u32..40,
        chunk in 1usize..50,
    ) {
        let intervals = Intervals::split(100, 7_000, count);
        let mut builder = PlotBuilder::new(intervals);
        for part in samples.chunks(chunk) {
            builder.push(part);
        }
        let streamed = builder.finish();
        let whole = plot(&samples, &intervals);
        prop_assert_eq!(streamed.len(), whole.len());
        for (a, b) in streamed.iter().zip(&whole) {
            prop_assert!(a.time_us == b.time_us && a.value.to_bits() == b.value.to_bits() && a.status == b.status);
        }
    }

    #[test]
    fn count_over_intervals_sums_to_the_raw_count(samples in sorted_samples(), step in 1i64..3_000) {
        let (start, end) = (100, 7_000);
        let counts = processed(&samples, &Intervals::every(start, end, step), Function::Count);
        let total: f64 = counts.iter().map(|s| s.value).sum();
        // Intervals are half-open, the raw read closed: the raw count of [start, end).
        let raw = raw_window(&samples, start, end - 1, Boundary::Inside, None).len();
        prop_assert_eq!(total as usize, raw);
    }
}
