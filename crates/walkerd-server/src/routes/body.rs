//! Reading a JSON request body within the size limit, with errors in the envelope's terms.
//!
//! The bytes go through [`decode_json`], which also bounds nesting, string, array and object
//! sizes and refuses field names that MongoDB would read as operators or paths.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures::StreamExt;
use serde_json::Value;

use walkerd_runtime::input::decode_json;

use crate::api::ApiError;
use crate::startup::AppState;

/// The body as JSON; an empty body reads as `{}`. Larger than the limit: 413, before reading
/// more than the limit.
pub async fn json_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
) -> Result<Value, ApiError> {
    let limit = state.settings.body_limit_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }

    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::validation("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }

    Ok(decode_json(&body, &state.settings.input)?)
}

/// The body as a JSON object.
pub async fn json_object(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    match json_body(req, payload, state).await? {
        Value::Object(object) => Ok(object),
        _ => Err(ApiError::validation("the request body must be a JSON object")),
    }
}
