//! `uplink hub`: serve the hub, and administer its users, apps, connectors and data sources.
//! Lists and created credentials go to standard output (the command's answer); logs go to
//! standard error.
#![allow(clippy::print_stdout)]

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args as ClapArgs, Subcommand};
use uplink_hub::store::DatabaseUrl;
use uplink_hub::{Hub, HubConfig, NewApp};

#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<HubCommand>,
    /// With no subcommand, `uplink hub` serves.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Clone, ClapArgs)]
struct DataDir {
    /// The hub's data directory (its SQLite store, token keys and loopback certificates).
    #[arg(long, env = "UPLINK_HUB_DATA_DIR", default_value = "uplink-hub-data")]
    data_dir: PathBuf,
    /// Keep the hub's state in this PostgreSQL database instead of SQLite in the data
    /// directory (postgres://USER:PASSWORD@HOST:PORT/DATABASE; see docs/cluster.md). The token
    /// keys stay in the data directory.
    #[arg(
        long,
        value_name = "URL",
        env = "UPLINK_HUB_DATABASE",
        hide_env_values = true,
        value_parser = DatabaseUrlParser
    )]
    database: Option<DatabaseUrl>,
}

/// Parses `--database` without ever echoing the value (clap's own errors quote it, and the
/// URL may carry a password).
#[derive(Debug, Clone, Copy)]
struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = DatabaseUrl;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<DatabaseUrl, clap::Error> {
        let invalid = |message: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--database: {message}\n"),
            )
        };
        value
            .to_str()
            .ok_or_else(|| invalid("the URL is not UTF-8".into()))?
            .parse()
            .map_err(|e: uplink_hub::HubError| invalid(e.to_string()))
    }
}

#[derive(Debug, Subcommand)]
enum HubCommand {
    /// Serve the hub over HTTPS.
    Serve(ServeArgs),
    /// People who sign in to the hub.
    #[command(subcommand)]
    User(UserCommand),
    /// Apps (OAuth2 clients) that may ask users for access.
    #[command(subcommand)]
    App(AppCommand),
    /// Site connectors and their owners.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Data sources of connectors (until connectors report them over their link).
    #[command(subcommand)]
    Source(SourceCommand),
    /// Users' accounts: balances and the ledger (amounts in whole minor units, e.g. cents).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Access-token encryption keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Configuration files (`--config FILE`).
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Add money to a user's account.
    Credit {
        #[command(flatten)]
        dir: DataDir,
        /// Sign-in name.
        username: String,
        /// Whole minor units of the hub's currency (1000 is 10.00 EUR).
        amount: i64,
        /// What it is for, kept in the ledger.
        #[arg(long, default_value = "credit by the operator")]
        note: String,
    },
    /// Take money from a user's account (never below zero).
    Debit {
        #[command(flatten)]
        dir: DataDir,
        /// Sign-in name.
        username: String,
        /// Whole minor units of the hub's currency.
        amount: i64,
        /// What it is for, kept in the ledger.
        #[arg(long, default_value = "debit by the operator")]
        note: String,
    },
    /// A user's balance, the apps allowed to debit it, and the ledger.
    Show {
        #[command(flatten)]
        dir: DataDir,
        /// Sign-in name.
        username: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
enum ConfigCommand {
    /// Checks a configuration file of `uplink hub serve`: names the key and line of each problem.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, ClapArgs)]
struct ServeArgs {
    #[command(flatten)]
    dir: DataDir,
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// PEM certificate chain; without it, a loopback CA in the data directory signs one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The public https origin apps and browsers use (the OAuth issuer); defaults to
    /// https://<listen address>.
    #[arg(long)]
    issuer: Option<String>,
    /// The most connector links served at once; a connector beyond it is refused with 503
    /// and retries later. Each link holds a file descriptor: keep the open-file limit above it.
    #[arg(long, default_value_t = uplink_hub::hub::DEFAULT_MAX_CONNECTORS, value_parser = at_least_one)]
    max_connectors: usize,
    /// Seconds a connector link may stay open without registering before the hub closes it,
    /// so a link that authenticates and then idles cannot hold one of the --max-connectors.
    #[arg(long, value_name = "SECONDS", default_value_t = uplink_hub::hub::DEFAULT_REGISTER_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    register_timeout: u64,
    /// Address of the Prometheus metrics listener (plain HTTP, `GET /metrics`), or `off`.
    /// Keep it on loopback or a private network: the public port never serves metrics.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:9464")]
    metrics_listen: crate::service::MetricsListen,
    /// The NATS server joining this hub to its other replicas (`nats://host:4222`; see
    /// docs/cluster.md): queries for connectors linked to another replica are relayed there,
    /// revokes reach every replica at once. Without it the hub serves alone.
    #[arg(long, value_name = "nats://HOST:PORT")]
    backplane: Option<String>,
    /// Boxed: the limits would make every `uplink` command's arguments as large as the hub's.
    #[command(flatten)]
    limits: Box<LimitArgs>,
    /// Boxed for the same reason.
    #[command(flatten)]
    billing: Box<BillingArgs>,
}

/// How the hub bills users for apps' usage (`account.debit`; docs/api.md, "Billing").
#[derive(Debug, Clone, ClapArgs)]
struct BillingArgs {
    /// The hub's one currency (ISO 4217 code), shown with every amount.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Digits of the currency's minor unit (2: amounts are cents).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=4))]
    currency_digits: u32,
    /// The monthly spending limit the consent page starts from when the app suggests none,
    /// in whole minor units.
    #[arg(long, default_value_t = 500)]
    default_spending_limit: i64,
    /// Days after a debit during which the app may refund it.
    #[arg(long, default_value_t = 30)]
    refund_window_days: i64,
}

impl BillingArgs {
    fn apply(&self, config: &mut HubConfig) {
        config.billing = uplink_hub::billing::BillingConfig {
            currency: self.currency.clone(),
            minor_digits: self.currency_digits,
            default_monthly_limit: self
                .default_spending_limit
                .clamp(0, uplink_hub::billing::MAX_AMOUNT),
            refund_window: self.refund_window_days.max(0) * 86_400,
        };
    }
}

/// What a client may hold of the hub's HTTPS server (`docs/hardening.md`).
#[derive(Debug, Clone, ClapArgs)]
struct LimitArgs {
    /// The most HTTPS connections served at once (apps, browsers and connectors); one more is
    /// closed as soon as it is accepted, and those being served are unaffected.
    #[arg(long, default_value_t = uplink_tls::ServeLimits::default().max_connections, value_parser = at_least_one)]
    max_connections: usize,
    /// Seconds a connection may wait for a request's headers, idle or trickling, before it is
    /// closed.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    header_timeout: std::time::Duration,
    /// Seconds a connection's writes may make no progress (a client that does not read its
    /// response) before it is closed.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    send_timeout: std::time::Duration,
    /// Largest request head (request line and headers) in bytes; a larger one gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = uplink_tls::ServeLimits::default().max_header_bytes, value_parser = at_least_one)]
    max_header_bytes: usize,
    /// Most header fields in one request; more get 431.
    #[arg(long, default_value_t = uplink_tls::ServeLimits::default().max_headers, value_parser = at_least_one)]
    max_headers: usize,
    /// Largest body in bytes for OAuth requests and the hub's forms; a larger one gets 413.
    #[arg(long, value_name = "BYTES", default_value_t = uplink_hub::body_limit::BodyLimits::default().form_bytes)]
    max_form_body: usize,
    /// Largest body in bytes for the app data API (a query as JSON); a larger one gets 413.
    #[arg(long, value_name = "BYTES", default_value_t = uplink_hub::body_limit::BodyLimits::default().api_bytes)]
    max_api_body: usize,
    /// Seconds a request body may take to arrive in full; a slower one gets 408.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    body_timeout: std::time::Duration,
    /// The most live-value streams one sign-in (an app's access-token family) may have open at
    /// once, event streams and app-hub streams together; one more gets 429.
    #[arg(long, default_value_t = uplink_hub::hub::DEFAULT_MAX_LIVE_STREAMS_PER_SIGN_IN, value_parser = at_least_one)]
    max_live_streams_per_sign_in: usize,
    /// The most live-value streams open at once on one connector's data sources, all apps
    /// together; one more gets 429.
    #[arg(long, default_value_t = uplink_hub::hub::DEFAULT_MAX_LIVE_STREAMS_PER_CONNECTOR, value_parser = at_least_one)]
    max_live_streams_per_connector: usize,
}

impl LimitArgs {
    fn apply(&self, config: &mut HubConfig) {
        let serving = &mut config.serving;
        serving.max_connections = self.max_connections;
        serving.header_read_timeout = self.header_timeout;
        serving.send_timeout = self.send_timeout;
        serving.max_header_bytes = self.max_header_bytes;
        serving.max_headers = self.max_headers;
        config.bodies.form_bytes = self.max_form_body;
        config.bodies.api_bytes = self.max_api_body;
        config.bodies.read_timeout = self.body_timeout;
        config.max_live_streams_per_sign_in = self.max_live_streams_per_sign_in;
        config.max_live_streams_per_connector = self.max_live_streams_per_connector;
    }
}

/// A positive number of seconds, fractions allowed.
fn seconds(value: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be more than 0 seconds".into());
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// Sign-in name.
        username: String,
        /// Display name, shown to apps granted `profile`.
        #[arg(long)]
        name: Option<String>,
        /// Email address, shown to apps granted `email`.
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a user's display name or email (an empty value clears it).
    Set {
        #[command(flatten)]
        dir: DataDir,
        /// Sign-in name.
        username: String,
        /// Display name, shown to apps granted `profile`.
        #[arg(long)]
        name: Option<String>,
        /// Email address, shown to apps granted `email`.
        #[arg(long)]
        email: Option<String>,
    },
    /// List users.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Set a user's password (read from standard input); signs out their browsers and revokes
    /// every sign-in made with the old one (a running hub closes their links at once).
    Passwd {
        #[command(flatten)]
        dir: DataDir,
        /// Sign-in name.
        username: String,
    },
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Register an app; prints its client id and, for a confidential app, its secret (once).
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// Name shown to users on the consent page.
        #[arg(long)]
        name: String,
        /// Client id to use (default: generated).
        #[arg(long)]
        client_id: Option<String>,
        /// A public app (native or browser): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// An exact redirect URI (repeat for several).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A scope the app may ask for (repeat; default: tags.read and data.read).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Let the app ask for scope `connector` (pass --scope connector too): its users could
        /// then sign it in as their site connector. Only for a connector's own client.
        #[arg(long)]
        allow_connector_scope: bool,
    },
    /// List apps.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Remove an app, revoking everything it was granted (a running hub acts on it at once).
    Remove {
        #[command(flatten)]
        dir: DataDir,
        /// Its client id.
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectorCommand {
    /// Register a connector for a user; prints its id and credential (once).
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// The owning user's name.
        #[arg(long)]
        owner: String,
        /// Display name, e.g. the site.
        #[arg(long)]
        name: String,
    },
    /// List connectors.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Remove a connector, revoking grants on its data sources and the sign-in that created it
    /// (a running hub closes its link at once); its id cannot be registered again.
    Remove {
        #[command(flatten)]
        dir: DataDir,
        /// Its id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum SourceCommand {
    /// Add a data source to a connector; prints its id.
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// The connector's id.
        #[arg(long)]
        connector: String,
        /// Name, unique per connector.
        #[arg(long)]
        name: String,
        /// What it holds.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List data sources.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a new access-token key current; tokens made with older keys stay valid until expiry.
    Rotate {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Make a new ID-token signing key current (OpenID Connect); the old one stays in the
    /// JWKS until the ID tokens it signed have expired. Running hubs on the same store sign
    /// with it at once.
    RotateIdToken {
        #[command(flatten)]
        dir: DataDir,
    },
}

impl Args {
    /// The data dir of a hub this command serves (its log files go there); `None` for an
    /// admin command, whose few lines go to standard error only.
    pub fn serving_data_dir(&self) -> Option<&Path> {
        match &self.command {
            None => Some(&self.serve.dir.data_dir),
            Some(HubCommand::Serve(serve)) => Some(&serve.dir.data_dir),
            Some(_) => None,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        None => serve(args.serve).await,
        Some(HubCommand::Serve(serve_args)) => serve(serve_args).await,
        Some(HubCommand::User(cmd)) => user(cmd).await,
        Some(HubCommand::App(cmd)) => app(cmd).await,
        Some(HubCommand::Connector(cmd)) => connector(cmd).await,
        Some(HubCommand::Source(cmd)) => source(cmd).await,
        Some(HubCommand::Account(cmd)) => account(cmd).await,
        Some(HubCommand::Config(ConfigCommand::Check { file })) => {
            let root = <crate::Cli as clap::CommandFactory>::command();
            let problems = crate::config_file::check_file(&file, &root)?;
            if problems.is_empty() {
                println!("{}: ok", file.display());
                return Ok(());
            }
            for problem in &problems {
                eprintln!("{}: {problem}", file.display());
            }
            anyhow::bail!("{} problem(s) in {}", problems.len(), file.display())
        }
        Some(HubCommand::Key(KeyCommand::Rotate { dir })) => {
            let hub = open(&dir).await?;
            // Recorded in the change feed too: running hubs on the same store re-read the file.
            let id = hub.rotate_token_key().await?;
            println!("current key: {id}");
            Ok(())
        }
        Some(HubCommand::Key(KeyCommand::RotateIdToken { dir })) => {
            let hub = open(&dir).await?;
            // Recorded in the change feed too: running hubs on the same store re-read the file.
            let id = hub.rotate_id_token_key().await?;
            println!("current ID-token key: {id}");
            Ok(())
        }
    }
}

/// Admin commands need no issuer; they never mint tokens.
async fn open(dir: &DataDir) -> anyhow::Result<Hub> {
    Hub::open_on(
        &dir.data_dir,
        dir.database.as_ref(),
        HubConfig::new("https://admin.invalid"),
    )
    .await
    .with_context(|| store_context(dir))
}

/// What a failure to open the store names: the database (its password hidden) or the folder.
fn store_context(dir: &DataDir) -> String {
    match &dir.database {
        Some(url) => format!("cannot open the hub store {url}"),
        None => format!("cannot open the hub store in {}", dir.data_dir.display()),
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

async fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            dir,
            username,
            name,
            email,
        } => {
            let hub = open(&dir).await?;
            let mut user = hub.add_user(&username, read_password()?).await?;
            if name.is_some() || email.is_some() {
                user = hub
                    .set_profile(&username, name.as_deref(), email.as_deref())
                    .await?;
            }
            println!("{}", user_line(&user));
        }
        UserCommand::Set {
            dir,
            username,
            name,
            email,
        } => {
            anyhow::ensure!(
                name.is_some() || email.is_some(),
                "nothing to set: give --name or --email"
            );
            let hub = open(&dir).await?;
            let user = hub
                .set_profile(&username, name.as_deref(), email.as_deref())
                .await?;
            println!("{}", user_line(&user));
        }
        UserCommand::List { dir } => {
            let hub = open(&dir).await?;
            for u in hub.store.users().await? {
                println!("{}", user_line(&u));
            }
        }
        UserCommand::Passwd { dir, username } => {
            let hub = open(&dir).await?;
            hub.set_password(&username, read_password()?).await?;
            println!("password changed for {username}");
        }
    }
    Ok(())
}

async fn account(cmd: AccountCommand) -> anyhow::Result<()> {
    use uplink_hub::store::TxKind;
    let (dir, username, kind, amount, note) = match cmd {
        AccountCommand::Credit {
            dir,
            username,
            amount,
            note,
        } => (dir, username, TxKind::Credit, amount, note),
        AccountCommand::Debit {
            dir,
            username,
            amount,
            note,
        } => (dir, username, TxKind::Debit, amount, note),
        AccountCommand::Show { dir, username } => {
            let hub = open(&dir).await?;
            let user = hub.user_named(&username).await?;
            let billing = &hub.config.billing;
            let now = uplink_hub::billing::period_start(unix_now());
            let balance = hub.store.balance(&user.id).await?;
            println!(
                "balance: {balance} ({} {})",
                billing.format(balance),
                billing.currency
            );
            for a in hub.store.allowances_of(&user.id, now).await? {
                println!(
                    "app: {}\tlimit {}\tspent this month {}",
                    a.grant.app_id,
                    a.grant
                        .monthly_limit
                        .map_or("none".to_owned(), |l| l.to_string()),
                    a.spent
                );
            }
            for e in hub.store.transactions(&user.id, None).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.id,
                    e.at,
                    e.kind.as_str(),
                    e.amount,
                    e.app_id.as_deref().unwrap_or("-"),
                    e.description
                );
            }
            return Ok(());
        }
    };
    let hub = open(&dir).await?;
    let entry = hub.operator_entry(&username, kind, amount, &note).await?;
    let balance = hub.store.balance(&entry.user_id).await?;
    println!("transaction: {}", entry.id);
    println!("balance: {balance}");
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A user as the admin commands print them: id, sign-in name, then display name and email
/// when set (tab-separated).
fn user_line(u: &uplink_hub::store::User) -> String {
    let mut line = format!("{}\t{}", u.id, u.username);
    if u.display_name.is_some() || u.email.is_some() {
        line.push_str(&format!(
            "\t{}\t{}",
            u.display_name.as_deref().unwrap_or(""),
            u.email.as_deref().unwrap_or("")
        ));
    }
    line
}

async fn app(cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Add {
            dir,
            name,
            client_id,
            public,
            redirect_uris,
            scopes,
            allow_connector_scope,
        } => {
            let hub = open(&dir).await?;
            let scopes: Vec<String> = if scopes.is_empty() {
                uplink_hub::scopes::DEFAULT_APP
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                scopes
            };
            let new = NewApp {
                name,
                client_id,
                confidential: !public,
                redirect_uris,
                scopes,
            };
            let registered = if allow_connector_scope {
                hub.add_app_allowing_connector_scope(new).await?
            } else {
                hub.add_app(new).await?
            };
            println!("client_id: {}", registered.app.client_id);
            if let Some(secret) = registered.secret {
                println!("client_secret: {}", secret.expose());
                eprintln!(
                    "Store the client secret now: the hub keeps only its digest and cannot show it again."
                );
            }
        }
        AppCommand::List { dir } => {
            let hub = open(&dir).await?;
            for a in hub.store.apps().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.client_id,
                    a.name,
                    if a.confidential {
                        "confidential"
                    } else {
                        "public"
                    },
                    a.scopes.join(" "),
                    a.redirect_uris.join(" ")
                );
            }
        }
        AppCommand::Remove { dir, client_id } => {
            let hub = open(&dir).await?;
            hub.remove_app(&client_id).await?;
            println!("removed {client_id}");
        }
    }
    Ok(())
}

async fn connector(cmd: ConnectorCommand) -> anyhow::Result<()> {
    match cmd {
        ConnectorCommand::Add { dir, owner, name } => {
            let hub = open(&dir).await?;
            let registered = hub.add_connector(&owner, &name).await?;
            println!("connector_id: {}", registered.connector.id);
            println!("credential: {}", registered.credential.expose());
            eprintln!(
                "Store the credential now: the hub keeps only its digest and cannot show it again."
            );
        }
        ConnectorCommand::List { dir } => {
            let hub = open(&dir).await?;
            for c in hub.store.connectors(None).await? {
                println!("{}\t{}\t{}", c.id, c.name, c.owner_name);
            }
        }
        ConnectorCommand::Remove { dir, id } => {
            let hub = open(&dir).await?;
            hub.remove_connector(&id).await?;
            println!("removed {id}");
        }
    }
    Ok(())
}

async fn source(cmd: SourceCommand) -> anyhow::Result<()> {
    match cmd {
        SourceCommand::Add {
            dir,
            connector,
            name,
            description,
        } => {
            let hub = open(&dir).await?;
            let s = hub.add_source(&connector, &name, &description).await?;
            println!("source_id: {}", s.id);
        }
        SourceCommand::List { dir } => {
            let hub = open(&dir).await?;
            for s in hub.store.sources().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.id, s.connector_name, s.name, s.description
                );
            }
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before anything is written into it (the loopback certificates): the folder is made
    // 0700, and refused when others could read it.
    match args.dir.database {
        Some(_) => uplink_hub::data_dir::prepare_folder(&args.dir.data_dir)?,
        None => uplink_hub::data_dir::prepare(&args.dir.data_dir)?,
    }
    let _serving = crate::serving_mark::claim(&args.dir.data_dir, args.backplane.is_some())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (cert, key) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (
            std::fs::read_to_string(cert)
                .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?,
            std::fs::read_to_string(key)
                .with_context(|| format!("cannot read --tls-key {}", key.display()))?,
        ),
        _ => {
            if !addr.ip().is_loopback() {
                tracing::warn!(%addr, "serving beyond loopback with a loopback certificate; pass --tls-cert/--tls-key for real names");
            }
            let dir = args.dir.data_dir.join("tls");
            let ca =
                uplink_tls::LoopbackCa::load_or_generate(&dir, &["localhost", "127.0.0.1", "::1"])
                    .with_context(|| {
                        format!("cannot prepare loopback certificates in {}", dir.display())
                    })?;
            println!("loopback CA certificate: {}", dir.join("ca.pem").display());
            (ca.cert_chain_pem(), ca.key_pem().to_owned())
        }
    };
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("https://{addr}"));
    let mut config = HubConfig::new(issuer.clone());
    config.max_connectors = args.max_connectors;
    config.register_timeout = std::time::Duration::from_secs(args.register_timeout);
    args.limits.apply(&mut config);
    args.billing.apply(&mut config);
    let hub = Arc::new(
        Hub::open_on(&args.dir.data_dir, args.dir.database.as_ref(), config)
            .await
            .with_context(|| store_context(&args.dir))?,
    );
    if let Some(url) = &args.backplane {
        hub.join_backplane(url)
            .await
            .context("cannot join the backplane")?;
    }
    if let Some(open_files) = open_file_limit()
        && open_files < args.max_connectors as u64 + FILES_BESIDE_LINKS
    {
        tracing::warn!(
            open_files,
            max_connectors = args.max_connectors,
            "the open-file limit is too low for --max-connectors: the hub would run out of file descriptors before refusing connectors; raise the limit (ulimit -n) or lower --max-connectors"
        );
    }
    println!("hub ready at {issuer}");
    tracing::info!(%addr, %issuer, "serving the hub");
    let certificate = uplink_tls::CertificateSlot::new(&cert, &key)
        .context("cannot use the TLS certificate and key")?;
    let tls = certificate.server_config();
    let requests = crate::service::ReloadRequests::listen(started_config().as_deref());
    let _reloads = tokio::spawn(reload_when_asked(
        requests,
        certificate,
        hub.clone(),
        args.clone(),
    ));
    let _metrics = {
        let hub = hub.clone();
        crate::service::serve_metrics(args.metrics_listen, move || {
            (uplink_hub::metrics::CONTENT_TYPE, hub.metrics.scrape(&hub))
        })
        .await
    };
    // The listener is bound and the store open: connections made from here on are served.
    crate::service::ready(&format!("serving {issuer} on {addr}"));
    let _watchdog = crate::service::watchdog();
    uplink_hub::serve_tls(hub, listener, tls, async {
        crate::service::stop_requested().await;
        tracing::info!("stopping the hub");
        crate::service::stopping();
    })
    .await
    .context("the hub stopped")
}

/// On SIGHUP, or when the `--config` file changes, reads the settings again (the start's flags
/// and environment still win over the file) and applies what can change while serving: the TLS
/// certificate and key (read again even when their paths are the same, so an ACME renewal needs
/// no restart), the limits (for requests and connections that arrive from then on) and the log
/// level. A certificate that cannot be used is refused with the reason in the log and the one in
/// service stays; a changed setting that needs a restart is named.
async fn reload_when_asked(
    mut requests: crate::service::ReloadRequests,
    certificate: Arc<uplink_tls::CertificateSlot>,
    hub: Arc<Hub>,
    started: ServeArgs,
) {
    let mut in_force = started.clone();
    while let Some((cause, cli)) = requests.next_settings().await {
        let crate::Command::Hub(args) = cli.command else {
            continue;
        };
        let now = match args.command {
            Some(HubCommand::Serve(serve)) => serve,
            _ => args.serve,
        };
        reload_certificate(&certificate, &now, cause);
        reload_limits(&hub, &in_force, &now, cause);
        in_force = now.clone();
        let needs_restart = restart_only_changes(&started, &now);
        if !needs_restart.is_empty() {
            tracing::warn!(
                cause,
                changed = %needs_restart.join(", "),
                "reload: these settings changed and take effect at the next restart"
            );
        }
    }
}

/// Puts the limits of `now` in force where they differ from `before`, and names them.
fn reload_limits(hub: &Hub, before: &ServeArgs, now: &ServeArgs, cause: &str) {
    let changed = limit_changes(before, now);
    if changed.is_empty() {
        return;
    }
    let mut config = hub.config.clone();
    config.max_connectors = now.max_connectors;
    config.register_timeout = std::time::Duration::from_secs(now.register_timeout);
    now.limits.apply(&mut config);
    hub.limits
        .replace(uplink_hub::live_limits::Limits::of(&config));
    tracing::warn!(
        cause,
        changed = %changed.join(", "),
        "reloaded limits: requests and connections arriving from now on get them"
    );
}

/// The limits (by their flag and configuration key) that differ between `before` and `now`.
fn limit_changes(before: &ServeArgs, now: &ServeArgs) -> Vec<&'static str> {
    let (was, is) = (&before.limits, &now.limits);
    [
        (
            "max-connectors",
            before.max_connectors != now.max_connectors,
        ),
        (
            "register-timeout",
            before.register_timeout != now.register_timeout,
        ),
        ("max-connections", was.max_connections != is.max_connections),
        ("header-timeout", was.header_timeout != is.header_timeout),
        ("send-timeout", was.send_timeout != is.send_timeout),
        (
            "max-header-bytes",
            was.max_header_bytes != is.max_header_bytes,
        ),
        ("max-headers", was.max_headers != is.max_headers),
        ("max-form-body", was.max_form_body != is.max_form_body),
        ("max-api-body", was.max_api_body != is.max_api_body),
        ("body-timeout", was.body_timeout != is.body_timeout),
        (
            "max-live-streams-per-sign-in",
            was.max_live_streams_per_sign_in != is.max_live_streams_per_sign_in,
        ),
        (
            "max-live-streams-per-connector",
            was.max_live_streams_per_connector != is.max_live_streams_per_connector,
        ),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// The `--config` file this process was started with, if any.
fn started_config() -> Option<PathBuf> {
    crate::service::reread().ok()?.config
}

fn reload_certificate(certificate: &uplink_tls::CertificateSlot, now: &ServeArgs, cause: &str) {
    let (Some(cert), Some(key)) = (&now.tls_cert, &now.tls_key) else {
        tracing::info!(
            cause,
            "reload: the certificate is the data folder's loopback one; nothing to reload"
        );
        return;
    };
    let read = std::fs::read_to_string(cert)
        .and_then(|chain| std::fs::read_to_string(key).map(|key| (chain, key)));
    let outcome = match read {
        Ok((chain, key)) => certificate
            .replace(&chain, &key)
            .map_err(|error| error.to_string()),
        Err(error) => Err(format!("cannot read the files: {error}")),
    };
    match outcome {
        Ok(()) => tracing::info!(
            cause,
            cert = %cert.display(),
            sha256 = %hex_digest(&certificate.leaf_der()),
            "reloaded the TLS certificate; new connections use it"
        ),
        Err(reason) => tracing::warn!(
            cause,
            cert = %cert.display(),
            %reason,
            "reload: kept the TLS certificate in service"
        ),
    }
}

/// The settings that differ between `before` and `now` and cannot change while serving.
fn restart_only_changes(before: &ServeArgs, now: &ServeArgs) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name: &'static str, was: String, is: String| {
        if was != is {
            changed.push(name);
        }
    };
    check(
        "data-dir",
        format!("{:?}", before.dir.data_dir),
        format!("{:?}", now.dir.data_dir),
    );
    check(
        "database",
        // Compared whole (a new password counts); never shown.
        format!(
            "{:?}",
            before.dir.database.as_ref().map(DatabaseUrl::expose)
        ),
        format!("{:?}", now.dir.database.as_ref().map(DatabaseUrl::expose)),
    );
    check("listen", before.listen.to_string(), now.listen.to_string());
    check(
        "backplane",
        format!("{:?}", before.backplane),
        format!("{:?}", now.backplane),
    );
    check(
        "issuer",
        format!("{:?}", before.issuer),
        format!("{:?}", now.issuer),
    );
    check(
        "metrics-listen",
        format!("{:?}", before.metrics_listen),
        format!("{:?}", now.metrics_listen),
    );
    check(
        "billing",
        format!("{:?}", before.billing),
        format!("{:?}", now.billing),
    );
    changed
}

fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// File descriptors the hub needs besides its links: the store, apps' connections, logs.
const FILES_BESIDE_LINKS: u64 = 256;

/// This process's soft limit on open files, where the system tells it (Linux).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        billing: super::BillingArgs,
    }

    #[test]
    fn billing_flags_set_the_hubs_currency_default_limit_and_refund_window() {
        let mut config = super::HubConfig::new("https://hub.test");
        Serve::try_parse_from(["serve"])
            .unwrap()
            .billing
            .apply(&mut config);
        assert_eq!(
            config.billing,
            uplink_hub::billing::BillingConfig::default()
        );
        let serve = Serve::try_parse_from([
            "serve",
            "--currency",
            "JPY",
            "--currency-digits",
            "0",
            "--default-spending-limit",
            "700",
            "--refund-window-days",
            "7",
        ])
        .unwrap();
        serve.billing.apply(&mut config);
        assert_eq!(config.billing.currency, "JPY");
        assert_eq!(config.billing.format(700), "700");
        assert_eq!(config.billing.default_monthly_limit, 700);
        assert_eq!(config.billing.refund_window, 7 * 86_400);
        assert!(Serve::try_parse_from(["serve", "--currency-digits", "9"]).is_err());
    }
}
