//! The page frame shared by every human page, its stylesheet, and the error page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet, served from `/assets/hub.css` (inline styles are blocked by the CSP).
pub const STYLESHEET: &str = r#"
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --bg: #f6f8fa; --card: #fff;
  --line: #d0d7de; --accent: #0b5cad; --accent-fg: #fff; --danger: #b42318; --focus: #f59e0b; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9da7b3; --bg: #0d1117;
  --card: #161b22; --line: #30363d; --accent: #4493f8; --accent-fg: #0d1117; --danger: #f85149; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header.site { padding: .75rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--card);
  display: flex; justify-content: space-between; align-items: center; }
header.site .brand { font-weight: 700; letter-spacing: .02em; }
main { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1.5rem;
  margin-bottom: 1.25rem; }
h1 { font-size: 1.5rem; margin: 0 0 .75rem; }
h2 { font-size: 1.1rem; margin: 1.25rem 0 .5rem; }
p.lead { color: var(--muted); margin-top: 0; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input[type=text], input[type=password], input[type=email] { width: 100%; padding: .6rem .7rem; font: inherit;
  border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
fieldset { border: 1px solid var(--line); border-radius: 8px; margin: 1rem 0; padding: .5rem 1rem 1rem; }
legend { font-weight: 700; padding: 0 .35rem; }
.choice { display: flex; gap: .6rem; align-items: flex-start; margin: .6rem 0; }
.choice input { margin-top: .3rem; width: 1.1rem; height: 1.1rem; flex: none; }
.choice label { margin: 0; font-weight: 600; }
.choice .hint { display: block; font-weight: 400; color: var(--muted); font-size: .92rem; }
.choice.write { margin-left: 1.7rem; }
.choice.write label { font-weight: 400; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1.25rem; }
button { font: inherit; font-weight: 600; padding: .6rem 1.2rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: var(--card); color: var(--fg); }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-fg); }
button.danger { color: var(--danger); border-color: var(--danger); background: transparent; }
a.button { display: inline-block; font-weight: 600; padding: .6rem 1.2rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--card); color: var(--fg); text-decoration: none; }
.revoked { color: var(--danger); font-weight: 600; }
button.small { padding: .25rem .7rem; font-size: .9rem; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.error { border-left: 4px solid var(--danger); padding: .5rem .75rem; background: var(--bg); margin: 1rem 0; }
.notice { border-left: 4px solid var(--accent); padding: .5rem .75rem; background: var(--bg); margin: 1rem 0; }
.warning { border-left: 4px solid var(--danger); padding: .5rem .75rem; background: var(--bg); margin: 1rem 0; font-weight: 600; }
dl.request { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 1rem 0; }
dl.request dt { color: var(--muted); font-weight: 600; }
dl.request dd { margin: 0; }
table { width: 100%; border-collapse: collapse; font-size: .95rem; }
th, td { text-align: left; padding: .45rem .4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
.app-head { display: flex; justify-content: space-between; align-items: center; gap: 1rem; }
.muted { color: var(--muted); }
form.inline { display: inline; margin: 0; }
code { font-size: .9em; }
"#;

/// A whole page around `body`. `signed_in_as` shows who is signed in, with a sign-out button.
pub fn page(title: &str, signed_in_as: Option<(&str, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · Uplink hub" }
                link rel="stylesheet" href="/assets/hub.css";
            }
            body {
                header.site {
                    span.brand { "Uplink hub" }
                    @if let Some((name, csrf)) = signed_in_as {
                        form.inline method="post" action="/account/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            span.muted { "Signed in as " strong { (name) } " " }
                            button.small type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML response that is never cached.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page explaining why the hub stopped, without redirecting anywhere.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html_response(
        status,
        page(
            title,
            None,
            html! {
                div.card role="alert" {
                    h1 { (title) }
                    p { (message) }
                    p.muted { "You can close this page. Nothing was shared." }
                }
            },
        ),
    )
}

/// The page for a path no route serves: says so in the hub's style and leads back to the account.
pub fn not_found_page(path: &str) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        page(
            "Page not found",
            None,
            html! {
                div.card role="alert" {
                    h1 { "Page not found" }
                    p { "This hub has no page at " code { (path) } "." }
                    p { a href="/account/settings" { "Go to your account settings" } }
                }
            },
        ),
    )
}

/// `GET /assets/hub.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A time for people: `2026-11-25 08:15 UTC`.
pub fn human_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_messages_are_escaped() {
        let html = page("<script>", None, html! { p { ("<b>x</b>") } }).into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
    }
}
