//! A link that authenticates with a valid connector token but never registers is closed after
//! the hub's registration deadline, so it cannot hold a connector slot for as long as it
//! renews its token; a link that registers in time stays up.

use std::time::Duration;

use uplink_link::close_reason;

use crate::harness::TestHub;
use crate::links::Link;

const DEADLINE: Duration = Duration::from_millis(600);

#[tokio::test]
async fn a_link_that_never_registers_is_closed_after_the_deadline() {
    let hub = TestHub::start_with(|c| c.register_timeout = DEADLINE).await;
    let plant = hub.hub.add_connector("ada", "Plant B").await.unwrap();
    let id = plant.connector.id.clone();
    let token = hub.credential_token(&id, plant.credential.expose()).await;

    let registered = Link::open(&hub, token.clone()).await;
    registered.register(&id).await.unwrap();
    let mut idle = Link::open(&hub, token).await;

    let (reason, _) = idle.closed().await;
    assert!(
        reason.ends_with(close_reason::NOT_REGISTERED),
        "closed with '{reason}'"
    );
    idle.stop().await;

    // The registered link outlived the deadline and still answers.
    tokio::time::sleep(DEADLINE).await;
    assert!(registered.alive().await, "the registered link stays up");
    assert!(hub.hub.relay().is_online(&id));
}
