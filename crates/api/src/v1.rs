//! The versioned API under `/v1`. Amounts are integers in base units, with the coin
//! string beside them; lists are paginated (`before`, `limit`).

// utoipa's `path` macro names the extractors' types with full paths, which this lint
// then reports against our own code.
#![allow(unused_qualifications)]

use oxchain_primitives::Height;

use crate::error::ApiError;

/// The most items a page holds.
const MAX_LIMIT: usize = 100;
/// Items per page when `limit` is not given.
const DEFAULT_LIMIT: usize = 20;

pub(crate) mod accounts;
pub(crate) mod blocks;
pub(crate) mod mine;
pub(crate) mod node;
pub(crate) mod transfers;

/// A page's `limit`: 20 when not given, 1 to 100.
pub(crate) fn parse_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "bad_limit",
            format!("limit {n} is out of range: 1 to {MAX_LIMIT}"),
        )),
    }
}

/// A `height:position` cursor given as `name`. Past u64 or u32 is past every item.
pub(crate) fn parse_cursor(name: &str, text: &str) -> Result<(Height, u32), ApiError> {
    let digits = |t: &str, most: usize| {
        !t.is_empty() && t.len() <= most && t.bytes().all(|b| b.is_ascii_digit())
    };
    text.split_once(':')
        .and_then(|(h, p)| {
            (digits(h, 20) && digits(p, 10)).then(|| {
                (
                    Height(h.parse().unwrap_or(u64::MAX)),
                    p.parse::<u32>().unwrap_or(u32::MAX),
                )
            })
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_cursor",
                format!("{name}={text:?} is not height:position"),
            )
        })
}
