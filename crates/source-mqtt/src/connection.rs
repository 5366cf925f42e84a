//! The broker connection: options, TLS with the *ring* provider, and the task that polls the
//! event loop, (re)subscribes after every connect, feeds messages to the state, and reconnects
//! with backoff, saying in plain words why the broker is not reachable.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnAck, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions,
    Packet, QoS, SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use uplink_source::SourceError;
use uplink_source::form::FieldError;

use crate::session::{Resume, SessionFile};
use crate::state::Connection;
use crate::{Broker, Shared};

/// The largest message taken from the broker (Sparkplug births of big nodes run to megabytes).
const MAX_PACKET: usize = 16 * 1024 * 1024;
/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The protocol version spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V311,
    V5,
}

/// What the connection is made with.
pub(crate) struct Options {
    pub version: Version,
    pub broker: Broker,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    pub tls: Option<Arc<ClientConfig>>,
    pub keep_alive: Duration,
    pub clean_session: bool,
    /// Where the filters of a kept session are remembered (clean session off, in a connector).
    pub session: Option<SessionFile>,
}

fn read_pem(field: &'static str, path: &str) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|err| {
        SourceError::InvalidSettings(vec![FieldError::new(
            field,
            format!("cannot read {path}: {err}"),
        )])
    })
}

/// A rustls client configuration on the *ring* provider: the CA file's certificates or the
/// platform's trust store, and a client certificate when one is given.
///
/// # Errors
/// [`SourceError::InvalidSettings`] naming the file field (the message never quotes a key).
pub(crate) fn tls_config(
    ca_file: Option<&str>,
    client: Option<(&str, &str)>,
) -> Result<Arc<ClientConfig>, SourceError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let bad = |field: &str, message: String| {
        SourceError::InvalidSettings(vec![FieldError::new(field, message)])
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| bad("brokerUrl", format!("TLS cannot be set up: {err}")))?;
    let builder = match ca_file {
        Some(path) => {
            let pem = read_pem("caFile", path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|err| bad("caFile", format!("{path} is not PEM: {err}")))?;
                roots
                    .add(cert)
                    .map_err(|err| bad("caFile", format!("{path}: {err}")))?;
            }
            if roots.is_empty() {
                return Err(bad("caFile", format!("{path} holds no certificate")));
            }
            builder.with_root_certificates(roots)
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier().map_err(|err| {
                bad(
                    "caFile",
                    format!("the system's trust store cannot be used ({err}); give a CA file"),
                )
            })?
        }
    };
    let config = match client {
        Some((cert_path, key_path)) => {
            let pem = read_pem("clientCertFile", cert_path)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| bad("clientCertFile", format!("{cert_path} is not PEM: {err}")))?;
            if chain.is_empty() {
                return Err(bad(
                    "clientCertFile",
                    format!("{cert_path} holds no certificate"),
                ));
            }
            let key_pem = read_pem("clientKeyFile", key_path)?;
            // The parse error is dropped on purpose: it could quote key material.
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
                bad(
                    "clientKeyFile",
                    format!("{key_path} holds no PEM private key"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|err| {
                bad(
                    "clientKeyFile",
                    format!("the key does not fit the certificate: {err}"),
                )
            })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The client of either protocol version.
#[derive(Debug, Clone)]
pub(crate) enum Client {
    V311(AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl Client {
    /// Hands a QoS 1 publish to the connection without waiting.
    pub(crate) fn try_publish(&self, topic: String, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Client::V311(client) => client
                .try_publish(topic, QoS::AtLeastOnce, false, payload)
                .map_err(|e| e.to_string()),
            Client::V5(client) => client
                .try_publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .map_err(|e| e.to_string()),
        }
    }
}

/// Connects and polls until the source is dropped, with either protocol version.
pub(crate) fn start(
    options: &Options,
    shared: Arc<Shared>,
    filters: Vec<(String, QoS)>,
) -> (Client, tokio::task::JoinHandle<()>) {
    let broker = options.broker.clone();
    let resume = Resume::new(options.session.clone().filter(|_| !options.clean_session));
    match options.version {
        Version::V311 => {
            let (client, eventloop) = client_v311(options);
            let task = tokio::spawn(run(
                shared,
                client.clone(),
                eventloop,
                (filters, resume),
                broker,
            ));
            (Client::V311(client), task)
        }
        Version::V5 => {
            let (client, eventloop) = client_v5(options);
            let task = tokio::spawn(run_v5(
                shared,
                client.clone(),
                eventloop,
                (filters, resume),
                broker,
            ));
            (Client::V5(client), task)
        }
    }
}

fn client_v311(options: &Options) -> (AsyncClient, EventLoop) {
    let mut mqtt = MqttOptions::new(
        options.client_id.clone(),
        options.broker.host.clone(),
        options.broker.port,
    );
    mqtt.set_keep_alive(options.keep_alive)
        .set_clean_session(options.clean_session)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some((user, password)) = &options.credentials {
        mqtt.set_credentials(user.clone(), password.clone());
    }
    if let Some(tls) = &options.tls {
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    AsyncClient::new(mqtt, 64)
}

fn client_v5(options: &Options) -> (rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop) {
    let mut mqtt = rumqttc::v5::MqttOptions::new(
        options.client_id.clone(),
        options.broker.host.clone(),
        options.broker.port,
    );
    mqtt.set_keep_alive(options.keep_alive)
        .set_clean_start(options.clean_session)
        .set_max_packet_size(Some(MAX_PACKET as u32));
    if !options.clean_session {
        // MQTT 5 ends a session when the connection closes unless told to keep it.
        mqtt.set_session_expiry_interval(Some(u32::MAX));
    }
    if let Some((user, password)) = &options.credentials {
        mqtt.set_credentials(user.clone(), password.clone());
    }
    if let Some(tls) = &options.tls {
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    rumqttc::v5::AsyncClient::new(mqtt, 64)
}

/// Plain words for why the connection failed or dropped; never a secret.
pub(crate) fn describe(err: &ConnectionError, broker: &Broker) -> String {
    if let Some(tls) = rustls_error(err) {
        return format!(
            "TLS with the broker at {broker} was refused: {}",
            tls_words(tls)
        );
    }
    match err {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => {
                format!("the broker at {broker} refused the user name or password")
            }
            ConnectReturnCode::NotAuthorized => {
                format!(
                    "the broker at {broker} refused the connection: the user name or password is wrong, or this client is not authorised"
                )
            }
            ConnectReturnCode::BadClientId => {
                format!("the broker at {broker} refused the client id")
            }
            ConnectReturnCode::RefusedProtocolVersion => {
                format!("the broker at {broker} refused MQTT 3.1.1")
            }
            ConnectReturnCode::ServiceUnavailable => {
                format!("the broker at {broker} is unavailable (it refused the connection)")
            }
            ConnectReturnCode::Success => format!("the broker at {broker} refused the connection"),
        },
        ConnectionError::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("the broker at {broker} is down or not listening (connection refused)")
            }
            std::io::ErrorKind::TimedOut => {
                format!("the broker at {broker} did not answer (timed out)")
            }
            _ => format!("cannot reach the broker at {broker}: {io}"),
        },
        ConnectionError::Tls(tls) => format!("TLS with the broker at {broker} failed: {tls}"),
        ConnectionError::NetworkTimeout => format!("the broker at {broker} did not answer in time"),
        ConnectionError::FlushTimeout => format!("the broker at {broker} stopped reading"),
        ConnectionError::MqttState(state) => {
            format!("the connection to the broker at {broker} was lost: {state}")
        }
        other => format!("the connection to the broker at {broker} failed: {other}"),
    }
}

/// Plain words for an MQTT 5 connection failure; never a secret.
pub(crate) fn describe_v5(err: &rumqttc::v5::ConnectionError, broker: &Broker) -> String {
    use rumqttc::v5::ConnectionError as E;
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as Code;
    if let Some(tls) = rustls_error(err) {
        return format!(
            "TLS with the broker at {broker} was refused: {}",
            tls_words(tls)
        );
    }
    match err {
        E::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => format!(
            "the broker at {broker} refused the connection: the user name or password is wrong, or this client is not authorised"
        ),
        E::ConnectionRefused(Code::ClientIdentifierNotValid | Code::BadClientId) => {
            format!("the broker at {broker} refused the client id")
        }
        E::ConnectionRefused(Code::UnsupportedProtocolVersion | Code::RefusedProtocolVersion) => {
            format!("the broker at {broker} refused MQTT 5; try 3.1.1")
        }
        E::ConnectionRefused(code) => {
            format!("the broker at {broker} refused the connection ({code:?})")
        }
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("the broker at {broker} is down or not listening (connection refused)")
            }
            _ => format!("cannot reach the broker at {broker}: {io}"),
        },
        E::Timeout(_) => format!("the broker at {broker} did not answer in time"),
        E::MqttState(state) => {
            format!("the connection to the broker at {broker} was lost: {state}")
        }
        other => format!("the connection to the broker at {broker} failed: {other}"),
    }
}

/// The rustls error somewhere in an error's chain (I/O errors carry it inside).
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(found) = err.downcast_ref::<rustls::Error>() {
        return Some(found);
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && let Some(found) = rustls_error(inner)
    {
        return Some(found);
    }
    err.source().and_then(rustls_error)
}

fn tls_words(err: &rustls::Error) -> String {
    use rustls::AlertDescription as Alert;
    match err {
        rustls::Error::InvalidCertificate(cert) => {
            format!("the broker's certificate is not trusted ({cert:?}); check the CA certificate")
        }
        rustls::Error::AlertReceived(Alert::CertificateRequired | Alert::HandshakeFailure) => {
            "the broker asks for a client certificate; give one (and its key) in the form".into()
        }
        rustls::Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::AccessDenied,
        ) => "the broker refused the client certificate".into(),
        other => other.to_string(),
    }
}

/// Whether to subscribe after a connect: always, unless the broker kept the session (clean
/// session off) in which this connection's subscriptions were already acknowledged. The
/// session then holds them, and the messages it queued arrive right after the connect; a
/// subscribe again would make the broker re-send every retained message, older than what the
/// session delivered.
fn needs_subscribe(subscribed: bool, session_present: bool) -> bool {
    !(subscribed && session_present)
}

/// Polls an MQTT 5 event loop until the source is dropped.
async fn run_v5(
    shared: Arc<Shared>,
    client: rumqttc::v5::AsyncClient,
    mut eventloop: rumqttc::v5::EventLoop,
    (filters, mut resume): (Vec<(String, QoS)>, Resume),
    broker: Broker,
) {
    use rumqttc::v5::Event;
    use rumqttc::v5::mqttbytes::v5::{Filter, Packet, SubscribeReasonCode};
    let qos = |qos: QoS| match qos {
        QoS::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    };
    let wanted: Vec<String> = filters.iter().map(|(f, _)| f.clone()).collect();
    let mut backoff = MIN_BACKOFF;
    let mut subscribed = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                match std::str::from_utf8(&publish.topic) {
                    Ok(topic) => {
                        for (topic, payload) in
                            shared.ingest(topic, &publish.payload, publish.retain)
                        {
                            let qos = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
                            if let Err(err) = client.try_publish(topic, qos, false, payload) {
                                tracing::warn!(error = %err, "mqtt rebirth request could not be queued");
                            }
                        }
                    }
                    Err(_) => tracing::debug!("mqtt 5 message with a topic that is not UTF-8"),
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = MIN_BACKOFF;
                if needs_subscribe(subscribed, ack.session_present) {
                    if ack.session_present {
                        let stale: Vec<String> = resume.stale(&wanted).cloned().collect();
                        for filter in stale {
                            if let Err(err) = client.try_unsubscribe(filter.clone()) {
                                tracing::warn!(error = %err, %filter, "mqtt unsubscribe could not be queued");
                                resume.not_unsubscribed(filter);
                            }
                        }
                    }
                    let request = filters
                        .iter()
                        .map(|(filter, q)| Filter::new(filter.clone(), qos(*q)));
                    if let Err(err) = client.try_subscribe_many(request) {
                        tracing::warn!(error = %err, "mqtt subscribe could not be queued");
                    }
                }
                shared.set_connection(Connection::Up);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if !std::mem::replace(&mut subscribed, true) {
                    resume.subscribed(&wanted);
                }
                let refused: Vec<&str> = ack
                    .return_codes
                    .iter()
                    .zip(&filters)
                    .filter(|(code, _)| !matches!(code, SubscribeReasonCode::Success(_)))
                    .map(|(_, (filter, _))| filter.as_str())
                    .collect();
                if !refused.is_empty() {
                    let mut state = shared.lock();
                    for filter in refused {
                        state.refused_subscription(filter);
                    }
                }
            }
            Ok(_) => {}
            Err(err) => {
                shared.set_connection(Connection::Down(describe_v5(&err, &broker)));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Polls the event loop until the source is dropped.
async fn run(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut eventloop: EventLoop,
    (filters, mut resume): (Vec<(String, QoS)>, Resume),
    broker: Broker,
) {
    let wanted: Vec<String> = filters.iter().map(|(f, _)| f.clone()).collect();
    let mut backoff = MIN_BACKOFF;
    let mut subscribed = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                for (topic, payload) in
                    shared.ingest(&publish.topic, &publish.payload, publish.retain)
                {
                    if let Err(err) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
                        tracing::warn!(error = %err, "mqtt rebirth request could not be queued");
                    }
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ConnAck {
                session_present, ..
            }))) => {
                backoff = MIN_BACKOFF;
                if needs_subscribe(subscribed, session_present) {
                    if session_present {
                        let stale: Vec<String> = resume.stale(&wanted).cloned().collect();
                        for filter in stale {
                            if let Err(err) = client.try_unsubscribe(filter.clone()) {
                                tracing::warn!(error = %err, %filter, "mqtt unsubscribe could not be queued");
                                resume.not_unsubscribed(filter);
                            }
                        }
                    }
                    let request = filters
                        .iter()
                        .map(|(filter, qos)| SubscribeFilter::new(filter.clone(), *qos));
                    if let Err(err) = client.try_subscribe_many(request) {
                        tracing::warn!(error = %err, "mqtt subscribe could not be queued");
                    }
                }
                shared.set_connection(Connection::Up);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if !std::mem::replace(&mut subscribed, true) {
                    resume.subscribed(&wanted);
                }
                let refused: Vec<&str> = ack
                    .return_codes
                    .iter()
                    .zip(&filters)
                    .filter(|(code, _)| matches!(code, SubscribeReasonCode::Failure))
                    .map(|(_, (filter, _))| filter.as_str())
                    .collect();
                if !refused.is_empty() {
                    let mut state = shared.lock();
                    for filter in refused {
                        state.refused_subscription(filter);
                    }
                }
            }
            Ok(_) => {}
            Err(err) => {
                shared.set_connection(Connection::Down(describe(&err, &broker)));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
