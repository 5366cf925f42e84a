//! Slow steps a window may stop: a test of a data source's settings (a large file takes a
//! while to read) and the connectivity test. The window names each run with an id of its own;
//! `cancel_run` with that id drops the step's future, which stops the work itself (a CSV load
//! stops between rows, network steps close their connections), not only the wait for it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::{Control, ControlError, ControlErrorCode, lock};

/// The runs under way, each with the sender that stops it.
#[derive(Debug, Default)]
pub(crate) struct Runs {
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
}

/// Forgets a run when it ends, however it ends.
struct Registered<'a> {
    runs: &'a Runs,
    id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.runs.running).remove(&self.id);
    }
}

/// The longest run id a window may choose.
const MAX_RUN_ID: usize = 64;

impl Control {
    /// Runs `work`, stopped early when [`cancel_run`](Self::cancel_run) names `run_id`. Without
    /// an id it simply runs.
    pub(crate) async fn cancellable<T>(
        &self,
        run_id: Option<String>,
        what: &str,
        work: impl Future<Output = Result<T, ControlError>>,
    ) -> Result<T, ControlError> {
        let Some(id) = run_id else {
            return work.await;
        };
        if id.is_empty() || id.len() > MAX_RUN_ID {
            return Err(ControlError::new(
                ControlErrorCode::InvalidArguments,
                format!("a run id has 1 to {MAX_RUN_ID} characters"),
            ));
        }
        let (stop, mut stopped) = watch::channel(false);
        lock(&self.inner.runs.running).insert(id.clone(), stop);
        let _registered = Registered {
            runs: &self.inner.runs,
            id,
        };
        tokio::select! {
            result = work => result,
            _ = stopped.wait_for(|stop| *stop) => {
                tracing::info!(what, "stopped at the user's request");
                Err(ControlError::new(
                    ControlErrorCode::Cancelled,
                    format!("the {what} was stopped before it finished"),
                ))
            }
        }
    }

    /// Stops the run `run_id`; a run that already ended (or never began) is left as it is.
    pub fn cancel_run(&self, run_id: &str) {
        if let Some(stop) = lock(&self.inner.runs.running).get(run_id) {
            stop.send_replace(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Sets its flag when dropped.
    struct DroppedFlag(Arc<AtomicBool>);

    impl Drop for DroppedFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn cancelling_a_run_drops_its_work_and_answers_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::start(crate::HostKind::Browser, dir.path().to_owned());
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DroppedFlag(dropped.clone());
        let work = async move {
            let _held = flag;
            std::future::pending::<Result<(), ControlError>>().await
        };
        let running = {
            let control = control.clone();
            tokio::spawn(async move { control.cancellable(Some("t1".into()), "test", work).await })
        };
        while !lock(&control.inner.runs.running).contains_key("t1") {
            tokio::task::yield_now().await;
        }
        control.cancel_run("t1");
        let error = running.await.unwrap().unwrap_err();
        assert_eq!(error.code, ControlErrorCode::Cancelled);
        assert!(dropped.load(Ordering::SeqCst), "the work was not dropped");
        assert!(lock(&control.inner.runs.running).is_empty());
        // An unknown run is no error.
        control.cancel_run("t1");
    }
}
