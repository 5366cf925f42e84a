//! `uplink sources`: the data source kinds and their forms, and the data sources configured in
//! a connector's data dir.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Map, Value};
use uplink_connector::{ConfigStore, SourceConfig, SourceError, kinds};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print every data source kind with its form schema, as JSON.
    Kinds,
    /// List the configured data sources.
    List {
        /// The connector's data dir.
        #[arg(long, env = "UPLINK_DATA_DIR")]
        data_dir: PathBuf,
        /// Print the configuration as JSON (secret settings shown as ***).
        #[arg(long)]
        json: bool,
    },
    /// Add a data source, after validating its settings and opening it once.
    Add {
        /// The connector's data dir.
        #[arg(long, env = "UPLINK_DATA_DIR")]
        data_dir: PathBuf,
        /// A unique name (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// The kind (see `uplink sources kinds`).
        #[arg(long)]
        kind: String,
        /// What the source holds.
        #[arg(long, default_value = "")]
        description: String,
        /// A setting as FIELD=VALUE; repeat for each field.
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        settings: Vec<String>,
        /// Save without opening the source first (for a file that appears later).
        #[arg(long)]
        no_check: bool,
        /// A Modbus register map as a CSV file (header
        /// name,table,address,type,order,scale,offset,units,description): sets `registerMap`.
        #[arg(long, value_name = "CSV")]
        map_file: Option<PathBuf>,
    },
    /// Print a Modbus source's register map as CSV, to edit and add again with --map-file.
    ExportMap {
        /// The connector's data dir.
        #[arg(long, env = "UPLINK_DATA_DIR")]
        data_dir: PathBuf,
        /// The data source's name.
        name: String,
    },
    /// Trust the server certificate of a data source (an OPC UA server's): fetches it, shows
    /// its thumbprints and puts it on the connector's trust list.
    Trust {
        /// The connector's data dir.
        #[arg(long, env = "UPLINK_DATA_DIR")]
        data_dir: PathBuf,
        /// The data source's name.
        name: String,
        /// Trust only a certificate with this SHA-1 or SHA-256 thumbprint (hex), as the
        /// server's own screen shows it.
        #[arg(long)]
        thumbprint: Option<String>,
    },
    /// Remove a data source.
    Remove {
        /// The connector's data dir.
        #[arg(long, env = "UPLINK_DATA_DIR")]
        data_dir: PathBuf,
        /// The data source's name.
        name: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    ignore_closed_output(print(args).await)
}

async fn print(args: Args) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Kinds => {
            serde_json::to_writer_pretty(&mut out, &kinds::kinds())?;
            writeln!(out)?;
        }
        Command::List { data_dir, json } => {
            let (config, problem) = ConfigStore::new(&data_dir).load_or_recover()?;
            if let Some(problem) = problem {
                eprintln!("warning: {problem}");
            }
            if json {
                let sources: Vec<Value> = config
                    .sources
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "kind": s.kind, "description": s.description,
                            "settings": uplink_connector::kinds::redacted_settings(s),
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &sources)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{:<24} {:<10} DESCRIPTION", "NAME", "KIND")?;
                for source in &config.sources {
                    writeln!(
                        out,
                        "{:<24} {:<10} {}",
                        source.name, source.kind, source.description
                    )?;
                }
            }
        }
        Command::Add {
            data_dir,
            name,
            kind,
            description,
            settings,
            no_check,
            map_file,
        } => {
            let store = ConfigStore::new(&data_dir);
            let mut config = store.load()?;
            let mut settings = parse_settings(&settings)?;
            if let Some(path) = map_file {
                let map = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the map file {}", path.display()))?;
                // Checked here so that a bad row names the file's own lines, even with --no-check.
                uplink_source_modbus::parse_map(&map).map_err(explain)?;
                settings.insert(MAP_FIELD.into(), Value::String(map));
            }
            let source = SourceConfig {
                name,
                kind,
                description,
                settings,
            };
            let added = config.add_source(source).map_err(explain)?.clone();
            if !no_check {
                let context = uplink_connector::SourceContext::in_dir(&data_dir);
                let opened = kinds::open_without_recording(&added, &context)
                    .await
                    .map_err(explain)?;
                let health = opened.health();
                for issue in &health.issues {
                    eprintln!("warning: {issue}");
                }
            }
            store.save(&config)?;
            writeln!(out, "added data source '{}' ({})", added.name, added.kind)?;
        }
        Command::ExportMap { data_dir, name } => {
            let (config, _) = ConfigStore::new(&data_dir).load_or_recover()?;
            let source = config
                .sources
                .iter()
                .find(|s| s.name == name)
                .with_context(|| format!("no data source named '{name}' is configured"))?;
            let Some(Value::String(map)) = source.settings.get(MAP_FIELD) else {
                anyhow::bail!("data source '{name}' ({}) has no register map", source.kind);
            };
            let map = uplink_source_modbus::parse_map(map).map_err(explain)?;
            out.write_all(map.to_csv().as_bytes())?;
        }
        Command::Trust {
            data_dir,
            name,
            thumbprint,
        } => {
            let config = ConfigStore::new(&data_dir).load()?;
            let source = config.source(&name).map_err(explain)?;
            let context = uplink_connector::SourceContext::in_dir(&data_dir);
            let thumbprints = kinds::trust_server(source, &context, thumbprint.as_deref())
                .await
                .map_err(explain)?;
            writeln!(
                out,
                "trusted the server certificate of '{name}' ({thumbprints})"
            )?;
        }
        Command::Remove { data_dir, name } => {
            let store = ConfigStore::new(&data_dir);
            let mut config = store.load()?;
            let removed = config.remove_source(&name)?;
            store.save(&config)?;
            writeln!(out, "removed data source '{}'", removed.name)?;
        }
    }
    Ok(())
}

/// The Modbus form's register map field.
const MAP_FIELD: &str = "registerMap";

/// A reader that stopped early (`| head`) is not an error.
pub fn ignore_closed_output(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(err) if is_broken_pipe(&err) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// `FIELD=VALUE` pairs as a settings object (values stay text; the kind's form converts them).
fn parse_settings(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    pairs
        .iter()
        .map(|pair| {
            let (field, value) = pair
                .split_once('=')
                .with_context(|| format!("--set {pair}: expected FIELD=VALUE"))?;
            Ok((field.trim().to_owned(), Value::String(value.to_owned())))
        })
        .collect()
}

/// Field errors one per line, so a person sees every problem at once.
pub fn explain(err: SourceError) -> anyhow::Error {
    if err.field_errors().is_empty() {
        return err.into();
    }
    let lines: Vec<String> = err
        .field_errors()
        .iter()
        .map(|e| format!("  {}: {}", e.field, e.message))
        .collect();
    anyhow::anyhow!("the settings are not valid:\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_pairs_stay_text_for_the_form_to_convert() {
        let settings = parse_settings(&["seed=7".into(), "path=/data/a=b.csv".into()]).unwrap();
        assert_eq!(settings["seed"], "7");
        assert_eq!(settings["path"], "/data/a=b.csv");
        let err = parse_settings(&["seed".into()]).unwrap_err();
        assert!(err.to_string().contains("expected FIELD=VALUE"), "{err}");
    }

    #[test]
    fn field_errors_are_listed_one_per_line() {
        let err = explain(SourceError::InvalidSettings(vec![
            uplink_connector::form::FieldError::new("path", "is required"),
            uplink_connector::form::FieldError::new("seed", "must be a whole number"),
        ]));
        assert_eq!(
            err.to_string(),
            "the settings are not valid:\n  path: is required\n  seed: must be a whole number"
        );
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        let closed = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(ignore_closed_output(Err(closed.into())).is_ok());
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(ignore_closed_output(Err(other.into())).is_err());
    }
}
