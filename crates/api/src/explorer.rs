//! The block explorer: static HTML, CSS and JS from `ui/`, embedded in the binary and
//! served at `/explorer/` (and at `/` to browsers, see `tutorial::root`). The pages
//! read the `/v1` API and `/v1/events`; they load nothing from elsewhere.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

/// The explorer's page; its assets are named with absolute `/explorer/` paths, so the
/// same page works at `/` and at `/explorer/`.
const INDEX_HTML: &str = include_str!("../../../ui/index.html");
const APP_JS: &str = include_str!("../../../ui/app.js");
const STYLE_CSS: &str = include_str!("../../../ui/style.css");

/// What the page may load: only this node's own files and API (and data: images, for
/// the icon). The page shares its origin with routes that change the node, so nothing
/// else may run in it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The explorer's page, with its content security policy.
pub(crate) fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /explorer/`: the explorer.
#[utoipa::path(get, path = "/explorer/", tag = "explorer",
    responses((status = 200, description = "The block explorer", content_type = "text/html")))]
pub(crate) async fn index() -> Response {
    page()
}

/// `GET /explorer`: to `/explorer/`.
#[utoipa::path(get, path = "/explorer", tag = "explorer",
    responses((status = 308, description = "Redirects to /explorer/")))]
pub(crate) async fn bare() -> Redirect {
    Redirect::permanent("/explorer/")
}

/// `GET /explorer/app.js`.
#[utoipa::path(get, path = "/explorer/app.js", tag = "explorer",
    responses((status = 200, description = "The explorer's script", content_type = "text/javascript")))]
pub(crate) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /explorer/style.css`.
#[utoipa::path(get, path = "/explorer/style.css", tag = "explorer",
    responses((status = 200, description = "The explorer's style sheet", content_type = "text/css")))]
pub(crate) async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// One of the embedded files, with the page's content security policy.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            // Embedded in this binary: a new node version brings new files.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
