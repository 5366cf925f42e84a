//! `/account/returned`: where an app without a web page of its own (the demo app) sends the
//! browser back after the consent page, so Allow and Deny land on a page that says what
//! happened instead of a browser error. It never shows the code it carries.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{html_response, page};

/// The path apps register as a redirect URI (after the hub's issuer) to land here.
pub const RETURNED_PATH: &str = "/account/returned";

/// What the consent page sent back (RFC 6749 §4.1.2).
#[derive(Debug, Deserialize)]
pub struct Returned {
    code: Option<String>,
    error: Option<String>,
}

/// `GET /account/returned`.
pub async fn show(Query(back): Query<Returned>) -> Response {
    let (title, body) = match (&back.code, back.error.as_deref()) {
        (_, Some("access_denied")) => (
            "You denied access",
            html! {
                p { "The app was told you said no, and it got no access to your data. Nothing changed on your account." }
                p { "If you change your mind, start again from the app." }
            },
        ),
        (_, Some(other)) => (
            "The request ended without access",
            html! {
                p { "The hub sent the app back with " code { (other) } ": it got no access to your data." }
                p { "Start again from the app." }
            },
        ),
        (Some(_), None) => (
            "Access allowed",
            html! {
                p { "The app was sent a one-time code, which it exchanges for its access: from then on it reads "
                    "the data sources you ticked, and nothing else." }
                p { "This app has no page of its own to show you, so the hub shows this one. Your settings "
                    "list what each app may read, with a Revoke button." }
            },
        ),
        (None, None) => (
            "Nothing to show",
            html! { p { "This page is where an app lands after the consent page; nothing was sent back here." } },
        ),
    };
    html_response(
        StatusCode::OK,
        page(
            title,
            None,
            html! {
                section.card aria-labelledby="returned-heading" {
                    h1 id="returned-heading" { (title) }
                    (body)
                    p { a href="/account/settings" { "Go to your account settings" } }
                }
            },
        ),
    )
}
