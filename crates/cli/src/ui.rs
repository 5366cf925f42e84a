//! `uplink ui`: the web UI and its commands on loopback, for a browser.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use uplink_control::http::{AccessToken, UiFiles, router};
use uplink_control::{Control, HostKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; only loopback addresses are accepted. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The connector's data folder: its sources, policy, credentials and trail. The UI runs
    /// this connector (do not also run `uplink connector run` on the same folder).
    #[arg(long, env = "UPLINK_DATA_DIR", default_value = "uplink-data")]
    data_dir: PathBuf,
    /// Start with the embedded default when no hub is configured: a hub on loopback inside
    /// this process, with a simulated data source and a demo app.
    #[arg(long)]
    local_hub: bool,
    /// A built web UI to serve instead of the one built into this binary (the `ui/dist`
    /// folder of a source checkout, while working on the UI).
    #[arg(long, env = "UPLINK_UI_DIST")]
    dist: Option<PathBuf>,
}

/// The web UI built into this binary (`ui/dist` when it was compiled; see build.rs).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "--listen {} is not a loopback address: the UI controls this machine's connector and is never served to the network",
        args.listen
    );
    let ui = match &args.dist {
        Some(dist) => {
            anyhow::ensure!(
                dist.join("index.html").is_file(),
                "no built UI at {} (build it with `npm run build` in ui/)",
                dist.display()
            );
            UiFiles::Folder(dist.clone())
        }
        None => {
            anyhow::ensure!(
                embedded::UI_ASSETS
                    .iter()
                    .any(|(name, _)| *name == "index.html"),
                "this uplink was built without its web UI: run `npm run build` in ui/ and build it again, or pass --dist"
            );
            UiFiles::Embedded(embedded::UI_ASSETS)
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let token = AccessToken::generate();
    let control = Control::start(HostKind::Browser, args.data_dir.clone());
    if args.local_hub && !control.settings().local_hub {
        match control.use_local_hub().await {
            Ok(()) => {}
            // Signed in to a real hub already: that choice stands.
            Err(e) if e.code == "already_configured" => tracing::info!("{e}"),
            Err(e) => return Err(e).context("the local hub did not start"),
        }
    }
    let app = router(control.clone(), token.clone(), ui);
    // The one line a person (or a test) needs: the URL with this run's token in its fragment.
    #[allow(clippy::print_stdout)]
    {
        println!("UI ready at http://{addr}/#token={}", token.expose());
    }
    tracing::info!(%addr, "serving the web UI on loopback");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the UI server stopped");
    control.shutdown().await;
    served
}
