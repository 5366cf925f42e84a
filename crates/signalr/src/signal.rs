//! Waiting for flags: on a `watch` channel (the client), or on a [`OnceFlag`], the lighter
//! one-shot flag every server connection holds.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, watch};

/// Completes once the flag is true (at once if it already is). A dropped sender counts as
/// raised: nobody is left to lower it.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|raised| *raised).await;
}

/// A flag raised once that any number of tasks can wait for. A `watch` channel carries eight
/// notifiers; this is one atomic and one notifier, which counts when every idle connection
/// holds one.
#[derive(Debug, Default)]
pub(crate) struct OnceFlag {
    raised: AtomicBool,
    notify: Notify,
}

impl OnceFlag {
    /// Raises the flag and wakes every waiter; `false` if it was already raised.
    pub fn raise(&self) -> bool {
        let first = !self.raised.swap(true, Ordering::AcqRel);
        if first {
            self.notify.notify_waiters();
        }
        first
    }

    /// Whether the flag is raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Completes once the flag is raised (at once if it already is).
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a raise in between still wakes this waiter.
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn every_waiter_wakes_once_the_flag_is_raised() {
        let flag = Arc::new(OnceFlag::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let flag = flag.clone();
                tokio::spawn(async move { flag.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(flag.raise());
        assert!(!flag.raise(), "raised once");
        for waiter in waiters {
            waiter.await.unwrap();
        }
        flag.wait().await; // already raised: at once
    }
}
