//! The tutorials' routes, with their paths, status codes and messages (DESIGN §6), on
//! top of a real chain: a tutorial transaction is a signed transfer under every ledger
//! rule, and `/mine` runs the real proof of work.

// utoipa's `path` macro names the extractors' types with full paths, which this lint
// then reports against our own code.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oxchain_chain::MempoolError;
use oxchain_primitives::{Amount, Txid};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonOrForm;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::TutorialBlock;

/// The fee the node pays on transfers it signs for tutorial routes: 0.00001 coin, well
/// above the minimum relay fee for a transfer without data.
pub(crate) const TUTORIAL_FEE: Amount = Amount::from_units(1_000);

/// `{"message": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Message {
    /// The tutorial's message.
    pub message: String,
}

/// The tutorial's message, and the txid of the transfer the node signed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Queued {
    /// The tutorial's message.
    pub message: String,
    /// The transfer's txid (`/v1/transactions/{txid}`).
    pub txid: String,
    /// When the recipient was a name that is neither an address nor a dev account: the
    /// address the coins went to (ADR 0024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `GET /`: the tutorial's health check; a browser (one that accepts `text/html`) gets
/// the block explorer instead.
#[utoipa::path(get, path = "/", tag = "tutorial",
    responses((status = 200, description = "The node is up; with Accept: text/html, the block explorer",
        content((Message = "application/json"), (String = "text/html")))))]
pub(crate) async fn root(headers: axum::http::HeaderMap) -> Response {
    let wants_html = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    // Caches must keep the two answers apart.
    let vary = [(axum::http::header::VARY, "accept")];
    if wants_html {
        return (vary, crate::explorer::page()).into_response();
    }
    (
        vary,
        Json(Message {
            message: "Server is OK".into(),
        }),
    )
        .into_response()
}

/// `?format=array` gives the Socket.io tutorial's bare array.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ChainQuery {
    /// `array` for a bare JSON array of blocks; `object` (the default) for
    /// `{"chain", "length"}`.
    #[param(pattern = "^(object|array)$")]
    format: Option<String>,
}

/// The whole chain, as the tutorials returned it (streamed by `chain_json`, in this
/// shape).
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct ChainAnswer {
    /// Every block of the best chain, genesis first.
    pub chain: Vec<TutorialBlock>,
    /// The number of blocks.
    pub length: usize,
}

/// What `/chain` answers: the object, or the bare array (`format=array`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // the answer is streamed; this is its schema
pub(crate) enum ChainBody {
    /// `{"chain", "length"}`.
    Object(ChainAnswer),
    /// The blocks alone.
    Array(Vec<TutorialBlock>),
}

/// `GET /chain`: the whole best chain (the one route that returns it all).
#[utoipa::path(get, path = "/chain", tag = "tutorial", params(ChainQuery),
    responses((status = 200, description = "The best chain, genesis first: an object, or with format=array the bare array", body = ChainBody),
              (status = 400, description = "Unknown format", body = ErrorBody)))]
pub(crate) async fn chain(
    State(state): State<AppState>,
    Query(query): Query<ChainQuery>,
) -> Result<Response, ApiError> {
    let array = match query.format.as_deref() {
        None | Some("object") => false,
        Some("array") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_format",
                format!("unknown format {other:?}: use format=array or leave it out"),
            ));
        }
    };
    if array {
        crate::chain_json::stream(&state, String::new(), |_| String::new()).await
    } else {
        crate::chain_json::stream(&state, r#"{"chain":"#.into(), |length| {
            format!(r#","length":{length}}}"#)
        })
        .await
    }
}

/// What `/mine` answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Forged {
    /// "New Block Forged".
    pub message: String,
    /// The block.
    #[serde(flatten)]
    pub block: TutorialBlock,
}

/// `GET /mine`: mines one block now, with the pending transfers.
#[utoipa::path(get, path = "/mine", tag = "tutorial",
    responses((status = 200, description = "The block mined", body = Forged),
              (status = 409, description = "Mining is off on this node", body = ErrorBody)))]
pub(crate) async fn mine(State(state): State<AppState>) -> Result<Json<Forged>, ApiError> {
    let mined = crate::v1::mine::mine_blocks(&state, 1).await?;
    let first = mined
        .first()
        .ok_or_else(|| ApiError::internal("the miner returned no block"))?;
    let block =
        state.inner.store.block(&first.hash)?.ok_or_else(|| {
            ApiError::internal(format!("mined block {} is not stored", first.hash))
        })?;
    Ok(Json(Forged {
        message: "New Block Forged".into(),
        block: TutorialBlock::new(state.network(), first.height.0, &block),
    }))
}

/// The Flask tutorial's transaction.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewTransaction {
    /// A dev account name (dev and regtest: alice, bob, charlie, dave, eve) the node
    /// signs for; spaces around it are ignored.
    #[schema(value_type = String, pattern = r"^[ \t]*[A-Za-z0-9_-]{1,90}[ \t]*$")]
    sender: Option<Value>,
    /// An address, or a dev account name on dev and regtest; there, any other short word
    /// is taken too and the answer's `note` names the address it became.
    #[schema(value_type = String, pattern = r"^[ \t]*[A-Za-z0-9_-]{1,90}[ \t]*$")]
    recipient: Option<Value>,
    #[schema(schema_with = coins_schema, required = true)]
    amount: Option<Value>,
}

/// `POST /transactions/new`: the node signs a transfer from `sender` and queues it.
#[utoipa::path(post, path = "/transactions/new", tag = "tutorial", 
    request_body(content((NewTransaction = "application/json"), (NewTransaction = "application/x-www-form-urlencoded"))),
    responses((status = 201, description = "Queued for the next block", body = Queued),
              (status = 400, description = "Missing values, or not what this document allows", body = ErrorBody),
              (status = 422, description = "Refused by a rule: an unknown account, an address's checksum, the balance, a zero or too precise amount", body = ErrorBody),
              (status = 409, description = "Already pending", body = ErrorBody),
              (status = 503, description = "The mempool is full (`mempool_full`) or the node busy (`busy`): try again", body = ErrorBody)))]
pub(crate) async fn transactions_new(
    State(state): State<AppState>,
    JsonOrForm(body): JsonOrForm<NewTransaction>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let absent = [
        ("sender", body.sender.is_none()),
        ("recipient", body.recipient.is_none()),
        ("amount", body.amount.is_none()),
    ];
    let (Some(sender), Some(recipient), Some(amount)) = (body.sender, body.recipient, body.amount)
    else {
        return Err(missing(&absent));
    };
    let done = sign_and_submit(&state, &sender, &recipient, &amount).await?;
    Ok((
        StatusCode::CREATED,
        Json(Queued {
            message: format!("Transaction will be added to Block {}", done.next_height),
            txid: done.txid.to_string(),
            note: done.note,
        }),
    ))
}

/// The Socket.io tutorial's transaction.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SocketTransaction {
    /// A dev account name (dev and regtest: alice, bob, charlie, dave, eve) the node
    /// signs for; spaces around it are ignored.
    #[schema(value_type = String, pattern = r"^[ \t]*[A-Za-z0-9_-]{1,90}[ \t]*$")]
    sender: Option<Value>,
    /// An address, or a dev account name on dev and regtest; there, any other short word
    /// is taken too and the answer's `note` names the address it became.
    #[schema(value_type = String, pattern = r"^[ \t]*[A-Za-z0-9_-]{1,90}[ \t]*$")]
    receiver: Option<Value>,
    #[schema(schema_with = coins_schema, required = true)]
    amount: Option<Value>,
}

/// `POST /transaction`: the Socket.io tutorial's transfer.
#[utoipa::path(post, path = "/transaction", tag = "tutorial", 
    request_body(content((SocketTransaction = "application/json"), (SocketTransaction = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "Accepted into the mempool", body = Queued),
              (status = 400, description = "Missing values, or not what this document allows", body = ErrorBody),
              (status = 422, description = "Refused by a rule: an unknown account, an address's checksum, the balance, a zero or too precise amount", body = ErrorBody),
              (status = 409, description = "Already pending", body = ErrorBody),
              (status = 503, description = "The mempool is full (`mempool_full`) or the node busy (`busy`): try again", body = ErrorBody)))]
pub(crate) async fn transaction(
    State(state): State<AppState>,
    JsonOrForm(body): JsonOrForm<SocketTransaction>,
) -> Result<Json<Queued>, ApiError> {
    let absent = [
        ("sender", body.sender.is_none()),
        ("receiver", body.receiver.is_none()),
        ("amount", body.amount.is_none()),
    ];
    let (Some(sender), Some(receiver), Some(amount)) = (body.sender, body.receiver, body.amount)
    else {
        return Err(missing(&absent));
    };
    let done = sign_and_submit(&state, &sender, &receiver, &amount).await?;
    Ok(Json(Queued {
        message: "transaction success".into(),
        txid: done.txid.to_string(),
        note: done.note,
    }))
}

/// The tutorials' "Missing values", naming the fields that are.
fn missing(fields: &[(&str, bool)]) -> ApiError {
    let names: Vec<&str> = fields
        .iter()
        .filter(|(_, absent)| *absent)
        .map(|(name, _)| *name)
        .collect();
    ApiError::missing_values(&names)
}

fn text<'a>(what: &str, value: &'a Value) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .ok_or_else(|| ApiError::bad_request("bad_request", format!("{what} must be a string")))
}

/// The spaces the tutorial routes ignore around a name or an amount given as text.
const SPACES: [char; 2] = [' ', '\t'];

/// The most coins there are room for (`u64::MAX` units, 184467440737.09551615), as the
/// nearest f64: the document's `maximum`.
const MAX_COINS: f64 = 184_467_440_737.095_52;

/// Coins as text: a JSON number's grammar without the sign (so that a form's `amount=1e-3`
/// is the number `1e-3` in JSON), spaces and tabs around it.
const COINS_PATTERN: &str = r"^[ \t]*[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?[ \t]*$";

/// Whether `text` (trimmed) matches [`COINS_PATTERN`].
fn coins_shaped(text: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    digits(int) && digits(frac) && digits(exponent)
}

/// A name or address given to a tutorial route, its spaces trimmed: the fields' pattern
/// `^[ \t]*[A-Za-z0-9_-]{1,90}[ \t]*$`.
fn name_shaped(text: &str) -> bool {
    (1..=90).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The document's schema of a tutorial amount: a number of coins, or the same as text.
fn coins_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Number))
                .minimum(Some(0.0))
                .maximum(Some(MAX_COINS)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some(COINS_PATTERN)),
        )
        .description(Some(
            "Coins: a number, or the same as text. More than 0 and at most 8 decimals, or \
             422 `bad_amount`.",
        ))
        .build()
        .into()
}

/// Coins from a JSON number or a string: exact, positive, at most 8 decimals. Not of the
/// document's shape: 400; of it, but zero, too precise or too many: 422 (ADR 0026).
pub(crate) fn parse_coins(value: &Value) -> Result<Amount, ApiError> {
    let shape = |message: String| ApiError::bad_request("bad_amount", message);
    let rule =
        |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_amount", message);
    let text = match value {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if !(0.0..=MAX_COINS).contains(&f) {
                return Err(shape(format!(
                    "amount {n} is not a number of coins from 0 to {MAX_COINS}"
                )));
            }
            let text = n.to_string();
            plain_decimal(&text).unwrap_or(text)
        }
        Value::String(s) if coins_shaped(s.trim_matches(SPACES)) => {
            let text = s.trim_matches(SPACES);
            plain_decimal(text).unwrap_or_else(|| text.to_string())
        }
        _ => {
            return Err(shape(
                "amount must be a number of coins, like 1.5 (or the same as text)".into(),
            ));
        }
    };
    let amount = Amount::parse_coins(text.trim_start_matches('-'))
        .map_err(|e| rule(format!("amount {text} is not a valid number of coins: {e}")))?;
    if amount == Amount::ZERO {
        return Err(rule("amount must be more than 0".into()));
    }
    Ok(amount)
}

/// A JSON number's text written without an exponent: serde_json writes small and large
/// numbers as `1e-6` or `1.5e20`, which coin amounts do not take. The digits are moved,
/// not computed, so nothing is rounded. `None` if `text` has no exponent.
fn plain_decimal(text: &str) -> Option<String> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let exponent: i32 = exponent.parse().ok().filter(|e: &i32| e.abs() <= 64)?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let point = int.len() as i32 + exponent;
    Some(if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (whole, rest) = digits.split_at(point as usize);
        format!("{whole}.{rest}")
    })
}

/// Signs a transfer from a sender the node holds a key for, and submits it. Returns its
/// txid and the height of the next block.
/// A transfer the node signed and queued.
struct Submitted {
    txid: Txid,
    /// The block it is meant for.
    next_height: u64,
    /// What became of a recipient that was only a name.
    note: Option<String>,
}

async fn sign_and_submit(
    state: &AppState,
    sender: &Value,
    recipient: &Value,
    amount: &Value,
) -> Result<Submitted, ApiError> {
    // Every shape check (400) before any rule's (422), as the document says (ADR 0026).
    let sender = text("sender", sender)?.trim_matches(SPACES);
    if sender.is_empty() {
        return Err(ApiError::bad_request("bad_sender", "sender is empty"));
    }
    if !name_shaped(sender) {
        return Err(ApiError::bad_request(
            "bad_sender",
            format!("sender {sender:?} is not a name: 1 to 90 letters, digits, - or _"),
        ));
    }
    let recipient = text("recipient", recipient)?.trim_matches(SPACES);
    if !name_shaped(recipient) {
        return Err(ApiError::bad_request(
            "bad_address",
            format!(
                "recipient {recipient:?} is not an address or a name: 1 to 90 letters, digits, - or _"
            ),
        ));
    }
    let amount = parse_coins(amount)?;
    let key = state.signing_key(sender)?;
    let (to, note) = state.tutorial_recipient(recipient)?;
    let txid = state.sign_and_submit(key, to, amount, TUTORIAL_FEE).await?;
    Ok(Submitted {
        txid,
        next_height: state.chain().tip().height.0 + 1,
        note,
    })
}

/// A refused transfer as an API error (counted in the metrics by its code word).
pub(crate) fn mempool_error(state: &AppState, e: MempoolError) -> ApiError {
    let (status, code) = match &e {
        MempoolError::AlreadyPending(_) => (StatusCode::CONFLICT, "already_pending"),
        MempoolError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_transfer"),
        MempoolError::FeeTooLow { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "fee_too_low"),
        MempoolError::NonceTooLow { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "nonce_too_low"),
        MempoolError::NonceGap { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "nonce_gap"),
        MempoolError::ReplacementFeeTooLow { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "replacement_fee_too_low")
        }
        MempoolError::InsufficientFunds { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds")
        }
        MempoolError::Full => (StatusCode::SERVICE_UNAVAILABLE, "mempool_full"),
        MempoolError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        MempoolError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    state.inner.metrics.transfer_rejected(code);
    ApiError::new(status, code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_with_an_exponent_become_plain_decimals() {
        for (json, plain) in [
            ("1e-6", "0.000001"),
            ("2.5e-7", "0.00000025"),
            ("1.5e3", "1500"),
            ("1.25E1", "12.5"),
            ("1e20", "100000000000000000000"),
            ("1e0", "1"),
        ] {
            assert_eq!(plain_decimal(json).as_deref(), Some(plain), "{json}");
        }
        for other in ["1.5", "-1e-6", "e5", "1e", "1e999"] {
            assert_eq!(plain_decimal(other), None, "{other}");
        }
        let tiny: Value = serde_json::from_str("0.000001").unwrap();
        assert_eq!(parse_coins(&tiny).unwrap(), Amount::from_units(100));
        let tiny: Value = serde_json::from_str("1e-8").unwrap();
        assert_eq!(parse_coins(&tiny).unwrap(), Amount::from_units(1));
        let too_fine: Value = serde_json::from_str("1e-9").unwrap();
        assert!(parse_coins(&too_fine).is_err());
    }

    /// Text takes a number's grammar too (a form's values are all text): the same coins,
    /// and the same 422 for too fine an amount.
    #[test]
    fn text_amounts_take_a_number_s_grammar() {
        let coins = |text: &str| parse_coins(&Value::from(text)).map_err(|e| e.status());
        assert_eq!(coins("1e-3"), Ok(Amount::from_units(100_000)));
        assert_eq!(coins(" 2E+1\t"), Ok(Amount::from_units(2_000_000_000)));
        assert_eq!(coins("1.5"), Ok(Amount::from_units(150_000_000)));
        for shape in ["1e", "1.e5", ".5", "-1", "1e+-2", "1x", ""] {
            assert_eq!(coins(shape), Err(StatusCode::BAD_REQUEST), "{shape:?}");
        }
        for rule in ["1e-9", "8.675925323922335e-213", "0", "0e5", "1e300"] {
            assert_eq!(
                coins(rule),
                Err(StatusCode::UNPROCESSABLE_ENTITY),
                "{rule:?}"
            );
        }
    }
}
