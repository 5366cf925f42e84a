//! The app data API under `/api/v1/`: what apps call with their access tokens.

use std::sync::Arc;

use axum::Router;

use crate::hub::Hub;
use crate::relay::ConnectorRouter;

/// The app data API's routes; queries go to connectors through `relay`.
pub fn routes(relay: Arc<dyn ConnectorRouter>) -> Router<Arc<Hub>> {
    let _ = relay;
    Router::new()
}
