//! SignalR round trips and message rates over each transport, side by side with a plain
//! tokio-tungstenite echo over the same TLS setup (the floor SignalR over WebSockets is
//! measured against). Run with `cargo bench -p uplink-signalr`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::tungstenite::Message;
use uplink_measure::{Timing, compare, describe};
use uplink_signalr::client::{HubConnection, ProxySetting};
use uplink_signalr::server::{Hub, HubServer, ServerOptions};
use uplink_signalr::{HubError, Transport};

const ROUND_TRIPS: usize = 1000;
const RATE_RUNS: usize = 5;
const RATE_MESSAGES: usize = 2000;
const WINDOW: usize = 32;

struct Setup {
    signalr_url: String,
    plain_addr: std::net::SocketAddr,
    client_tls: Arc<rustls::ClientConfig>,
}

async fn setup() -> anyhow::Result<Setup> {
    uplink_tls::install_crypto_provider();
    let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"])?;
    let server_tls = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem())?;
    let client_tls =
        uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned()))?;

    let hub = Hub::new().method("Echo", |_c, (text,): (String,)| async move {
        Ok::<_, HubError>(text)
    });
    let server = HubServer::new(hub, ServerOptions::default());
    let app = Router::new().nest("/hubs/bench", server.router());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let config = server_tls.clone();
    tokio::spawn(async move {
        uplink_tls::serve(listener, config, app, std::future::pending::<()>()).await
    });

    // The baseline: a WebSocket echo with no protocol on top, behind the same TLS.
    let plain = TcpListener::bind("127.0.0.1:0").await?;
    let plain_addr = plain.local_addr()?;
    let acceptor = TlsAcceptor::from(server_tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = plain.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(Setup {
        signalr_url: format!("https://127.0.0.1:{port}/hubs/bench"),
        plain_addr,
        client_tls,
    })
}

/// Per-message time of a pipelined run (`WINDOW` in flight), one sample per run.
fn per_message(runs: Vec<Duration>) -> Timing {
    Timing::from_samples(runs.into_iter().map(|d| d / RATE_MESSAGES as u32).collect())
}

async fn bench_signalr(
    setup: &Setup,
    transport: Transport,
    payload: &str,
) -> anyhow::Result<(Timing, Timing)> {
    let client = HubConnection::builder(&setup.signalr_url)
        .tls(setup.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .force_transport(transport)
        .start()?;
    tokio::time::timeout(Duration::from_secs(20), client.wait_connected()).await?;
    for _ in 0..50 {
        let _: String = client.invoke("Echo", (payload,)).await?;
    }
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let start = Instant::now();
        let echoed: String = client.invoke("Echo", (payload,)).await?;
        samples.push(start.elapsed());
        anyhow::ensure!(echoed.len() == payload.len(), "echo mismatch");
    }
    let mut runs = Vec::new();
    for _ in 0..RATE_RUNS {
        let start = Instant::now();
        let mut in_flight = FuturesUnordered::new();
        let mut sent = 0;
        let mut done = 0;
        while done < RATE_MESSAGES {
            while sent < RATE_MESSAGES && in_flight.len() < WINDOW {
                let client = client.clone();
                let payload = payload.to_string();
                in_flight.push(async move { client.invoke::<String>("Echo", (payload,)).await });
                sent += 1;
            }
            if let Some(result) = in_flight.next().await {
                result?;
                done += 1;
            }
        }
        runs.push(start.elapsed());
    }
    client.stop().await;
    Ok((Timing::from_samples(samples), per_message(runs)))
}

async fn bench_plain(setup: &Setup, payload: &str) -> anyhow::Result<(Timing, Timing)> {
    let tcp = TcpStream::connect(setup.plain_addr).await?;
    tcp.set_nodelay(true)?;
    let tls = TlsConnector::from(setup.client_tls.clone())
        .connect("127.0.0.1".try_into()?, tcp)
        .await?;
    let url = format!("wss://127.0.0.1:{}/", setup.plain_addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await?;
    let echo = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| -> anyhow::Result<()> {
        ws.send(Message::text(payload)).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.len() == payload.len() => Ok(()),
            other => anyhow::bail!("unexpected echo: {other:?}"),
        }
    };
    for _ in 0..50 {
        echo(&mut ws).await?;
    }
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let start = Instant::now();
        echo(&mut ws).await?;
        samples.push(start.elapsed());
    }
    let mut runs = Vec::new();
    for _ in 0..RATE_RUNS {
        let start = Instant::now();
        let (mut sink, mut stream) = (&mut ws).split();
        let mut sent = 0;
        let mut done = 0;
        while sent < WINDOW {
            sink.feed(Message::text(payload)).await?;
            sent += 1;
        }
        sink.flush().await?;
        while done < RATE_MESSAGES {
            match stream.next().await {
                Some(Ok(Message::Text(_))) => done += 1,
                other => anyhow::bail!("unexpected echo: {other:?}"),
            }
            if sent < RATE_MESSAGES {
                sink.send(Message::text(payload)).await?;
                sent += 1;
            }
        }
        runs.push(start.elapsed());
    }
    Ok((Timing::from_samples(samples), per_message(runs)))
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let setup = setup().await?;
        for (size_label, size) in [("100 B", 100usize), ("16 KiB", 16 * 1024)] {
            let payload = "x".repeat(size);
            let (plain_rtt, plain_rate) = bench_plain(&setup, &payload).await?;
            println!("== {size_label} messages, TLS on loopback ==");
            println!(
                "{}",
                describe(
                    &format!("plain WebSocket echo round trip {size_label}"),
                    &plain_rtt,
                    None
                )
            );
            println!(
                "{}",
                describe(
                    &format!("plain WebSocket echo, {WINDOW} in flight, per message"),
                    &plain_rate,
                    Some(1)
                )
            );
            for transport in Transport::ALL {
                let (rtt, rate) = bench_signalr(&setup, transport, &payload).await?;
                println!(
                    "{}",
                    compare(
                        &format!("SignalR {transport} round trip {size_label}"),
                        &rtt,
                        "plain WebSocket",
                        &plain_rtt
                    )
                );
                println!(
                    "  p50 {:?} p99 {:?}",
                    rtt.percentile(50.0),
                    rtt.percentile(99.0)
                );
                println!(
                    "{}",
                    compare(
                        &format!(
                            "SignalR {transport} message rate {size_label} ({:.0} msg/s)",
                            rate.per_second(1)
                        ),
                        &rate,
                        &format!("plain WebSocket ({:.0} msg/s)", plain_rate.per_second(1)),
                        &plain_rate
                    )
                );
            }
        }
        anyhow::Ok(())
    })
}
