//! Request bodies: JSON whatever the Content-Type says (`curl -d` sends a form type); the
//! tutorials' flat routes (`/transactions/new`, `/transaction`, `/nodes`) also take a
//! form-encoded body, and their OpenAPI entries declare both. Size is capped by the
//! router's body limit (413).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A body read as JSON, or as a form when it is form-encoded.
#[derive(Debug)]
pub struct JsonOrForm<T>(pub T);

/// A body read as JSON, whatever its Content-Type.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// As [`JsonBody`], for routes where the body may be left out (`None`).
#[derive(Debug)]
pub struct MaybeBody<T>(pub Option<T>);

async fn read(req: Request) -> Result<(Bytes, bool), ApiError> {
    let form_typed = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let bytes = Bytes::from_request(req, &()).await.map_err(|rejection| {
        ApiError::new(rejection.status(), "body_too_large", rejection.body_text())
    })?;
    Ok((bytes, form_typed))
}

/// JSON's numbers as JSON Schema reads them: `4.0` is the integer 4 (a client's JSON
/// library may write it so), so a field of integer type takes it.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Exactly representable integers only: below 2^64, no fraction.
            if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                *value = Value::from(f as u64);
            } else if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Parses `bytes` as JSON, or as a form if it is typed as one, does not look like JSON,
/// and the route takes forms (`forms`).
fn parse<T: DeserializeOwned>(bytes: &[u8], form_typed: bool, forms: bool) -> Result<T, ApiError> {
    // JSON first (curl -d '{"a":1}' is typed as a form); then a form if it is one.
    let json = serde_json::from_slice::<serde_json::Value>(bytes).and_then(|mut value| {
        integral_floats_as_integers(&mut value);
        serde_json::from_value(value)
    });
    match json {
        Ok(value) => Ok(value),
        Err(json_error) => {
            let looks_like_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            if form_typed && !looks_like_json && forms {
                serde_urlencoded::from_bytes(bytes)
                    .map_err(|e| ApiError::bad_request("bad_form", format!("bad form body: {e}")))
            } else if form_typed && !looks_like_json {
                Err(ApiError::bad_request(
                    "bad_json",
                    "this route takes a JSON body, not a form",
                ))
            } else {
                Err(ApiError::bad_request(
                    "bad_json",
                    format!("bad JSON body: {json_error}"),
                ))
            }
        }
    }
}

/// A body that must be there: parsed as [`parse`] does.
async fn required<T: DeserializeOwned>(req: Request, forms: bool) -> Result<T, ApiError> {
    let (bytes, form_typed) = read(req).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "missing_body",
            "the request has no body",
        ));
    }
    parse(&bytes, form_typed, forms)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        required(req, true).await.map(JsonOrForm)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        required(req, false).await.map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let (bytes, form_typed) = read(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeBody(None));
        }
        // JSON `null` is no body too.
        parse::<Option<T>>(&bytes, form_typed, false).map(MaybeBody)
    }
}
