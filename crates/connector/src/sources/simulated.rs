//! The simulated source: sinusoid, ramp, square, random-walk and noise tags computed from the
//! time alone, so a value depends only on the seed, the settings and the instant — tests assert
//! exact values, and every connector has data to show with nothing installed. Its sinusoid,
//! ramp and square tags raise alarms when they cross their limits ([`alarms`]), computed from
//! the signal the same way.

mod alarms;

use std::f64::consts::TAU;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;
use uplink_model::time_expr::{Span, to_micros};
use uplink_model::{
    Boundary, Capabilities, DataSourceDescriptor, DataType, EventPage, EventsRequest, RawRequest,
    Sample, Tag, TagPage, TagSearch, TagValue,
};

use crate::form::{FieldSchema, FieldType, FormSchema};
use crate::source::{
    CHUNK, Change, ChangeStream, Changes, DataSource, EventStream, Health, RawStream,
    SnapshotStream, WriteValue,
};
use crate::{SourceConfig, SourceError};

/// The kind's identifier.
pub const KIND: &str = "simulated";

/// The form of a simulated source.
pub fn schema() -> FormSchema {
    FormSchema {
        kind: KIND.into(),
        title: "Simulated data".into(),
        description: "Sinusoid, ramp, square, random-walk and noise tags, the same for the same seed and time.".into(),
        fields: vec![
            FieldSchema::new("seed", "Seed", FieldType::Integer, true, "Sources with the same seed and settings give the same values.")
                .default_value(1)
                .range(0.0, 9_007_199_254_740_991.0),
            FieldSchema::new("sampleInterval", "Sample interval", FieldType::Duration, true, "Time between samples, such as 1s or 100ms.")
                .default_value("1s"),
            FieldSchema::new("period", "Period", FieldType::Duration, true, "Length of one cycle of the sinusoid, ramp and square tags.")
                .default_value("1h"),
            FieldSchema::new("amplitude", "Amplitude", FieldType::Number, true, "Half the distance between the lowest and highest value.")
                .default_value(10.0)
                .range(0.0, 1e12),
            FieldSchema::new("offset", "Offset", FieldType::Number, true, "The value the signals swing around.")
                .default_value(50.0)
                .range(-1e12, 1e12),
            FieldSchema::new("tagsPerShape", "Tags per shape", FieldType::Integer, true, "How many tags of each shape, each shifted in phase and seeded apart.")
                .default_value(1)
                .range(1.0, 1_000.0),
        ]
        .into_iter()
        .chain(uplink_source::recording::fields())
        .chain(uplink_source::writing::fields())
        .collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    seed: u64,
    sample_interval: Span,
    period: Span,
    amplitude: f64,
    offset: f64,
    tags_per_shape: u32,
}

/// The shape of a simulated tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `offset + amplitude · sin(2π · phase)`.
    Sinusoid,
    /// Rises linearly from `offset − amplitude` to `offset + amplitude` each period.
    Ramp,
    /// `offset + amplitude` for the first half of each period, `offset − amplitude` after.
    Square,
    /// A wandering value: Brownian-like noise summed over several time scales, computed
    /// directly for any instant.
    RandomWalk,
    /// Independent uniform noise in `offset ± amplitude` at every sample.
    Noise,
}

impl Shape {
    const ALL: [Shape; 5] = [
        Shape::Sinusoid,
        Shape::Ramp,
        Shape::Square,
        Shape::RandomWalk,
        Shape::Noise,
    ];

    fn name(self) -> &'static str {
        match self {
            Shape::Sinusoid => "sinusoid",
            Shape::Ramp => "ramp",
            Shape::Square => "square",
            Shape::RandomWalk => "randomWalk",
            Shape::Noise => "noise",
        }
    }
}

/// One simulated tag's signal.
#[derive(Debug, Clone, Copy)]
struct Signal {
    shape: Shape,
    seed: u64,
    /// Microseconds the signal is shifted by.
    shift: i64,
    period: i64,
    amplitude: f64,
    offset: f64,
}

impl Signal {
    /// The value at `t` microseconds since the epoch; `index` is `t` in sample intervals.
    #[inline]
    fn value(&self, t: i64, index: i64) -> f64 {
        let phase = || (t - self.shift).rem_euclid(self.period) as f64 / self.period as f64;
        let unit = match self.shape {
            Shape::Sinusoid => (TAU * phase()).sin(),
            Shape::Ramp => 2.0 * phase() - 1.0,
            Shape::Square => {
                if phase() < 0.5 {
                    1.0
                } else {
                    -1.0
                }
            }
            Shape::Noise => uniform(self.seed, index as u64),
            Shape::RandomWalk => self.walk(t),
        };
        self.offset + self.amplitude * unit
    }

    /// Noise interpolated between random points, summed over six octaves from one period down.
    fn walk(&self, t: i64) -> f64 {
        let (mut sum, mut weight, mut total) = (0.0, 1.0, 0.0);
        let mut scale = self.period as f64;
        for octave in 0..6u64 {
            let x = (t - self.shift) as f64 / scale;
            let cell = x.floor();
            let fraction = x - cell;
            let seed = self.seed ^ octave.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let a = uniform(seed, cell as i64 as u64);
            let b = uniform(seed, (cell as i64 + 1) as u64);
            sum += weight * (a + (b - a) * fraction);
            total += weight;
            weight *= 0.5;
            scale /= 2.0;
        }
        sum / total
    }
}

/// A uniform number in [-1, 1) from a seed and a counter (SplitMix64).
#[inline]
fn uniform(seed: u64, counter: u64) -> f64 {
    let mut z = seed
        .wrapping_add(counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// A simulated data source.
#[derive(Debug, Clone)]
pub struct SimulatedSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    description: String,
    interval: i64,
    tags: Vec<Tag>,
    /// Each tag's position in `tags` by name: a subscription of 1 000 tags looks each up once
    /// rather than scanning the list for it.
    positions: std::collections::HashMap<String, usize>,
    signals: Vec<Signal>,
    /// One period of each periodic signal, sampled on the grid, built on first read.
    cycles: Vec<OnceLock<Option<Cycle>>>,
    /// Values apps wrote, by tag position: held in memory, they replace the signal in
    /// snapshots and subscriptions until the source is reopened (history stays the signal's).
    written: std::sync::Mutex<std::collections::HashMap<usize, TagValue>>,
    /// Each alarming tag's events over one period, found on first use.
    alarms: OnceLock<Arc<[alarms::TagAlarms]>>,
}

/// The most events one item of the events stream carries; a reader that fell further behind
/// gets the rest in the items that follow at once.
const EVENTS_PER_ITEM: u32 = 1_000;

/// The most grid steps one item of a change stream covers.
const MAX_CHANGE_STEPS: i64 = 1_000;

/// The most samples per period worth keeping in a table (8 MB).
const MAX_CYCLE: i64 = 1 << 20;

/// One period of a periodic signal on the sample grid. A value read from it is bit for bit the
/// value [`Signal::value`] computes, since the phase is the same integer ratio either way; it
/// only saves the sine.
#[derive(Debug, Clone)]
struct Cycle {
    values: Arc<[f64]>,
    /// Sample index of the period's start (the shift in samples).
    first: i64,
}

impl Cycle {
    fn build(signal: &Signal, interval: i64) -> Option<Self> {
        let periodic = matches!(signal.shape, Shape::Sinusoid | Shape::Ramp | Shape::Square);
        let steps = signal.period / interval;
        if !periodic
            || signal.period % interval != 0
            || signal.shift % interval != 0
            || steps > MAX_CYCLE
        {
            return None;
        }
        let first = signal.shift / interval;
        let values = (0..steps)
            .map(|j| {
                let i = first + j;
                signal.value(i * interval, i)
            })
            .collect();
        Some(Self { values, first })
    }
}

impl SimulatedSource {
    /// Builds the source from a configuration whose settings passed the kind's form.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] when the settings do not fit the form.
    pub fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let settings: Settings = uplink_source::typed_settings(&schema(), &config.settings)?;
        let period = settings.period.as_micros();
        let mut tags = Vec::new();
        let mut signals = Vec::new();
        let n = i64::from(settings.tags_per_shape);
        for (shape_index, shape) in Shape::ALL.into_iter().enumerate() {
            for i in 0..n {
                let name = format!("sim.{}.{}", shape.name(), i + 1);
                tags.push(
                    Tag::new(name, DataType::Float)
                        .with_description(format!("Simulated {} signal", shape.name()))
                        .with_property("shape", shape.name()),
                );
                signals.push(Signal {
                    shape,
                    seed: uniform_seed(settings.seed, shape_index as u64, i as u64),
                    shift: period / n * i,
                    period,
                    amplitude: settings.amplitude,
                    offset: settings.offset,
                });
            }
        }
        let positions = tags
            .iter()
            .enumerate()
            .map(|(position, tag)| (tag.name.clone(), position))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                description: config.description.clone(),
                interval: settings.sample_interval.as_micros(),
                tags,
                positions,
                cycles: (0..signals.len()).map(|_| OnceLock::new()).collect(),
                signals,
                written: std::sync::Mutex::default(),
                alarms: OnceLock::new(),
            }),
        })
    }

    fn position(&self, tag: &str) -> Result<usize, SourceError> {
        self.inner
            .positions
            .get(tag)
            .copied()
            .ok_or_else(|| SourceError::UnknownTag {
                source_name: self.inner.name.clone(),
                tag: tag.to_owned(),
            })
    }

    /// The value of the tag at `position` at the sample instant at or before `time_us`.
    fn sample_at(&self, position: usize, time_us: i64) -> Sample {
        let index = time_us.div_euclid(self.inner.interval);
        let t = index * self.inner.interval;
        Sample::good(t, self.inner.signals[position].value(t, index))
    }

    /// The current value of the tags at `positions`, in their order: a written value where an
    /// app wrote one, else the signal at the sample instant at or before now.
    fn current(&self, positions: &[usize]) -> Vec<TagValue> {
        let now = to_micros(Utc::now());
        let written = self.inner.written.lock().unwrap_or_else(|p| p.into_inner());
        positions
            .iter()
            .map(|&position| match written.get(&position) {
                Some(value) => value.clone(),
                None => self.sample_at(position, now).into(),
            })
            .collect()
    }

    fn cycle(&self, position: usize) -> Option<Cycle> {
        self.inner.cycles[position]
            .get_or_init(|| Cycle::build(&self.inner.signals[position], self.inner.interval))
            .clone()
    }

    /// The alarming tags' patterns (periodic tags whose period is whole samples).
    fn alarms(&self) -> Arc<[alarms::TagAlarms]> {
        self.inner
            .alarms
            .get_or_init(|| {
                (0..self.inner.tags.len())
                    .filter_map(|position| {
                        alarms::TagAlarms::build(
                            position,
                            &self.inner.tags[position].name,
                            &self.inner.signals[position],
                            self.cycle(position).as_ref(),
                        )
                    })
                    .collect()
            })
            .clone()
    }

    /// The events `request` asks for, none after `now_us`.
    fn events_until(&self, request: &EventsRequest, now_us: i64) -> Result<EventPage, SourceError> {
        alarms::page(
            &self.inner.name,
            &self.alarms(),
            self.inner.interval,
            request,
            now_us,
        )
    }

    /// The value of `tag` at the sample instant at or before `time_us`.
    ///
    /// # Errors
    /// [`SourceError::UnknownTag`].
    pub fn value_at(&self, tag: &str, time_us: i64) -> Result<Sample, SourceError> {
        Ok(self.sample_at(self.position(tag)?, time_us))
    }
}

/// Samples `from..=to` read from a period table, walking it without a division per sample.
fn from_cycle(cycle: &Cycle, interval: i64, from: i64, to: i64) -> Vec<Sample> {
    let steps = cycle.values.len();
    let mut j = (from - cycle.first).rem_euclid(steps as i64) as usize;
    let mut chunk = Vec::with_capacity((to - from + 1) as usize);
    for i in from..=to {
        chunk.push(Sample::good(i * interval, cycle.values[j]));
        j += 1;
        if j == steps {
            j = 0;
        }
    }
    chunk
}

fn uniform_seed(seed: u64, shape: u64, index: u64) -> u64 {
    seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (shape << 32) ^ index
}

#[async_trait]
impl DataSource for SimulatedSource {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: self.inner.name.clone(),
            kind: KIND.into(),
            description: self.inner.description.clone(),
            capabilities: Capabilities {
                subscribe: true,
                write: true,
                events: true,
                ..Capabilities::all_from_raw()
            },
        }
    }

    fn health(&self) -> Health {
        Health::ok()
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        Ok(search.page(&self.inner.tags)?)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        let positions = tags
            .iter()
            .map(|tag| self.position(tag))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.current(&positions))
    }

    /// Holds the value in memory: snapshots and subscriptions show it from now on.
    async fn write(&self, tag: &str, value: &WriteValue) -> Result<(), SourceError> {
        let position = self.position(tag)?;
        let number = match value {
            WriteValue::Number(n) if n.is_finite() => *n,
            WriteValue::Bool(b) => f64::from(u8::from(*b)),
            WriteValue::Number(_) | WriteValue::Text(_) => {
                return Err(SourceError::WriteRefused {
                    source_name: self.inner.name.clone(),
                    tag: tag.to_owned(),
                    reason: "a simulated tag holds finite numbers only".into(),
                });
            }
        };
        self.inner
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(position, TagValue::number(Utc::now(), number));
        Ok(())
    }

    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        let position = self.position(&request.tag)?;
        let signal = self.inner.signals[position];
        let cycle = self.cycle(position);
        let interval = self.inner.interval;
        let (start, end) = (request.range.start_us(), request.range.end_us());
        let mut first = start.div_euclid(interval) + i64::from(start.rem_euclid(interval) != 0);
        let mut last = end.div_euclid(interval);
        if request.boundary == Boundary::Outside {
            first -= i64::from(start.rem_euclid(interval) != 0);
            last += i64::from(end.rem_euclid(interval) != 0);
        }
        if let Some(max) = request.max_count {
            last = last.min(first.saturating_add(i64::try_from(max).unwrap_or(i64::MAX) - 1));
        }
        Ok(futures::stream::unfold(first, move |index| {
            let cycle = cycle.clone();
            async move {
                if index > last {
                    return None;
                }
                let end = last.min(index + CHUNK as i64 - 1);
                let chunk = match cycle {
                    Some(cycle) => from_cycle(&cycle, interval, index, end),
                    None => (index..=end)
                        .map(|i| {
                            let t = i * interval;
                            Sample::good(t, signal.value(t, i))
                        })
                        .collect(),
                };
                Some((Ok(chunk), end + 1))
            }
        })
        .boxed())
    }

    /// Every tag's every sample on the grid as its instant passes, checked every interval (at
    /// least every 100 ms); at most [`MAX_CHANGE_STEPS`] grid steps per check, so a stalled
    /// reader catches up with a gap rather than unbounded work.
    async fn changes(&self) -> Result<ChangeStream, SourceError> {
        let source = self.clone();
        let names: Arc<[Arc<str>]> = self
            .inner
            .tags
            .iter()
            .map(|t| Arc::from(t.name.as_str()))
            .collect();
        let interval = self.inner.interval;
        let every = Duration::from_micros(interval.max(100_000) as u64);
        let next = to_micros(Utc::now()).div_euclid(interval) + 1;
        Ok(futures::stream::unfold(next, move |mut next| {
            let (source, names) = (source.clone(), names.clone());
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let last = to_micros(Utc::now()).div_euclid(interval);
                    if last < next {
                        continue;
                    }
                    let from = next.max(last - MAX_CHANGE_STEPS + 1);
                    let mut values = Vec::new();
                    for index in from..=last {
                        let t = index * interval;
                        for (position, tag) in names.iter().enumerate() {
                            let signal = source.inner.signals[position];
                            values.push(Change {
                                tag: tag.clone(),
                                value: TagValue::from(Sample::good(t, signal.value(t, index))),
                            });
                        }
                    }
                    next = last + 1;
                    return Some((Changes { values, dropped: 0 }, next));
                }
            }
        })
        .boxed())
    }

    async fn events(&self, request: &EventsRequest) -> Result<EventPage, SourceError> {
        self.events_until(request, to_micros(Utc::now()))
    }

    /// The events of each sample instant as it passes, checked every interval (at least every
    /// 100 ms), from the moment of subscribing.
    async fn subscribe_events(&self) -> Result<EventStream, SourceError> {
        let source = self.clone();
        let every = Duration::from_micros(self.inner.interval.max(100_000) as u64);
        let since = Utc::now();
        Ok(
            futures::stream::unfold((None::<String>, false), move |(mut cursor, mut behind)| {
                let source = source.clone();
                async move {
                    loop {
                        if !behind {
                            tokio::time::sleep(every).await;
                        }
                        let now = Utc::now();
                        let request = EventsRequest {
                            range: uplink_model::TimeRange {
                                start: since,
                                end: now,
                            },
                            limit: EVENTS_PER_ITEM,
                            cursor: cursor.clone(),
                        };
                        let page = source.events_until(&request, to_micros(now)).ok()?;
                        behind = page.next.is_some();
                        if let Some(last) = page.events.last() {
                            cursor = Some(last.id.clone());
                            return Some((page.events, (cursor, behind)));
                        }
                    }
                }
            })
            .boxed(),
        )
    }

    /// The tags' current values every interval (at least every 100 ms); the tags are found
    /// once, here, so each item only computes values.
    async fn subscribe(&self, tags: &[String]) -> Result<SnapshotStream, SourceError> {
        let positions = tags
            .iter()
            .map(|tag| self.position(tag))
            .collect::<Result<Arc<[usize]>, _>>()?;
        let source = self.clone();
        let every = Duration::from_micros(self.inner.interval.max(100_000) as u64);
        Ok(futures::stream::unfold((), move |()| {
            let (source, positions) = (source.clone(), positions.clone());
            async move {
                tokio::time::sleep(every).await;
                Some((source.current(&positions), ()))
            }
        })
        .boxed())
    }
}

#[cfg(test)]
mod tests;
