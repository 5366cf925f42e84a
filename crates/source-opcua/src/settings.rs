//! The `opcua` kind's form, and its settings read and checked.

use std::path::PathBuf;
use std::time::Duration;

use opcua::crypto::SecurityPolicy;
use opcua::types::{MessageSecurityMode, NodeId, ObjectId};
use serde::Deserialize;
use uplink_model::time_expr::parse_span;
use uplink_source::form::{FieldError, FieldSchema, FieldType, FormSchema};
use uplink_source::{SourceConfig, SourceError};

/// The kind's identifier.
pub const KIND: &str = "opcua";

/// The security policies offered, by their OPC UA names.
pub const POLICIES: [&str; 4] = [
    "None",
    "Basic256Sha256",
    "Aes128Sha256RsaOaep",
    "Aes256Sha256RsaPss",
];

const RSA_HELP: &str = "Every policy but None signs and encrypts with RSA; the Rust `rsa` crate has \
an unfixed timing side-channel advisory (RUSTSEC-2023-0071): run encrypted sessions on a network an \
attacker cannot time, and prefer Aes256Sha256RsaPss where the server offers it.";

/// The form of an OPC UA source.
pub fn schema() -> FormSchema {
    FormSchema {
        kind: KIND.into(),
        title: "OPC UA server".into(),
        description: "Variables of an OPC UA server (a PLC, a SCADA system, a historian gateway): browsed, read, historized values through HistoryRead, live values through subscriptions; its alarms, conditions and events.".into(),
        fields: vec![
            FieldSchema::new("endpointUrl", "Endpoint URL", FieldType::Text, true,
                "The server's endpoint, opc.tcp://host:port/path (the path may be empty)."),
            FieldSchema::new("securityPolicy", "Security policy", FieldType::Select, true,
                &format!("How messages are signed and encrypted. None sends everything in clear. {RSA_HELP}"))
                .options(&POLICIES)
                .default_value("None"),
            FieldSchema::new("securityMode", "Security mode", FieldType::Select, true,
                "None with the None policy; Sign or SignAndEncrypt with any other policy.")
                .options(&["None", "Sign", "SignAndEncrypt"])
                .default_value("None"),
            FieldSchema::new("trustedThumbprint", "Trusted server certificate", FieldType::Text, false,
                "The SHA-1 or SHA-256 thumbprint (hex) of the server certificate you trust. A certificate seen for the first time is refused and its thumbprint shown; check it on the server, then enter it here or run `uplink sources trust NAME`."),
            FieldSchema::new("identity", "Identity", FieldType::Select, true,
                "Who the connector signs in as: anonymous, a user name and password, or an X.509 user certificate.")
                .options(&["anonymous", "userName", "x509"])
                .default_value("anonymous"),
            FieldSchema::new("userName", "User name", FieldType::Text, false,
                "For the userName identity."),
            FieldSchema::new("password", "Password", FieldType::Text, false,
                "For the userName identity.").secret(),
            FieldSchema::new("userCertificate", "User certificate", FieldType::Path, false,
                "For the x509 identity: the user's certificate (DER or PEM)."),
            FieldSchema::new("userPrivateKey", "User private key", FieldType::Path, false,
                "For the x509 identity: the certificate's private key (PEM)."),
            FieldSchema::new("browseRoot", "Browse root", FieldType::Text, true,
                "The part of the address space exposed as tags: Objects, or a node id such as ns=2;s=Plant.")
                .default_value("Objects"),
            FieldSchema::new("tagNames", "Tag names", FieldType::Select, true,
                "browsePath names a tag by the browse names from the root (Plant/Boiler/Temperature); nodeId by its node id (ns=2;s=Plant.Temperature).")
                .options(&["browsePath", "nodeId"])
                .default_value("browsePath"),
            FieldSchema::new("maxTags", "Most tags", FieldType::Integer, true,
                "Browsing stops after this many variables.")
                .default_value(10_000)
                .range(1.0, 200_000.0),
            FieldSchema::new("timeout", "Request timeout", FieldType::Duration, true,
                "How long one request may take before it fails (and the connection is checked).")
                .default_value("10s"),
            FieldSchema::new("publishingInterval", "Publishing interval", FieldType::Duration, true,
                "How often the server sends live values to subscriptions; items are sampled at the same interval.")
                .default_value("1s"),
            FieldSchema::new("secureChannelLifetime", "Secure channel lifetime", FieldType::Duration, true,
                "How long the keys of a secure channel live before the connector renews them (the server may shorten it); values keep flowing across renewals.")
                .default_value("60s"),
            FieldSchema::new("events", "Alarms and events", FieldType::Boolean, true,
                "Read the server's alarms, conditions and events: live through an events stream, and by time range where the server keeps their history.")
                .default_value(true),
            FieldSchema::new("eventNotifier", "Event notifiers", FieldType::Lines, true,
                "The objects whose alarms and events are read, one per line: Server (the Server object, i=2253, which reports every event of the server) or the node id of an area or object, such as ns=2;s=Area1. Name areas that do not overlap: an event two of them report is sent once only when both copies are close together.")
                .default_value("Server"),
        ]
        .into_iter()
        .chain(uplink_source::recording::fields())
        .chain(uplink_source::writing::fields())
        .collect(),
    }
}

// No Debug: it holds the password.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    endpoint_url: String,
    security_policy: String,
    security_mode: String,
    #[serde(default)]
    trusted_thumbprint: Option<String>,
    identity: String,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    user_certificate: Option<PathBuf>,
    #[serde(default)]
    user_private_key: Option<PathBuf>,
    browse_root: String,
    tag_names: String,
    max_tags: u32,
    timeout: String,
    publishing_interval: String,
    secure_channel_lifetime: String,
    events: bool,
    event_notifier: String,
}

/// Who the connector signs in as.
#[derive(Clone)]
pub(crate) enum Identity {
    Anonymous,
    UserName { user: String, password: String },
    X509 { certificate: PathBuf, key: PathBuf },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Anonymous => f.write_str("Anonymous"),
            Identity::UserName { user, .. } => write!(f, "UserName({user}, ***)"),
            Identity::X509 { certificate, .. } => write!(f, "X509({})", certificate.display()),
        }
    }
}

/// How tags are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    BrowsePath,
    NodeId,
}

/// Checked settings of one source.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub endpoint_url: String,
    pub policy: SecurityPolicy,
    pub mode: MessageSecurityMode,
    pub trusted_thumbprint: Option<String>,
    pub identity: Identity,
    pub browse_root: NodeId,
    pub naming: Naming,
    pub max_tags: usize,
    pub timeout: Duration,
    pub publishing_interval: Duration,
    /// How long a secure channel's token lives before renewal (requested; the server revises).
    pub channel_lifetime: Duration,
    /// The objects whose events are read, in the form's order; empty when events are off.
    pub event_notifiers: Vec<NodeId>,
}

/// `opc.tcp://host:port/path` with a host and a port; the message says what is wrong.
pub(crate) fn check_endpoint(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text.trim())
        .map_err(|err| format!("is not a URL ({err}); expected opc.tcp://host:port/path"))?;
    if url.scheme() != "opc.tcp" {
        return Err(format!(
            "must start with opc.tcp:// (not {}://)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host; expected opc.tcp://host:port/path".into());
    }
    if url.port().is_none() {
        return Err("has no port; expected opc.tcp://host:port/path (4840 is usual)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user name or password (use the identity fields)".into());
    }
    Ok(())
}

/// Normalises a thumbprint: hex digits only, lower case; `None` when it is not 40 or 64 of them.
pub(crate) fn normalise_thumbprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.chars().all(|c| c.is_ascii_hexdigit()) && (hex.len() == 40 || hex.len() == 64))
        .then_some(hex)
}

fn duration(field: &str, text: &str, errors: &mut Vec<FieldError>) -> Duration {
    match parse_span(text) {
        Ok(span) if span.as_micros() > 0 => Duration::from_micros(span.as_micros() as u64),
        _ => {
            errors.push(FieldError::new(field, "must be a duration such as 1s"));
            Duration::from_secs(1)
        }
    }
}

/// The most event notifiers one source watches (one monitored item each).
pub(crate) const MAX_NOTIFIERS: usize = 64;

/// The event notifiers, one per line (a single one, as older settings hold, is one line);
/// each bad line is named. The same notifier twice counts once.
fn event_notifiers(text: &str, errors: &mut Vec<FieldError>) -> Vec<NodeId> {
    let mut notifiers: Vec<NodeId> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let notifier = if line.eq_ignore_ascii_case("server") {
            NodeId::from(ObjectId::Server)
        } else {
            match line.parse::<NodeId>() {
                Ok(id) if !id.is_null() => id,
                _ => {
                    errors.push(FieldError::new(
                        "eventNotifier",
                        format!(
                            "line {}: {line:?} must be Server or a node id such as ns=2;s=Area1 or i=2253",
                            number + 1
                        ),
                    ));
                    continue;
                }
            }
        };
        if !notifiers.contains(&notifier) {
            notifiers.push(notifier);
        }
    }
    if notifiers.len() > MAX_NOTIFIERS {
        errors.push(FieldError::new(
            "eventNotifier",
            format!("names {} objects; at most {MAX_NOTIFIERS}", notifiers.len()),
        ));
    }
    if notifiers.is_empty() && errors.iter().all(|e| e.field != "eventNotifier") {
        errors.push(FieldError::new(
            "eventNotifier",
            "must name at least one object: Server, or a node id such as ns=2;s=Area1",
        ));
    }
    notifiers
}

impl Settings {
    /// Validates against the form, then the fields that depend on each other.
    pub(crate) fn read(config: &SourceConfig) -> Result<Self, SourceError> {
        let raw: Raw = uplink_source::typed_settings(&schema(), &config.settings)?;
        let mut errors = Vec::new();
        if let Err(message) = check_endpoint(&raw.endpoint_url) {
            errors.push(FieldError::new("endpointUrl", message));
        }
        let policy = match raw.security_policy.as_str() {
            "Basic256Sha256" => SecurityPolicy::Basic256Sha256,
            "Aes128Sha256RsaOaep" => SecurityPolicy::Aes128Sha256RsaOaep,
            "Aes256Sha256RsaPss" => SecurityPolicy::Aes256Sha256RsaPss,
            _ => SecurityPolicy::None,
        };
        let mode = match raw.security_mode.as_str() {
            "Sign" => MessageSecurityMode::Sign,
            "SignAndEncrypt" => MessageSecurityMode::SignAndEncrypt,
            _ => MessageSecurityMode::None,
        };
        match (
            policy == SecurityPolicy::None,
            mode == MessageSecurityMode::None,
        ) {
            (true, false) => errors.push(FieldError::new(
                "securityMode",
                "must be None with the None policy (choose a policy to sign or encrypt)",
            )),
            (false, true) => errors.push(FieldError::new(
                "securityMode",
                "must be Sign or SignAndEncrypt with a security policy",
            )),
            _ => {}
        }
        let trusted_thumbprint = match raw.trusted_thumbprint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => match normalise_thumbprint(text) {
                Some(hex) => Some(hex),
                None => {
                    errors.push(FieldError::new(
                        "trustedThumbprint",
                        "must be a SHA-1 (40 hex digits) or SHA-256 (64 hex digits) thumbprint",
                    ));
                    None
                }
            },
        };
        let text = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
        let identity = match raw.identity.as_str() {
            "userName" => {
                let user = text(&raw.user_name);
                if user.is_empty() {
                    errors.push(FieldError::new(
                        "userName",
                        "is required for the userName identity",
                    ));
                }
                Identity::UserName {
                    user,
                    password: raw.password.clone().unwrap_or_default(),
                }
            }
            "x509" => {
                let mut path = |field: &str, value: &Option<PathBuf>| match value {
                    Some(p) if p.is_file() => p.clone(),
                    Some(p) => {
                        errors.push(FieldError::new(
                            field,
                            format!("{} is not a readable file", p.display()),
                        ));
                        PathBuf::new()
                    }
                    None => {
                        errors.push(FieldError::new(field, "is required for the x509 identity"));
                        PathBuf::new()
                    }
                };
                let certificate = path("userCertificate", &raw.user_certificate);
                let key = path("userPrivateKey", &raw.user_private_key);
                Identity::X509 { certificate, key }
            }
            _ => Identity::Anonymous,
        };
        let root = raw.browse_root.trim();
        let browse_root = if root.eq_ignore_ascii_case("objects") {
            NodeId::from(ObjectId::ObjectsFolder)
        } else {
            match root.parse::<NodeId>() {
                Ok(id) => id,
                Err(_) => {
                    errors.push(FieldError::new(
                        "browseRoot",
                        "must be Objects or a node id such as ns=2;s=Plant or i=85",
                    ));
                    NodeId::from(ObjectId::ObjectsFolder)
                }
            }
        };
        let naming = if raw.tag_names == "nodeId" {
            Naming::NodeId
        } else {
            Naming::BrowsePath
        };
        let timeout = duration("timeout", &raw.timeout, &mut errors);
        let publishing_interval =
            duration("publishingInterval", &raw.publishing_interval, &mut errors);
        let channel_lifetime = duration(
            "secureChannelLifetime",
            &raw.secure_channel_lifetime,
            &mut errors,
        );
        let event_notifiers = event_notifiers(&raw.event_notifier, &mut errors);
        let event_notifiers = if raw.events {
            event_notifiers
        } else {
            Vec::new()
        };
        if !errors.is_empty() {
            return Err(SourceError::InvalidSettings(errors));
        }
        Ok(Self {
            endpoint_url: raw.endpoint_url.trim().to_owned(),
            policy,
            mode,
            trusted_thumbprint,
            identity,
            browse_root,
            naming,
            max_tags: raw.max_tags as usize,
            timeout,
            publishing_interval,
            channel_lifetime,
            event_notifiers,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(settings: serde_json::Value) -> SourceConfig {
        SourceConfig {
            name: "plc".into(),
            kind: KIND.into(),
            description: String::new(),
            settings: settings.as_object().unwrap().clone(),
        }
    }

    fn field_errors(settings: serde_json::Value) -> Vec<FieldError> {
        match Settings::read(&config(settings)) {
            Err(SourceError::InvalidSettings(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn endpoint_urls_are_checked_with_reasons() {
        assert!(check_endpoint("opc.tcp://plc.local:4840/").is_ok());
        assert!(check_endpoint("opc.tcp://10.0.0.5:4840").is_ok());
        assert!(
            check_endpoint("http://plc:4840/")
                .unwrap_err()
                .contains("opc.tcp://")
        );
        assert!(
            check_endpoint("opc.tcp://plc/")
                .unwrap_err()
                .contains("no port")
        );
        assert!(check_endpoint("plc:4840").is_err());
        assert!(
            check_endpoint("opc.tcp://u:p@plc:4840/")
                .unwrap_err()
                .contains("identity")
        );
    }

    #[test]
    fn defaults_give_an_anonymous_unencrypted_source_browsing_objects() {
        let settings =
            Settings::read(&config(json!({"endpointUrl": "opc.tcp://h:4840/"}))).unwrap();
        assert_eq!(settings.policy, SecurityPolicy::None);
        assert_eq!(settings.mode, MessageSecurityMode::None);
        assert_eq!(settings.browse_root, NodeId::from(ObjectId::ObjectsFolder));
        assert_eq!(settings.naming, Naming::BrowsePath);
        assert_eq!(settings.timeout, Duration::from_secs(10));
        assert!(matches!(settings.identity, Identity::Anonymous));
        assert_eq!(settings.event_notifiers, [NodeId::from(ObjectId::Server)]);
    }

    #[test]
    fn the_event_notifier_is_a_node_id_and_events_can_be_turned_off() {
        let read = |settings: serde_json::Value| Settings::read(&config(settings));
        let area =
            read(json!({"endpointUrl": "opc.tcp://h:4840/", "eventNotifier": " ns=2;s=Area1 "}))
                .unwrap();
        assert_eq!(area.event_notifiers, [NodeId::new(2, "Area1")]);
        let off = read(json!({"endpointUrl": "opc.tcp://h:4840/", "events": false})).unwrap();
        assert!(off.event_notifiers.is_empty());
        let errors =
            field_errors(json!({"endpointUrl": "opc.tcp://h:4840/", "eventNotifier": "Area 1"}));
        assert_eq!(errors[0].field, "eventNotifier");
        assert!(errors[0].message.contains("node id"), "{errors:?}");
    }

    #[test]
    fn several_event_notifiers_are_read_one_a_line_and_each_bad_line_is_named() {
        let read = |settings: serde_json::Value| Settings::read(&config(settings));
        let two = read(json!({"endpointUrl": "opc.tcp://h:4840/",
                              "eventNotifier": "Server\n\n ns=2;s=Area2 \nserver\n"}))
        .unwrap();
        assert_eq!(
            two.event_notifiers,
            [NodeId::from(ObjectId::Server), NodeId::new(2, "Area2")],
            "blank lines skipped, the same notifier kept once"
        );
        let lists = read(json!({"endpointUrl": "opc.tcp://h:4840/",
                                "eventNotifier": ["i=2253", "ns=2;s=Area2"]}))
        .unwrap();
        assert_eq!(
            lists.event_notifiers,
            [NodeId::from(ObjectId::Server), NodeId::new(2, "Area2")],
            "a list in a settings file"
        );
        let errors = field_errors(json!({"endpointUrl": "opc.tcp://h:4840/",
                                         "eventNotifier": "Server\nArea 1\nns=2;s=Ok\nns=x;i=1"}));
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert!(errors.iter().all(|e| e.field == "eventNotifier"));
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("line 2: \"Area 1\""),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("line 4: \"ns=x;i=1\""),
            "{messages:?}"
        );
        let blank =
            field_errors(json!({"endpointUrl": "opc.tcp://h:4840/", "eventNotifier": " \n "}));
        assert_eq!(blank[0].field, "eventNotifier");
    }

    #[test]
    fn fields_that_depend_on_each_other_are_named() {
        let errors = field_errors(json!({
            "endpointUrl": "opc.tcp://h/",
            "securityPolicy": "Basic256Sha256",
            "identity": "userName",
            "browseRoot": "ns=2;q=nope",
            "trustedThumbprint": "12:34",
        }));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "endpointUrl",
                "securityMode",
                "trustedThumbprint",
                "userName",
                "browseRoot"
            ],
            "{errors:?}"
        );
        let errors = field_errors(json!({
            "endpointUrl": "opc.tcp://h:1/", "securityMode": "Sign"
        }));
        assert_eq!(errors[0].field, "securityMode");
    }

    #[test]
    fn thumbprints_are_normalised() {
        let sha1 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01";
        assert_eq!(
            normalise_thumbprint(sha1).unwrap(),
            "abcdef0123456789abcdef0123456789abcdef01"
        );
        assert!(normalise_thumbprint("abc").is_none());
        assert!(normalise_thumbprint(&"g".repeat(40)).is_none());
    }

    #[test]
    fn the_password_is_secret_and_rsa_policies_name_the_advisory() {
        let schema = schema();
        assert_eq!(schema.secret_fields().collect::<Vec<_>>(), ["password"]);
        let policy = schema
            .fields
            .iter()
            .find(|f| f.name == "securityPolicy")
            .unwrap();
        assert!(policy.help.contains("RUSTSEC-2023-0071"));
        let debug = format!(
            "{:?}",
            Identity::UserName {
                user: "alice".into(),
                password: "hunter2".into()
            }
        );
        assert!(!debug.contains("hunter2"));
    }
}
