//! `uplink query`: run a search, snapshot, raw, plot, values-at-times, processed or events query
//! against a configured data source and print a table or JSON — the same check the UI's "Test"
//! runs.

use std::io::{self, Write};
use std::path::PathBuf;

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use serde::Serialize;
use uplink_connector::{ConfigStore, ConnectorConfig, DataSource, HealthState, kinds};
use uplink_model::time_expr::{self, Span};
use uplink_model::{
    AtTimesQuery, Boundary, ComputedBy, EventsQuery, Function, PlotQuery, ProcessedQuery,
    ProcessedSeries, RawQuery, Sample, SnapshotQuery, TagSearch, TagValue, TimeExpr,
};

use crate::sources::{explain, ignore_closed_output};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The connector's data dir; without it, the embedded default (a simulated source).
    #[arg(long, env = "UPLINK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The data source to query.
    #[arg(long, default_value = "simulated")]
    source: String,
    /// Print JSON (the app API's shapes) instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    query: Query,
}

#[derive(Debug, clap::Subcommand)]
enum Query {
    /// Tags whose names match a pattern (`*` any run, `?` one character).
    Search {
        /// The name pattern.
        #[arg(default_value = "*")]
        pattern: String,
        /// Matches to skip (the previous page's next offset).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// The most tags to print.
        #[arg(long, default_value_t = TagSearch::DEFAULT_LIMIT)]
        limit: u32,
    },
    /// The current value of each tag.
    Snapshot {
        /// Tag names.
        #[arg(required = true)]
        tags: Vec<String>,
        /// Keep printing new values as they come (pushed by sources that can, else polled
        /// every second) until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// Stored values in a range.
    Raw {
        /// Tag name.
        tag: String,
        #[command(flatten)]
        range: Range,
        /// The most values to print.
        #[arg(long)]
        max_count: Option<u64>,
        /// Also the values just outside the range.
        #[arg(long)]
        outside: bool,
    },
    /// Shape-preserving down-sampling into equal intervals.
    Plot {
        /// Tag name.
        tag: String,
        #[command(flatten)]
        range: Range,
        /// Number of intervals.
        #[arg(long, default_value_t = 10)]
        intervals: u32,
    },
    /// Interpolated values at given times.
    AtTimes {
        /// Tag name.
        tag: String,
        /// A time (repeat for more), absolute or relative such as *-1h.
        #[arg(long = "time", required = true)]
        times: Vec<String>,
    },
    /// Functions (AVG, MIN, MAX, TIMEAVERAGE, COUNT…) over fixed intervals.
    Processed {
        /// Tag name.
        tag: String,
        #[command(flatten)]
        range: Range,
        /// Interval length such as 10m or 1h.
        #[arg(long, default_value = "1h")]
        interval: String,
        /// Functions, comma separated or repeated.
        #[arg(long = "function", value_delimiter = ',', default_value = "AVG")]
        functions: Vec<String>,
    },
    /// Alarms and events in a range, oldest first, a page at a time (an MQTT source's from its
    /// event journal, as the connector recorded them).
    Events {
        #[command(flatten)]
        range: Range,
        /// The most events in the page.
        #[arg(long, default_value_t = EventsQuery::DEFAULT_LIMIT)]
        limit: u32,
        /// Start after this: the previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct Range {
    /// Start: RFC 3339 or relative (*-8h, DAY, MONTH+1w).
    #[arg(long, default_value = "*-1h", allow_hyphen_values = true)]
    start: String,
    /// End: RFC 3339 or relative.
    #[arg(long, default_value = "*", allow_hyphen_values = true)]
    end: String,
}

impl Range {
    fn parse(&self) -> anyhow::Result<(TimeExpr, TimeExpr)> {
        let parse = |flag: &str, text: &str| {
            time_expr::parse(text).map_err(|err| anyhow::anyhow!("{flag}: {err}"))
        };
        Ok((parse("--start", &self.start)?, parse("--end", &self.end)?))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.data_dir {
        Some(dir) => ConfigStore::new(dir).load()?,
        None => ConnectorConfig::default(),
    };
    let context = uplink_connector::SourceContext {
        data_dir: args.data_dir.clone(),
        retry_unreachable: false,
    };
    // A recorded source without history of its own answers history from its recording, as
    // the connector does (read-only: the connector may be writing to it).
    let source = kinds::open_for_reading(config.source(&args.source)?, &context)
        .await
        .map_err(explain)?;
    let result = print(&*source, args.query, args.json).await;
    let health = source.health();
    if health.state != HealthState::Ok {
        eprintln!(
            "warning: data source '{}' is {} ({} problem(s)):",
            args.source, health.state, health.issue_count
        );
        for issue in health.issues.iter().take(10) {
            eprintln!("  {issue}");
        }
    }
    ignore_closed_output(result)
}

async fn print(source: &dyn DataSource, query: Query, json: bool) -> anyhow::Result<()> {
    // Samples are kept to the microsecond, so "now" is too.
    let now = time_expr::from_micros(time_expr::to_micros(Utc::now()));
    let mut out = io::BufWriter::new(io::stdout().lock());
    match query {
        Query::Search {
            pattern,
            offset,
            limit,
        } => {
            let page = source
                .search(&TagSearch {
                    pattern,
                    offset,
                    limit,
                })
                .await?;
            if json {
                json_line(&mut out, &page)?;
            } else {
                writeln!(
                    out,
                    "{:<32} {:<8} {:<8} DESCRIPTION",
                    "TAG", "TYPE", "UNITS"
                )?;
                for tag in &page.tags {
                    let data_type = serde_json::to_value(tag.data_type)?;
                    writeln!(
                        out,
                        "{:<32} {:<8} {:<8} {}",
                        tag.name,
                        data_type.as_str().unwrap_or_default(),
                        tag.units,
                        tag.description
                    )?;
                }
                if let Some(next) = page.next_offset {
                    writeln!(out, "(more: --offset {next})")?;
                }
            }
        }
        Query::Snapshot { tags, follow } => {
            let query = SnapshotQuery { tags };
            query.validate()?;
            let values = source.snapshot(&query.tags).await?;
            if !json {
                writeln!(out, "{:<24} {:<30} {:>16} STATUS", "TAG", "TIME", "VALUE")?;
            }
            print_snapshot(&mut out, &query.tags, &values, json)?;
            if follow {
                out.flush()?;
                let mut updates = match source.subscribe(&query.tags).await {
                    Ok(pushed) => pushed,
                    Err(uplink_connector::SourceError::Unsupported { .. }) => {
                        polled(source, &query.tags)
                    }
                    Err(err) => return Err(err.into()),
                };
                loop {
                    tokio::select! {
                        update = updates.next() => match update {
                            Some(values) => {
                                print_snapshot(&mut out, &query.tags, &values, json)?;
                                out.flush()?;
                            }
                            None => break,
                        },
                        _ = tokio::signal::ctrl_c() => break,
                    }
                }
            }
        }
        Query::Raw {
            tag,
            range,
            max_count,
            outside,
        } => {
            let (start, end) = range.parse()?;
            let request = RawQuery {
                tag,
                start,
                end,
                max_count,
                boundary: if outside {
                    Boundary::Outside
                } else {
                    Boundary::Inside
                },
            }
            .resolve(now)?;
            let mut stream = source.raw(&request).await?;
            let mut table = Values::start(&mut out, json)?;
            while let Some(chunk) = stream.next().await {
                table.rows(&mut out, &chunk?)?;
            }
            table.finish(&mut out)?;
        }
        Query::Plot {
            tag,
            range,
            intervals,
        } => {
            let (start, end) = range.parse()?;
            let request = PlotQuery {
                tag,
                start,
                end,
                intervals,
            }
            .resolve(now)?;
            let answer = source.plot(&request).await?;
            computed_by(answer.by);
            let points = answer.values;
            let mut table = Values::start(&mut out, json)?;
            table.rows(&mut out, &points)?;
            table.finish(&mut out)?;
        }
        Query::AtTimes { tag, times } => {
            let times = times
                .iter()
                .map(|t| time_expr::parse(t).map_err(|err| anyhow::anyhow!("--time: {err}")))
                .collect::<anyhow::Result<_>>()?;
            let request = AtTimesQuery { tag, times }.resolve(now)?;
            let answer = source.at_times(&request).await?;
            computed_by(answer.by);
            let values = answer.values;
            let mut table = Values::start(&mut out, json)?;
            table.rows(&mut out, &values)?;
            table.finish(&mut out)?;
        }
        Query::Processed {
            tag,
            range,
            interval,
            functions,
        } => {
            let (start, end) = range.parse()?;
            let interval: Span = interval
                .parse()
                .map_err(|err| anyhow::anyhow!("--interval: {err}"))?;
            let functions = functions
                .iter()
                .map(|f| f.parse::<Function>())
                .collect::<Result<Vec<_>, _>>()?;
            let request = ProcessedQuery {
                tag,
                start,
                end,
                interval,
                functions,
            }
            .resolve(now)?;
            let answer = source.processed(&request).await?;
            computed_by(answer.by);
            let series = answer.values;
            if json {
                let series: Vec<ProcessedSeries> = series
                    .into_iter()
                    .map(|(function, samples)| ProcessedSeries {
                        function,
                        values: samples.into_iter().map(TagValue::from).collect(),
                    })
                    .collect();
                json_line(&mut out, &series)?;
            } else {
                write!(out, "{:<30}", "INTERVAL START")?;
                for (function, _) in &series {
                    write!(out, " {:>22}", function.name())?;
                }
                writeln!(out)?;
                let rows = series.first().map_or(0, |(_, s)| s.len());
                for row in 0..rows {
                    write!(out, "{:<30}", time(&TagValue::from(series[0].1[row])))?;
                    for (_, samples) in &series {
                        let value = TagValue::from(samples[row]);
                        let shown = match value.status {
                            uplink_model::Status::Good => number(value.value),
                            status => format!("{} ({status})", number(value.value)),
                        };
                        write!(out, " {shown:>22}")?;
                    }
                    writeln!(out)?;
                }
            }
        }
        Query::Events {
            range,
            limit,
            cursor,
        } => {
            let (start, end) = range.parse()?;
            let request = EventsQuery {
                start,
                end,
                limit: Some(limit),
                cursor,
            }
            .resolve(now)?;
            let page = source.events(&request).await?;
            if json {
                json_line(&mut out, &page)?;
            } else {
                writeln!(
                    out,
                    "{:<30} {:<8} {:<16} {:<24} MESSAGE",
                    "TIME", "PRIORITY", "TYPE", "TOPIC"
                )?;
                for event in &page.events {
                    writeln!(
                        out,
                        "{:<30} {:<8} {:<16} {:<24} {}",
                        event.time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                        event.priority.as_str(),
                        event.event_type,
                        event.topic,
                        event.message
                    )?;
                }
                if page.events.is_empty() {
                    writeln!(out, "(no events)")?;
                }
                if let Some(next) = &page.next {
                    writeln!(out, "(more: --cursor {next})")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Current values every second, for sources that do not push.
fn polled<'a>(
    source: &'a dyn DataSource,
    tags: &'a [String],
) -> futures::stream::BoxStream<'a, Vec<TagValue>> {
    futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        source.snapshot(tags).await.ok().map(|values| (values, ()))
    })
    .boxed()
}

fn print_snapshot(
    out: &mut impl Write,
    tags: &[String],
    values: &[TagValue],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        #[derive(Serialize)]
        struct Named<'a> {
            tag: &'a str,
            #[serde(flatten)]
            value: &'a TagValue,
        }
        let named: Vec<Named> = tags
            .iter()
            .zip(values)
            .map(|(tag, value)| Named { tag, value })
            .collect();
        return json_line(out, &named);
    }
    for (tag, value) in tags.iter().zip(values) {
        writeln!(
            out,
            "{tag:<24} {:<30} {:>16} {}",
            time(value),
            number(value.value),
            value.status
        )?;
    }
    Ok(())
}

/// Values printed as they arrive: table rows, or the items of one JSON array.
struct Values {
    json: bool,
    first: bool,
}

impl Values {
    fn start(out: &mut impl Write, json: bool) -> io::Result<Self> {
        if json {
            write!(out, "[")?;
        } else {
            writeln!(out, "{:<30} {:>16} STATUS", "TIME", "VALUE")?;
        }
        Ok(Self { json, first: true })
    }

    fn rows(&mut self, out: &mut impl Write, samples: &[Sample]) -> anyhow::Result<()> {
        for &sample in samples {
            let value = TagValue::from(sample);
            if self.json {
                if !self.first {
                    write!(out, ",")?;
                }
                serde_json::to_writer(&mut *out, &value)?;
            } else {
                writeln!(
                    out,
                    "{:<30} {:>16} {}",
                    time(&value),
                    number(value.value),
                    value.status
                )?;
            }
            self.first = false;
        }
        Ok(())
    }

    fn finish(self, out: &mut impl Write) -> io::Result<()> {
        if self.json {
            writeln!(out, "]")?;
        } else if self.first {
            writeln!(out, "(no values)")?;
        }
        Ok(())
    }
}

/// Says on stderr (stdout keeps the app API's shapes) who computed the answer: the data source
/// itself, or Uplink from raw values — what apps see as the `Uplink-Computed-By` header.
fn computed_by(by: ComputedBy) {
    match by {
        ComputedBy::Source => eprintln!("computed by: source (the data source answered it itself)"),
        ComputedBy::Uplink => eprintln!("computed by: uplink (from the source's raw values)"),
    }
}

fn json_line(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

fn time(value: &TagValue) -> String {
    value.time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.6}"),
    }
}
