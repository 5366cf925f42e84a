//! Which desktop notifications a stream of statuses deserves.
//!
//! A host feeds [`Alerts`] every [`ControlStatus`] it sees, in order, and shows what comes back.
//! The rules keep notifications rare enough to be read:
//! - **link lost** once per incident — when a link that was up drops and the runtime starts
//!   retrying — never once per retry, and never when the owner paused the link or asked for a
//!   reconnect (those pass through `connecting`, which is not an incident);
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

/// The notification state machine: remembers just enough of earlier statuses to announce each
/// incident once. Pure: no clock, no I/O.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    /// The link state of the last status seen.
    last_link: Option<LinkState>,
    /// A loss was announced and the link has not come back since.
    loss_announced: bool,
    /// An expired sign-in was announced and the link is still signed out.
    expiry_announced: bool,
}

impl Alerts {
    /// Takes the next status and returns the notifications it calls for, oldest first.
    pub fn observe(&mut self, status: &ControlStatus) -> Vec<Alert> {
        let link = status.connector.link;
        let previous = self.last_link.replace(link);
        let mut alerts = Vec::new();

        if status.paused {
            // The owner closed the link on purpose: nothing to announce, and no open incident
            // carries over into the resumed link.
            self.loss_announced = false;
            return alerts;
        }

        match link {
            LinkState::Connected => {
                self.expiry_announced = false;
                if std::mem::take(&mut self.loss_announced) {
                    alerts.push(Alert::LinkRestored {
                        transport: status.connector.transport.clone(),
                    });
                }
            }
            LinkState::Reconnecting | LinkState::Offline => {
                self.expiry_announced = false;
                if previous == Some(LinkState::Connected) && !self.loss_announced {
                    self.loss_announced = true;
                    alerts.push(Alert::LinkLost {
                        hub_url: status.connector.hub_url.clone(),
                        reason: status.connector.last_error.clone(),
                    });
                }
            }
            LinkState::SignedOut => {
                // A loss already announced is superseded: the owner now has something to do.
                if status.configured && !self.expiry_announced {
                    self.expiry_announced = true;
                    alerts.push(Alert::SignInExpired {
                        hub_url: status.connector.hub_url.clone(),
                    });
                }
            }
            LinkState::Connecting => {
                self.expiry_announced = false;
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(link: LinkState) -> ControlStatus {
        let mut status = ControlStatus {
            connector: uplink_connector::ConnectorStatus::default(),
            configured: true,
            paused: false,
            transport_preference: Default::default(),
            local_hub: None,
            link_history: Vec::new(),
            sign_in: None,
            data_dir: "/tmp/uplink".to_owned(),
        };
        status.connector.link = link;
        status.connector.hub_url = Some("https://hub.example".to_owned());
        status
    }

    fn feed(alerts: &mut Alerts, links: &[LinkState]) -> Vec<&'static str> {
        links
            .iter()
            .flat_map(|link| alerts.observe(&status(*link)))
            .map(|alert| alert.id())
            .collect()
    }

    use LinkState::*;

    #[test]
    fn a_drop_is_announced_once_however_many_retries_follow() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[
                Connecting,
                Connected,
                Reconnecting,
                Connecting,
                Reconnecting,
                Connecting,
                Reconnecting,
                Connected,
            ],
        );
        assert_eq!(shown, ["link-lost", "link-restored"]);
    }

    #[test]
    fn each_incident_is_announced() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[Connected, Reconnecting, Connected, Offline, Connected],
        );
        assert_eq!(
            shown,
            ["link-lost", "link-restored", "link-lost", "link-restored"]
        );
    }

    #[test]
    fn nothing_is_lost_before_the_link_was_ever_up() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[Offline, Connecting, Reconnecting, Reconnecting, Connected],
        );
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn a_requested_reconnect_passes_quietly() {
        let mut alerts = Alerts::default();
        let shown = feed(&mut alerts, &[Connected, Connecting, Connected]);
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn pausing_and_resuming_is_not_an_incident() {
        let mut alerts = Alerts::default();
        assert!(alerts.observe(&status(Connected)).is_empty());
        let mut paused = status(Offline);
        paused.paused = true;
        assert!(alerts.observe(&paused).is_empty());
        assert!(alerts.observe(&paused).is_empty());
        let shown = feed(&mut alerts, &[Connecting, Connected]);
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn pausing_during_an_outage_closes_the_incident() {
        let mut alerts = Alerts::default();
        assert_eq!(feed(&mut alerts, &[Connected, Reconnecting]), ["link-lost"]);
        let mut paused = status(Offline);
        paused.paused = true;
        assert!(alerts.observe(&paused).is_empty());
        assert!(feed(&mut alerts, &[Connecting, Connected]).is_empty());
    }

    #[test]
    fn refused_credentials_ask_for_a_new_sign_in_once() {
        let mut alerts = Alerts::default();
        let shown = feed(&mut alerts, &[Connected, SignedOut, SignedOut, SignedOut]);
        assert_eq!(shown, ["sign-in-expired"]);
        // Signing in again brings the link back; a later expiry is a new incident.
        let shown = feed(&mut alerts, &[Connecting, Connected, SignedOut]);
        assert_eq!(shown, ["sign-in-expired"]);
    }

    #[test]
    fn an_expiry_found_at_start_is_announced() {
        let mut alerts = Alerts::default();
        assert_eq!(
            feed(&mut alerts, &[Offline, SignedOut]),
            ["sign-in-expired"]
        );
    }

    #[test]
    fn an_outage_that_ends_in_an_expiry_announces_both_and_then_the_return() {
        let mut alerts = Alerts::default();
        let shown = feed(
            &mut alerts,
            &[Connected, Reconnecting, SignedOut, Connecting, Connected],
        );
        assert_eq!(shown, ["link-lost", "sign-in-expired", "link-restored"]);
    }

    #[test]
    fn never_configured_or_signed_out_on_purpose_stays_quiet() {
        let mut alerts = Alerts::default();
        let mut fresh = status(SignedOut);
        fresh.configured = false;
        assert!(alerts.observe(&fresh).is_empty());

        let mut alerts = Alerts::default();
        assert!(alerts.observe(&status(Connected)).is_empty());
        let mut signed_out = status(SignedOut);
        signed_out.configured = false;
        assert!(alerts.observe(&signed_out).is_empty());
    }

    #[test]
    fn the_words_name_the_hub_the_reason_and_the_transport() {
        let mut alerts = Alerts::default();
        alerts.observe(&status(Connected));
        let mut lost = status(Reconnecting);
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

        let mut back = status(Connected);
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
