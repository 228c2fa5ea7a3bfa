//! The HTTP API of an oxchain node (axum): the tutorials' routes, the `/v1` API, a
//! WebSocket of chain events, Prometheus metrics, the OpenAPI document and its page.
//!
//! Every route is defined once, with its OpenAPI description (utoipa), so the router
//! and `/openapi.json` hold the same routes. Errors are JSON `{"message", "code"}`;
//! bad input gets a 4xx, never a 500. Bodies are capped (413). Only the names the node is
//! reached by are answered, pages of other sites cannot change the node ([`access`]),
//! and routes that change it need a bearer token when the node is not bound to loopback.
//!
//! # Layout
//! - [`state`]: [`AppState`], what the handlers share, and [`ApiParts`] to build it.
//! - [`access`]: the Host allowlist and the refusal of cross-site changes (ADR 0022).
//! - `tutorial`: `/`, `/chain`, `/mine`, `/transactions/new`, `/transaction`.
//! - `chain_json`: the whole chain as the tutorials' JSON, streamed from one snapshot.
//! - `v1`: `/v1/...`.
//! - `peers`: `/v1/peers`, `/nodes`, `/nodes/register`, `/nodes/resolve`.
//! - `events`: `/v1/events` (WebSocket).
//! - `light`: `/v1/headers` and `/v1/data/{hash}`, what a light client reads.
//! - `search`: `/v1/search?q=`, what a search box's query names.
//! - `forks`: `/v1/forks`, the side blocks and reorgs seen lately.
//! - `explorer`: the block explorer's files (`ui/`), at `/explorer/` and, for browsers, `/`.
//! - `metrics`: `/metrics` and request timing.
//! - [`body`]: bodies read as JSON whatever the Content-Type, or as forms.
//! - [`error`]: [`ApiError`] and the JSON error shape.
//! - [`views`]: the JSON shapes of blocks and transactions.

pub mod access;
pub mod body;
mod chain_json;
pub mod error;
mod events;
mod explorer;
mod forks;
mod light;
mod metrics;
pub mod peers;
mod search;
pub mod state;
mod tutorial;
mod v1;
pub mod views;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use futures_util::StreamExt;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use access::{Access, Cors};
pub use error::ApiError;
pub use state::{ApiParts, AppState};

/// The largest request body accepted: a signed transfer with 1 KiB of data is well under.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The router with every route, and the OpenAPI document describing exactly those routes.
pub fn router(state: AppState, access: impl Into<Access>) -> (Router, OpenApi) {
    let access = access.into();
    let open = OpenApiRouter::new()
        .routes(routes!(tutorial::root))
        .routes(routes!(tutorial::chain))
        .routes(routes!(v1::node::status))
        .routes(routes!(v1::node::node))
        .routes(routes!(v1::blocks::blocks))
        .routes(routes!(v1::blocks::block))
        .routes(routes!(v1::blocks::transaction))
        .routes(routes!(v1::blocks::proof))
        .routes(routes!(v1::transfers::submit))
        .routes(routes!(v1::accounts::account))
        .routes(routes!(v1::accounts::history))
        .routes(routes!(v1::transfers::mempool))
        .routes(routes!(light::headers))
        .routes(routes!(light::data))
        .routes(routes!(peers::peers))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
        .routes(routes!(forks::forks))
        .routes(routes!(search::search))
        .routes(routes!(explorer::index))
        .routes(routes!(explorer::bare))
        .routes(routes!(explorer::app_js))
        .routes(routes!(explorer::style_css));
    // Not for other sites' pages: resolving (it dials the registered nodes) and the
    // events WebSocket (CORS does not cover WebSockets).
    let same_site = OpenApiRouter::new()
        .routes(routes!(peers::resolve))
        .routes(routes!(events::events))
        .layer(middleware::from_fn_with_state(
            access.clone(),
            access::refuse_cross_site,
        ));
    // Routes that change the node: not for other sites' pages, and a bearer token off
    // loopback.
    let guarded = OpenApiRouter::new()
        .routes(routes!(tutorial::mine))
        .routes(routes!(tutorial::transactions_new))
        .routes(routes!(tutorial::transaction))
        .routes(routes!(v1::mine::mine))
        .routes(routes!(peers::add))
        .routes(routes!(peers::nodes))
        .routes(routes!(peers::register))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn_with_state(
            access.clone(),
            access::refuse_cross_site,
        ));
    let (router, mut openapi) = open.merge(same_site).merge(guarded).split_for_parts();
    // oxchain's own, not the defaults utoipa takes from the crate that builds the document.
    openapi.info.title = "oxchain node API".into();
    openapi.info.version = env!("CARGO_PKG_VERSION").into();
    openapi.info.contact = None;
    openapi.info.license = Some(
        utoipa::openapi::LicenseBuilder::new()
            .name(env!("CARGO_PKG_LICENSE"))
            .identifier(Some(env!("CARGO_PKG_LICENSE")))
            .build(),
    );
    openapi.info.description = Some(
        "The tutorials' routes (/, /chain, /mine, /transactions/new, /transaction, /nodes, \
         /nodes/register, /nodes/resolve) and the versioned /v1 API of an oxchain node. Amounts in /v1 are base units (1 coin = \
         100,000,000). Every route answers only a Host that is an IP address, localhost or a \
         name given with --api-host (403 host_not_allowed); routes that change the node refuse \
         pages of other sites (403 cross_site)."
            .into(),
    );
    let spec = openapi.clone();
    let cors = match access.cors.clone() {
        Cors::None => None,
        Cors::Any => Some(CorsLayer::new().allow_origin(Any)),
        Cors::Origins(list) => Some(CorsLayer::new().allow_origin(AllowOrigin::list(list))),
    }
    .map(|c| {
        c.allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
    });
    let router = router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::time_requests,
        ))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .layer(axum::Extension(std::sync::Arc::new(spec)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_large_bodies))
        .layer(middleware::map_response(error::jsonify_errors))
        .with_state(state);
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = router.layer(middleware::from_fn_with_state(access, access::check_host));
    (router, openapi)
}

/// How much of a refused body is read and dropped before answering, so that the client,
/// still sending, reads the 413 instead of a reset connection.
const DRAIN_BYTES: usize = 4 << 20;

/// Answers 413 to a body whose declared length is over the limit, after reading it
/// (up to [`DRAIN_BYTES`], then the connection is dropped). Bodies of unknown length
/// are cut at the limit by the extractors (`DefaultBodyLimit`).
async fn refuse_large_bodies(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared.filter(|n| *n > MAX_BODY_BYTES as u64) else {
        return next.run(req).await;
    };
    let mut stream = req.into_body().into_data_stream();
    let mut drained = 0;
    while drained < DRAIN_BYTES {
        match stream.next().await {
            Some(Ok(chunk)) => drained += chunk.len(),
            _ => break,
        }
    }
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is {declared} bytes, the limit is {MAX_BODY_BYTES}"),
    )
    .into_response()
}

/// Refuses a request without the node's bearer token, when the node has one.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = &state.inner.token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this route changes the node: send Authorization: Bearer <token from the data \
             directory's api.cookie>",
        )
        .into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "node",
    responses((status = 200, description = "The OpenAPI document of every route", content_type = "application/json")))]
async fn openapi_json(
    axum::Extension(spec): axum::Extension<std::sync::Arc<OpenApi>>,
) -> axum::Json<OpenApi> {
    axum::Json((*spec).clone())
}

/// `GET /docs`: a page that lists the API from `/openapi.json` (no external assets).
#[utoipa::path(get, path = "/docs", tag = "node",
    responses((status = 200, description = "The API documentation page", content_type = "text/html")))]
async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
