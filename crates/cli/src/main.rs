//! `uplink`: the headless face of Uplink. Every subcommand lives in its own module with an
//! `Args` struct and a `run` function; this file only dispatches.

mod config_file;
mod connector;
mod demo;
mod hub;
mod query;
mod service;
mod serving_mark;
mod sources;
mod ui;

use clap::{CommandFactory, Parser, Subcommand};

/// Uplink moves a plant's process data off site safely: a connector on site keeps an
/// outbound, encrypted link to a hub, and apps read only what the data owner granted.
#[derive(Debug, Parser)]
#[command(name = "uplink", version, about, long_about = None)]
struct Cli {
    /// How log lines on standard error look: `text`, or `json` (one object per line, for
    /// journald and log shippers). Log files in the data folder are always text.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "UPLINK_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormatArg,
    /// Which events are logged: `error`, `warn`, `info`, `debug`, `trace`, or per module
    /// (`info,uplink_hub=debug`). A reload (SIGHUP, or the configuration file changing) applies
    /// a new one; `RUST_LOG`, when set, wins.
    #[arg(
        long,
        global = true,
        env = "UPLINK_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL",
        value_parser = log_level
    )]
    log_level: String,
    /// A TOML file of `uplink hub serve`'s or `uplink connector run`'s flags, one key per flag
    /// (`listen = "0.0.0.0:8443"`); flags and environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

fn log_level(value: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_owned())
        .map_err(|error| format!("not a log level: {error}"))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for uplink_logs::LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Text => Self::Text,
            LogFormatArg::Json => Self::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the connector's web UI on loopback for a browser (for machines without a desktop).
    Ui(ui::Args),
    /// List data source kinds, and add, list or remove a connector's data sources.
    Sources(sources::Args),
    /// Query a configured data source: search, snapshot, raw, plot, at-times, processed.
    Query(query::Args),
    /// Serve the hub (the app store: accounts, OAuth2, consent, grants) or administer it.
    // Boxed: the hub's serve flags make its arguments much larger than the others'.
    Hub(Box<hub::Args>),
    /// Run the site connector headless, sign it in to a hub, show its status, edit its local veto.
    Connector(connector::Args),
    /// A hub, a connector with a simulated data source and a demo app, on loopback in one process.
    Demo(demo::Args),
}

fn main() -> std::process::ExitCode {
    let arguments: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv = match config_file::expand(arguments.clone(), &Cli::command()) {
        Ok(argv) => argv,
        Err(error) => {
            eprintln!("error: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(argv);
    // Logs go to standard error, and for a serving hub or connector also to rolling files in
    // its data dir (`logs/uplink-hub.log`, `logs/uplink-connector.log`), secrets redacted.
    let (program, data_dir) = match &cli.command {
        Command::Hub(args) => ("uplink-hub", args.serving_data_dir()),
        Command::Connector(args) => ("uplink-connector", args.serving_data_dir()),
        _ => ("uplink", None),
    };
    let installed =
        uplink_logs::init_with(program, data_dir, cli.log_format.into(), &cli.log_level);
    if let Some(path) = installed.as_ref().and_then(|i| i.file.as_ref()) {
        tracing::info!(path = %path.display(), "logging to a file");
    }
    service::remember(arguments, installed.map(|i| i.level));
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(dispatch(cli.command)));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain of causes on one line, for a person; no backtrace.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ui(args) => ui::run(args).await,
        Command::Sources(args) => sources::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Hub(args) => hub::run(*args).await,
        Command::Connector(args) => connector::run(args).await,
        Command::Demo(args) => demo::run(args).await,
    }
}
