//! The attack suite: a real hub over real TLS on loopback, attacked the ways the security
//! model must withstand. Every test asserts the refusal AND that nothing was granted.

mod harness;

mod answers_in_flight;
mod codes;
mod connector_consent;
mod connector_oauth_client;
mod connector_scope;
mod connector_takeover;
mod consent_csrf;
mod consent_scope_change;
mod data_dir;
mod device;
mod limits;
mod links;
mod pkce;
mod protocol;
mod query_scope;
mod rate_limits;
mod redirect_uri;
mod refresh;
mod revocation_race;
mod settings;
mod sign_in_links;
mod sign_ins;
mod sign_out;
mod tokens;
mod unregistered_links;
