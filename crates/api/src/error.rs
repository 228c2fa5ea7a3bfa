//! Every error the API gives: JSON `{"message", "code"}` with a 4xx status for bad input.
//! `code` is a stable machine-readable word; `message` says what to do.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub message: String,
    /// What went wrong, for a program (`bad_request`, `not_found`, `insufficient_funds`, ...).
    pub code: String,
    /// With `missing_values`: the fields the body lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<String>>,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    missing: Option<Vec<String>>,
}

impl ApiError {
    /// An error with this status, code word and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            missing: None,
        }
    }

    /// 400 `missing_values` ("Missing values", the tutorials' text), naming the fields.
    pub fn missing_values(fields: &[&str]) -> ApiError {
        ApiError {
            missing: Some(fields.iter().map(|f| f.to_string()).collect()),
            ..ApiError::bad_request("missing_values", "Missing values")
        }
    }

    /// 400 with a code word.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: a read spanned a reorg (each store read is its own snapshot): ask again.
    pub fn chain_moved(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "chain_moved", message)
    }

    /// 500 for our own failures (the store), never for input.
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(%message, "the API failed a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the node failed: {message}"),
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<oxchain_storage::StoreError> for ApiError {
    fn from(e: oxchain_storage::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                message: self.message,
                code: self.code.to_string(),
                missing: self.missing,
            }),
        )
            .into_response()
    }
}

/// Turns the plain-text errors of axum and tower-http (a bad path value, a body over
/// the limit, a failed WebSocket upgrade) into the JSON error shape.
pub(crate) async fn jsonify_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let text = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNAUTHORIZED => "unauthorized",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.into_owned()
    };
    ApiError::new(status, code, message).into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see /openapi.json for the API")
}

/// 405, naming the method tried and the ones the route takes (from the OpenAPI
/// document, which lists every route: a test checks it against the router).
pub(crate) async fn method_not_allowed(
    method: axum::http::Method,
    matched: Option<axum::extract::MatchedPath>,
    spec: Option<axum::Extension<std::sync::Arc<utoipa::openapi::OpenApi>>>,
) -> ApiError {
    let item = matched
        .zip(spec)
        .and_then(|(path, spec)| spec.paths.paths.get(path.as_str()).cloned());
    let allowed: Vec<&str> = item
        .map(|item| {
            [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
            ]
            .into_iter()
            .filter(|(_, has)| *has)
            .map(|(name, _)| name)
            .collect()
        })
        .unwrap_or_default();
    let message = if allowed.is_empty() {
        format!("this route does not take that method ({method})")
    } else {
        format!(
            "this route does not take that method ({method}): use {}",
            allowed.join(" or ")
        )
    };
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    )
}
