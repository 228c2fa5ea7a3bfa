//! Who may ask (ADR 0022): web pages must not drive a node they happen to reach.
//!
//! - **Host allowlist, every route.** A DNS-rebinding page reaches the node under the
//!   page's own name (`Host: evil.example`), and is then same-origin to the browser.
//!   Only IP literals (no name to rebind), `localhost` and its subdomains (RFC 6761: they
//!   never leave the machine), and names given with `--api-host` are answered.
//! - **No cross-site changes.** Routes that change the node (the tutorials' `GET /mine`
//!   included), `/nodes/resolve` and the events WebSocket (which CORS does not cover)
//!   refuse a request that a browser marks as coming from another site: an `Origin` that
//!   is neither the node's own nor listed with `--cors-origin`, or, without `Origin`, a
//!   `Sec-Fetch-Site` other than `same-origin` or `none` (typed in the address bar).
//!   Clients that send neither header (curl, the CLI, scripts) are not browsers and pass.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Who may call the API from a browser on another origin.
#[derive(Debug, Clone, Default)]
pub enum Cors {
    /// No cross-origin access.
    #[default]
    None,
    /// Any origin.
    Any,
    /// These origins (`http://localhost:3000`).
    Origins(Vec<axum::http::HeaderValue>),
}

/// What the router lets browsers do: the CORS origins, and the host names (besides IP
/// literals and `localhost`) the node answers to.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Origins whose pages may read and change the node.
    pub cors: Cors,
    /// Names the node is reached by (`--api-host`); `*` for any.
    pub hosts: Vec<String>,
}

impl From<Cors> for Access {
    fn from(cors: Cors) -> Access {
        Access {
            cors,
            hosts: Vec::new(),
        }
    }
}

impl Access {
    /// Whether a request's `Host` value (with or without a port) may be answered.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self
                .hosts
                .iter()
                .any(|h| h == "*" || h.eq_ignore_ascii_case(name))
    }

    /// Why a browser request is refused as cross-site, if it is.
    fn cross_site(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let text = origin.to_str().unwrap_or("(not text)");
            let own = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| {
                    text.strip_prefix("http://")
                        .is_some_and(|o| o.eq_ignore_ascii_case(host))
                });
            let listed = match &self.cors {
                Cors::None => false,
                Cors::Any => true,
                Cors::Origins(list) => list.iter().any(|o| o == origin),
            };
            return (!own && !listed).then(|| format!("a page of {text}"));
        }
        let site = headers.get("sec-fetch-site")?.to_str().unwrap_or("?");
        (site != "same-origin" && site != "none")
            .then(|| format!("a page of another site (Sec-Fetch-Site: {site})"))
    }
}

/// The name part of a `Host` value: `[::1]:5000` → `::1`, `localhost:5000` → `localhost`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Every route: refuses a `Host` the node does not answer to (403 `host_not_allowed`).
/// A request without `Host` (HTTP/1.0) is no browser's and passes.
pub(crate) async fn check_host(State(access): State<Access>, req: Request, next: Next) -> Response {
    let hosts = req.headers().get_all(header::HOST);
    if hosts.iter().count() > 1 {
        return ApiError::bad_request("bad_host", "the request has more than one Host header")
            .into_response();
    }
    let host = match hosts.iter().next() {
        Some(value) => value.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    };
    match host {
        None if hosts.iter().next().is_some() => {
            ApiError::bad_request("bad_host", "the Host header is not text").into_response()
        }
        Some(host) if !access.host_allowed(host) => ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!(
                "this node does not answer to the name {:?} (a guard against DNS rebinding): \
                 reach it by IP address or localhost, or start it with --api-host {}",
                host_name(host),
                host_name(host)
            ),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Routes that change the node: refuses cross-site browser requests (403 `cross_site`).
pub(crate) async fn refuse_cross_site(
    State(access): State<Access>,
    req: Request,
    next: Next,
) -> Response {
    match access.cross_site(req.headers()) {
        None => next.run(req).await,
        Some(who) => ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            format!(
                "{who} asked to {} {}: pages of other sites may not drive this node; \
                 to allow one, start the node with --cors-origin ORIGIN",
                req.method(),
                req.uri().path()
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn hosts_by_ip_localhost_or_listed_name() {
        let access = Access {
            hosts: vec!["node.lan".into()],
            ..Access::default()
        };
        for ok in [
            "127.0.0.1:5000",
            "127.0.0.1",
            "10.3.0.1:5000",
            "[::1]:5000",
            "localhost:5000",
            "LOCALHOST",
            "explorer.localhost:5000",
            "localhost.",
            "node.lan:5000",
            "Node.LAN",
        ] {
            assert!(access.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:5000",
            "localhost.evil.example",
            "127.0.0.1.evil.example:5000",
            "node.lan.evil.example",
            "",
        ] {
            assert!(!access.host_allowed(refused), "{refused}");
        }
        let any = Access {
            hosts: vec!["*".into()],
            ..Access::default()
        };
        assert!(any.host_allowed("evil.example"));
    }

    #[test]
    fn cross_site_by_origin_then_fetch_metadata() {
        let access = Access {
            cors: Cors::Origins(vec!["http://localhost:3000".parse().unwrap()]),
            ..Access::default()
        };
        let host = ("host", "127.0.0.1:5000");
        // Not a browser, or the node's own page, or typed in the address bar.
        assert_eq!(access.cross_site(&headers(&[host])), None);
        assert_eq!(
            access.cross_site(&headers(&[host, ("origin", "http://127.0.0.1:5000")])),
            None
        );
        assert_eq!(
            access.cross_site(&headers(&[host, ("sec-fetch-site", "same-origin")])),
            None
        );
        assert_eq!(
            access.cross_site(&headers(&[host, ("sec-fetch-site", "none")])),
            None
        );
        // A listed origin.
        assert_eq!(
            access.cross_site(&headers(&[
                host,
                ("origin", "http://localhost:3000"),
                ("sec-fetch-site", "same-site")
            ])),
            None
        );
        // Other pages.
        for refused in [
            headers(&[host, ("origin", "http://evil.example")]),
            headers(&[host, ("origin", "null")]),
            headers(&[host, ("origin", "http://127.0.0.1:5001")]),
            headers(&[host, ("origin", "https://127.0.0.1:5000")]),
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("sec-fetch-site", "same-site")]),
            headers(&[("origin", "http://127.0.0.1:5000")]),
        ] {
            assert!(access.cross_site(&refused).is_some(), "{refused:?}");
        }
    }
}
