//! Signing this connector in to a hub through the system browser (RFC 8252): the UI starts it,
//! the status shows it waiting, and the runtime links with the refresh token it ends with.

use uplink_connector::browser_sign_in::{BrowserSignIn, CancelSignIn, PendingSignIn, SignInError};
use uplink_connector::credentials::CredentialStore;
use uplink_connector::{ConfigStore, ConnectorConfig};

use crate::{Control, ControlError, ControlErrorCode, lock};

impl From<SignInError> for ControlError {
    fn from(error: SignInError) -> Self {
        ControlError::lower(error.code(), error.to_string())
    }
}

/// The sign-in in progress.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub pending: PendingSignIn,
    cancel: CancelSignIn,
}

impl Control {
    /// Replaces how sign-ins reach a browser (tests drive the hub's pages themselves).
    pub fn set_browser_sign_in(&self, sign_in: BrowserSignIn) {
        *lock(&self.inner.browser) = sign_in;
    }

    /// Opens the system browser at `hub_url`'s sign-in page and waits, in the background, for
    /// the owner to finish there; the status shows the wait (`signIn`) and then the link.
    /// `ca_pem` trusts a hub whose certificate comes from a private CA.
    pub async fn sign_in(
        &self,
        hub_url: &str,
        ca_pem: Option<String>,
    ) -> Result<PendingSignIn, ControlError> {
        let runtime = self.runtime().await?;
        self.cancel_sign_in();
        let trust = match ca_pem.filter(|pem| !pem.trim().is_empty()) {
            Some(pem) => uplink_tls::Trust::CustomCa(pem),
            None => uplink_tls::Trust::Platform,
        };
        let browser = lock(&self.inner.browser).clone();
        let (pending, task) = browser.start(hub_url, trust).await?;
        *lock(&self.inner.sign_in) = Some(Waiting {
            pending: pending.clone(),
            cancel: task.canceller(),
        });
        *lock(&self.inner.sign_in_error) = None;
        self.inner.publish();
        let control = self.clone();
        let started_at = pending.started_at;
        tokio::spawn(async move {
            let outcome = task.await;
            let ours = |w: &Option<Waiting>| {
                w.as_ref()
                    .is_some_and(|w| w.pending.started_at == started_at)
            };
            let finished = async {
                let signed = outcome?;
                let store = CredentialStore::new(&control.inner.data_dir);
                let previous = store.load().ok().flatten();
                // A real hub gets the owner's own sources, never the demo's simulated one
                // that a fresh connector starts with (it stays if the owner changed it).
                let untouched_demo = ConfigStore::new(&control.inner.data_dir)
                    .load()
                    .is_ok_and(|config| config.sources == ConnectorConfig::default().sources);
                if untouched_demo {
                    for source in ConnectorConfig::default().sources {
                        runtime.remove_source(&source.name).await?;
                        tracing::info!(source = %source.name, "the demo's simulated source is not offered to a real hub");
                    }
                }
                runtime
                    .sign_in(signed.credentials(previous.as_ref()))
                    .await?;
                control.leave_local_hub().await?;
                control.remember(|s| s.paused = false)?;
                Ok::<(), ControlError>(())
            }
            .await;
            {
                let mut waiting = lock(&control.inner.sign_in);
                if ours(&waiting) {
                    *waiting = None;
                }
            }
            if let Err(error) = finished {
                tracing::info!(code = %error.code, "browser sign-in ended without signing in");
                if error.code != ControlErrorCode::SignInCancelled {
                    *lock(&control.inner.sign_in_error) = Some(error.message);
                }
            } else {
                tracing::info!("signed in to the hub through the browser");
            }
            control.inner.publish();
        });
        Ok(pending)
    }

    /// Stops waiting for a browser sign-in.
    pub fn cancel_sign_in(&self) {
        if let Some(waiting) = lock(&self.inner.sign_in).take() {
            waiting.cancel.cancel();
        }
        self.inner.publish();
    }
}
