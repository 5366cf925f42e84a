//! The attack suite's hub: the test kit's real hub (fresh SQLite file, real TLS on loopback,
//! Ada, a public and a confidential app, her connector), with two data sources on Ada's
//! connector to consent to.

use std::ops::Deref;

use uplink_hub::HubConfig;
use uplink_hub::store::DataSource;
pub use uplink_testkit::*;

pub struct TestHub {
    kit: uplink_testkit::TestHub,
    pub historian: DataSource,
    pub lab: DataSource,
}

impl Deref for TestHub {
    type Target = uplink_testkit::TestHub;

    fn deref(&self) -> &Self::Target {
        &self.kit
    }
}

impl TestHub {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut HubConfig)) -> Self {
        let kit = uplink_testkit::TestHub::start_with(configure).await;
        let plant = kit.plant_id();
        let historian = kit
            .hub
            .add_source(plant, "historian", "Process historian")
            .await
            .unwrap();
        let lab = kit
            .hub
            .add_source(plant, "lab", "Lab results")
            .await
            .unwrap();
        Self {
            kit,
            historian,
            lab,
        }
    }

    pub fn authorize_params(client_id: &str, redirect_uri: &str) -> Vec<(String, String)> {
        authorize_params(client_id, redirect_uri)
    }

    pub fn cookie_header(cookie: &str) -> reqwest::header::HeaderMap {
        cookie_header(cookie)
    }

    pub async fn tokens(response: reqwest::Response) -> Tokens {
        tokens(response).await
    }
}
