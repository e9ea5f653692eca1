//! `/user`: register, log in, refresh a token, who am I, revoke every token.
//!
//! Both body shapes that Jac-style clients send are accepted: the flat
//! `{"username", "password"}` and the identity form
//! `{"identities": [{"type", "value"}], "credential": {"type": "password", "password"}}`
//! (`"identity": {..}` when logging in). Usernames and e-mail addresses share one namespace.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde_json::{json, Map, Value};

use crate::api::{respond, ApiError};
use crate::auth::{hash_password, verify_password, Caller};
use crate::rate_limit::client_address;
use crate::routes::body::json_object;
use crate::startup::AppState;
use crate::users::{User, UserId};

/// A name and password taken from a register or login body.
struct Credentials {
    username: String,
    password: SecretString,
}

#[utoipa::path(
    post, path = "/user/register", tag = "user",
    request_body = crate::openapi::RegisterBody,
    responses(
        (status = 201, description = "Registered", body = crate::openapi::RegisteredEnvelope),
        (status = 400, description = "VALIDATION_ERROR", body = crate::openapi::ErrorEnvelope),
        (status = 409, description = "IDENTITY_TAKEN", body = crate::openapi::ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = crate::openapi::ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED", body = crate::openapi::ErrorEnvelope),
        (status = 503, description = "DATABASE_UNAVAILABLE", body = crate::openapi::ErrorEnvelope),
    )
)]
#[post("/user/register")]
pub async fn register(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    limit_address(&req, &state)?;
    let body = json_object(&req, payload, &state).await?;
    let credentials = credentials(&body, "identities")?;
    let name_key = username_key(&credentials.username);
    state.username_limits.take(&name_key).map_err(rate_limited)?;
    check_new_password(&credentials.password)?;

    let password_hash = hash_password(credentials.password).await?;
    let root = state.store.create_root().await?;
    let user = User {
        id: UserId::new(),
        username: credentials.username,
        password_hash,
        root,
        token_generation: 0,
    };
    if !state.users.insert(&user).await? {
        // The name was taken: the root made for this request is unreachable garbage.
        state.store.discard_unused_root(&user.root).await?;
        return Err(ApiError::IdentityTaken);
    }

    tracing::info!(user_id = %user.id, "user registered");
    let data = json!({ "user_id": user.id.to_string(), "root_id": user.root.to_string(),
                       "username": user.username });
    Ok(respond(StatusCode::CREATED, data))
}

#[utoipa::path(
    post, path = "/user/login", tag = "user",
    request_body = crate::openapi::LoginBody,
    responses(
        (status = 200, description = "Logged in", body = crate::openapi::LoggedInEnvelope),
        (status = 400, description = "VALIDATION_ERROR", body = crate::openapi::ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED", body = crate::openapi::ErrorEnvelope),
        (status = 503, description = "DATABASE_UNAVAILABLE", body = crate::openapi::ErrorEnvelope),
    )
)]
#[post("/user/login")]
pub async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    limit_address(&req, &state)?;
    let body = json_object(&req, payload, &state).await?;
    let credentials = credentials(&body, "identity")?;
    // Only failures use up the name's allowance, but once it is used up nothing is checked:
    // a guesser learns nothing more, and argon2 is not run for them.
    let name_key = username_key(&credentials.username);
    state.username_limits.check(&name_key).map_err(rate_limited)?;

    let user = state.users.by_name(&credentials.username).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if !verify_password(credentials.password, hash).await? {
        let _ = state.username_limits.take(&name_key);
        return Err(ApiError::Unauthorized);
    }
    let user = user.ok_or(ApiError::Unauthorized)?;

    let caller = Caller { user_id: user.id.clone(), root: user.root.clone() };
    let token = state.tokens.issue(&caller, user.token_generation)?;
    let data = json!({ "token": token, "user_id": user.id.to_string(),
                       "root_id": user.root.to_string(), "username": user.username });
    Ok(respond(StatusCode::OK, data))
}

#[utoipa::path(
    post, path = "/user/refresh-token", tag = "user",
    request_body = crate::openapi::RefreshBody,
    responses(
        (status = 200, description = "A fresh token", body = crate::openapi::RefreshedEnvelope),
        (status = 400, description = "VALIDATION_ERROR", body = crate::openapi::ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::ErrorEnvelope),
    )
)]
#[post("/user/refresh-token")]
pub async fn refresh_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&req, payload, &state).await?;
    let token = body
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("`token` is required and must be a string"))?;
    let verified = state.tokens.verify(token)?;
    state.generations.check(&verified).await?;
    let token = state.tokens.issue(&verified.caller, verified.generation)?;
    Ok(respond(StatusCode::OK, json!({ "token": token })))
}

#[utoipa::path(
    post, path = "/user/logout-all", tag = "user", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every earlier token is revoked; a fresh one is returned",
         body = crate::openapi::RefreshedEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::ErrorEnvelope),
        (status = 503, description = "DATABASE_UNAVAILABLE", body = crate::openapi::ErrorEnvelope),
    )
)]
#[post("/user/logout-all")]
pub async fn logout_all(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let generation = state.generations.revoke_all(&caller.user_id).await?;
    tracing::info!(user_id = %caller.user_id, "all tokens revoked");
    let token = state.tokens.issue(&caller, generation)?;
    Ok(respond(StatusCode::OK, json!({ "token": token })))
}

/// Counts the request against its client address's allowance.
fn limit_address(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(address) = client_address(req, &state.settings.trusted_proxies) else {
        return Ok(());
    };
    state.address_limits.take(&address.to_string()).map_err(rate_limited)
}

/// Names are one identity whatever their case, and so is their allowance.
fn username_key(username: &str) -> String {
    username.to_lowercase()
}

fn rate_limited(retry_after: std::time::Duration) -> ApiError {
    ApiError::RateLimited { retry_after }
}

#[utoipa::path(
    get, path = "/user/me", tag = "user", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = crate::openapi::MeEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::ErrorEnvelope),
    )
)]
#[get("/user/me")]
pub async fn me(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let user = state.users.by_id(&caller.user_id).await?.ok_or(ApiError::Unauthorized)?;
    let data = json!({ "user_id": user.id.to_string(), "username": user.username,
                       "root_id": user.root.to_string() });
    Ok(respond(StatusCode::OK, data))
}

/// Reads either body shape. `identity_key` is `identities` (a list) when registering and
/// `identity` (one) when logging in; both forms accept the other's key too.
fn credentials(body: &Map<String, Value>, identity_key: &str) -> Result<Credentials, ApiError> {
    let (username, password) = if body.contains_key("identities") || body.contains_key("identity") {
        let identity = match (body.get("identities"), body.get("identity")) {
            (Some(Value::Array(list)), _) => list.first(),
            (_, Some(one)) => Some(one),
            _ => None,
        };
        let value = identity.and_then(|i| i.get("value")).and_then(Value::as_str);
        let kind = identity.and_then(|i| i.get("type")).and_then(Value::as_str);
        if !matches!(kind, Some("email" | "username")) {
            return Err(ApiError::validation(format!(
                "`{identity_key}` needs a `type` of \"email\" or \"username\""
            )));
        }
        let credential = body.get("credential");
        let kind = credential.and_then(|c| c.get("type")).and_then(Value::as_str);
        if kind.is_some_and(|k| k != "password") {
            return Err(ApiError::validation("`credential.type` must be \"password\""));
        }
        (value, credential.and_then(|c| c.get("password")).and_then(Value::as_str))
    } else {
        let username = body.get("username").or_else(|| body.get("email"));
        (username.and_then(Value::as_str), body.get("password").and_then(Value::as_str))
    };

    let username = username.ok_or_else(|| ApiError::validation("`username` is required"))?.trim();
    let password = password.ok_or_else(|| ApiError::validation("`password` is required"))?;
    if username.is_empty()
        || username.chars().count() > 256
        || username.chars().any(char::is_control)
    {
        return Err(ApiError::validation("`username` must be 1 to 256 printable characters"));
    }
    if password.is_empty() || password.len() > 1024 {
        return Err(ApiError::validation("`password` must be 1 to 1024 bytes"));
    }
    Ok(Credentials { username: username.to_owned(), password: password.to_owned().into() })
}

fn check_new_password(password: &SecretString) -> Result<(), ApiError> {
    use secrecy::ExposeSecret;
    if password.expose_secret().chars().count() < 8 {
        return Err(ApiError::validation("`password` must be at least 8 characters"));
    }
    Ok(())
}
