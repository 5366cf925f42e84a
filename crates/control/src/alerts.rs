//! Which desktop notifications a stream of statuses deserves.
//!
//! A host feeds [`Alerts`] every [`ControlStatus`] it sees, in order, and shows what comes back.
//! The rules keep notifications rare enough to be read:
//! - **link lost** once per incident — when a link that was up has been down for
//!   [`LOSS_GRACE`] — never once per retry, and never when the owner paused the link, asked for
//!   a reconnect, or the first retry mended it;
//! - **link restored** only after a loss was announced;
//! - **sign-in expired** when the link becomes signed out while credentials are on file (the hub
//!   refused them), once until the link leaves that state; a deliberate sign-out clears the
//!   credentials and stays quiet.
//!
//! ```
//! use uplink_control::{Alert, Alerts};
//! # fn statuses() -> Vec<uplink_control::ControlStatus> { Vec::new() }
//! let mut alerts = Alerts::default();
//! for status in statuses() {
//!     for alert in alerts.observe(&status) {
//!         println!("{}: {}", alert.title(), alert.body());
//!     }
//! }
//! ```

use chrono::{DateTime, Utc};
use uplink_connector::runtime::LinkState;

use crate::ControlStatus;

/// One notification to show the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// The link to the hub dropped; apps cannot read this site's data until it is back.
    LinkLost {
        /// The hub, if known.
        hub_url: Option<String>,
        /// What went wrong, in the runtime's words (never a secret).
        reason: Option<String>,
    },
    /// The link is back after a loss.
    LinkRestored {
        /// The transport now in use, e.g. `WebSockets`.
        transport: Option<String>,
    },
    /// The hub no longer accepts this connector's sign-in.
    SignInExpired {
        /// The hub to sign in to again.
        hub_url: Option<String>,
    },
}

impl Alert {
    /// A short headline.
    pub fn title(&self) -> &'static str {
        match self {
            Alert::LinkLost { .. } => "Uplink lost its link to the hub",
            Alert::LinkRestored { .. } => "Uplink is linked again",
            Alert::SignInExpired { .. } => "Uplink needs you to sign in again",
        }
    }

    /// One or two sentences saying what it means for the owner.
    pub fn body(&self) -> String {
        match self {
            Alert::LinkLost { hub_url, reason } => {
                let hub = hub_url.as_deref().unwrap_or("the hub");
                match reason {
                    Some(reason) => format!(
                        "Apps cannot read this site's data until the link to {hub} is back ({reason}). Uplink keeps retrying."
                    ),
                    None => format!(
                        "Apps cannot read this site's data until the link to {hub} is back. Uplink keeps retrying."
                    ),
                }
            }
            Alert::LinkRestored { transport } => match transport {
                Some(transport) => {
                    format!("Apps can read this site's data again (linked via {transport}).")
                }
                None => "Apps can read this site's data again.".to_owned(),
            },
            Alert::SignInExpired { hub_url } => format!(
                "{} no longer accepts this connector's sign-in. Choose \"Sign in again\" in the tray menu.",
                hub_url.as_deref().unwrap_or("The hub")
            ),
        }
    }

    /// A stable identifier (for a notification's tag, and for tests).
    pub fn id(&self) -> &'static str {
        match self {
            Alert::LinkLost { .. } => "link-lost",
            Alert::LinkRestored { .. } => "link-restored",
            Alert::SignInExpired { .. } => "sign-in-expired",
        }
    }
}

/// How long a link that was up must stay down before its loss is announced. A reconnect the
/// owner asked for, or a blip that the first retry mends, passes quietly.
pub const LOSS_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// The notification state machine: remembers just enough of earlier statuses to announce each
/// incident once. Pure: no clock and no I/O — it reads the time from the statuses, so a loss is
/// announced with the first status that arrives `LOSS_GRACE` (ten seconds) after the link went
/// down (a retrying link publishes one per attempt).
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    /// The link has been up since the app started (or since it was last paused).
    was_connected: bool,
    /// When the current outage began, while the link is down after having been up.
    down_since: Option<DateTime<Utc>>,
    /// A loss was announced and the link has not come back since.
    loss_announced: bool,
    /// An expired sign-in was announced and the link is still signed out.
    expiry_announced: bool,
}

impl Alerts {
    /// Takes the next status and returns the notifications it calls for, oldest first.
    pub fn observe(&mut self, status: &ControlStatus) -> Vec<Alert> {
        let connector = &status.connector;
        let mut alerts = Vec::new();

        if status.paused {
            // The owner closed the link on purpose: nothing to announce, and no open incident
            // carries over into the resumed link.
            self.down_since = None;
            self.loss_announced = false;
            return alerts;
        }

        match connector.link {
            LinkState::Connected => {
                self.was_connected = true;
                self.down_since = None;
                self.expiry_announced = false;
                if std::mem::take(&mut self.loss_announced) {
                    alerts.push(Alert::LinkRestored {
                        transport: connector.transport.clone(),
                    });
                }
            }
            link @ (LinkState::Reconnecting | LinkState::Offline | LinkState::Connecting) => {
                self.expiry_announced = false;
                // `connecting` alone (a first link, or registering a new one) starts no outage;
                // it only continues one.
                if self.was_connected && self.down_since.is_none() && link != LinkState::Connecting
                {
                    self.down_since = Some(connector.updated_at);
                }
                if let Some(since) = self.down_since
                    && !self.loss_announced
                    && connector.updated_at - since >= LOSS_GRACE
                {
                    self.loss_announced = true;
                    alerts.push(Alert::LinkLost {
                        hub_url: connector.hub_url.clone(),
                        reason: connector.last_error.clone(),
                    });
                }
            }
            LinkState::SignedOut => {
                // The owner now has something to do; the outage, if any, is this.
                self.down_since = None;
                if status.configured && !self.expiry_announced {
                    self.expiry_announced = true;
                    alerts.push(Alert::SignInExpired {
                        hub_url: connector.hub_url.clone(),
                    });
                }
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;

    /// A fresh control surface's first status, taken once: the runtime it would launch never
    /// runs, since the test's runtime ends before the launch task is polled.
    fn blank() -> ControlStatus {
        static BLANK: std::sync::OnceLock<ControlStatus> = std::sync::OnceLock::new();
        BLANK
            .get_or_init(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let dir = std::env::temp_dir().join("uplink-alerts-test-never-written");
                runtime.block_on(async {
                    crate::Control::start(crate::HostKind::Desktop, dir).status()
                })
            })
            .clone()
    }

    /// A status with `link`, published `at` seconds into the test.
    fn status(link: LinkState, at: i64) -> ControlStatus {
        let mut status = blank();
        status.configured = true;
        status.connector.link = link;
        status.connector.hub_url = Some("https://hub.example".to_owned());
        status.connector.updated_at =
            DateTime::from_timestamp(1_800_000_000, 0).unwrap() + chrono::TimeDelta::seconds(at);
        status
    }

    fn paused(at: i64) -> ControlStatus {
        let mut status = status(Offline, at);
        status.paused = true;
        status
    }

    fn feed(alerts: &mut Alerts, statuses: &[(LinkState, i64)]) -> Vec<&'static str> {
        statuses
            .iter()
            .flat_map(|(link, at)| alerts.observe(&status(*link, *at)))
            .map(|alert| alert.id())
            .collect()
    }

    #[test]
    fn an_outage_is_announced_once_however_many_retries_follow() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[
                (Connecting, 0),
                (Connected, 1),
                (Reconnecting, 100),
                (Reconnecting, 101),
                (Reconnecting, 104),
                (Reconnecting, 112),
                (Reconnecting, 130),
                (Reconnecting, 160),
                (Connecting, 161),
                (Connected, 162),
            ],
        );
        assert_eq!(shown, ["link-lost", "link-restored"]);
    }

    #[test]
    fn the_loss_is_announced_once_the_grace_has_passed() {
        let mut alerts = Alerts::default();
        let grace = LOSS_GRACE.num_seconds();
        assert!(feed(&mut alerts, &[(Connected, 0), (Reconnecting, 10)]).is_empty());
        assert!(feed(&mut alerts, &[(Reconnecting, 10 + grace - 1)]).is_empty());
        assert_eq!(
            feed(&mut alerts, &[(Reconnecting, 10 + grace)]),
            ["link-lost"]
        );
    }

    #[test]
    fn each_incident_is_announced() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[
                (Connected, 0),
                (Reconnecting, 10),
                (Reconnecting, 30),
                (Connected, 31),
                (Offline, 50),
                (Offline, 70),
                (Connected, 80),
            ],
        );
        assert_eq!(
            shown,
            ["link-lost", "link-restored", "link-lost", "link-restored"]
        );
    }

    #[test]
    fn a_requested_reconnect_or_a_blip_passes_quietly() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[
                (Connected, 0),
                (Reconnecting, 5),
                (Reconnecting, 5),
                (Connecting, 6),
                (Connected, 6),
                (Reconnecting, 50),
                (Connected, 52),
            ],
        );
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn nothing_is_lost_before_the_link_was_ever_up() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[
                (Offline, 0),
                (Connecting, 1),
                (Connecting, 60),
                (Connecting, 600),
                (Connected, 601),
            ],
        );
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn pausing_and_resuming_is_not_an_incident() {
        let mut alerts = Alerts::default();
        assert!(feed(&mut alerts, &[(Connected, 0)]).is_empty());
        assert!(alerts.observe(&paused(10)).is_empty());
        assert!(alerts.observe(&paused(500)).is_empty());
        let shown = feed(&mut alerts, &[(Connecting, 501), (Connected, 502)]);
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn pausing_during_an_outage_closes_the_incident() {
        let mut alerts = Alerts::default();
        assert_eq!(
            feed(
                &mut alerts,
                &[(Connected, 0), (Reconnecting, 1), (Reconnecting, 20)]
            ),
            ["link-lost"]
        );
        assert!(alerts.observe(&paused(30)).is_empty());
        assert!(feed(&mut alerts, &[(Connecting, 40), (Connected, 41)]).is_empty());
    }

    #[test]
    fn refused_credentials_ask_for_a_new_sign_in_once() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[
                (Connected, 0),
                (SignedOut, 1),
                (SignedOut, 30),
                (SignedOut, 90),
            ],
        );
        assert_eq!(shown, ["sign-in-expired"]);
        // Signing in again brings the link back; a later expiry is a new incident.
        let shown = feed(
            &mut alerts,
            &[(Connecting, 100), (Connected, 101), (SignedOut, 200)],
        );
        assert_eq!(shown, ["sign-in-expired"]);
    }

    #[test]
    fn an_expiry_found_at_start_is_announced() {
        let mut alerts = Alerts::default();
        let shown = feed(&mut alerts, &[(Offline, 0), (SignedOut, 1)]);
        assert_eq!(shown, ["sign-in-expired"]);
    }

    #[test]
    fn an_outage_that_ends_in_an_expiry_announces_both_and_then_the_return() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[
                (Connected, 0),
                (Reconnecting, 1),
                (Reconnecting, 20),
                (SignedOut, 25),
                (Connecting, 300),
                (Connected, 301),
            ],
        );
        assert_eq!(shown, ["link-lost", "sign-in-expired", "link-restored"]);
    }

    #[test]
    fn never_configured_or_signed_out_on_purpose_stays_quiet() {
        let mut alerts = Alerts::default();
        let mut fresh = status(SignedOut, 0);
        fresh.configured = false;
        assert!(alerts.observe(&fresh).is_empty());

        let mut alerts = Alerts::default();
        assert!(alerts.observe(&status(Connected, 0)).is_empty());
        let mut signed_out = status(SignedOut, 1);
        signed_out.configured = false;
        assert!(alerts.observe(&signed_out).is_empty());
    }

    #[test]
    fn the_words_name_the_hub_the_reason_and_the_transport() {
        let mut alerts = Alerts::default();
        feed(&mut alerts, &[(Connected, 0), (Reconnecting, 1)]);
        let mut lost = status(Reconnecting, 60);
        lost.connector.last_error = Some("connection refused".to_owned());
        let [lost] = alerts.observe(&lost).try_into().unwrap();
        assert_eq!(lost.title(), "Uplink lost its link to the hub");
        assert!(
            lost.body().contains("https://hub.example"),
            "{}",
            lost.body()
        );
        assert!(
            lost.body().contains("connection refused"),
            "{}",
            lost.body()
        );

        let mut back = status(Connected, 61);
        back.connector.transport = Some("ServerSentEvents".to_owned());
        let [back] = alerts.observe(&back).try_into().unwrap();
        assert!(back.body().contains("ServerSentEvents"), "{}", back.body());

        let expired = Alert::SignInExpired { hub_url: None };
        assert!(
            expired.body().contains("Sign in again"),
            "{}",
            expired.body()
        );
    }
}
