//! Waiting on a `watch` flag without holding its read guard across later awaits.

use tokio::sync::watch;

/// Completes once the flag is true (at once if it already is). A dropped sender counts as
/// raised: nobody is left to lower it.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|raised| *raised).await;
}
