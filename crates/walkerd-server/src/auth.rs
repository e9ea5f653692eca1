//! Passwords and tokens.
//!
//! Passwords are hashed with argon2id (19 MiB, 2 passes, 1 lane: OWASP's baseline) on a blocking
//! thread, so hashing never stalls the request workers. Tokens are HS256 JWTs carrying the user
//! id (`sub`), the user's root node id (`root`), `iat` and `exp`; the algorithm is pinned on
//! validation. Because the root id travels in the token, an authenticated walker request needs
//! no database read before it starts walking.

use std::future::{ready, Ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use walkerd_graph::NodeId;

use crate::api::ApiError;
use crate::startup::AppState;
use crate::users::UserId;

/// Signs and checks tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    expiry: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    root: String,
    iat: i64,
    exp: i64,
}

/// The caller, as proven by a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub root: NodeId,
}

impl Tokens {
    pub fn new(secret: &SecretString, expiry: Duration) -> Tokens {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub", "exp", "iat"]);
        validation.leeway = 0;
        Tokens {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            expiry,
        }
    }

    /// A fresh token for `caller`.
    pub fn issue(&self, caller: &Caller) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: caller.user_id.to_string(),
            root: caller.root.to_string(),
            iat: now,
            exp: now + self.expiry.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The caller a token names, if the token is valid, unexpired and signed by us.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthorized)?;
        let claims = data.claims;
        if claims.iat > chrono::Utc::now().timestamp() + 60 {
            return Err(ApiError::Unauthorized);
        }
        let user_id = UserId::parse(&claims.sub).map_err(|_| ApiError::Unauthorized)?;
        let root = NodeId::parse(&claims.root).map_err(|_| ApiError::Unauthorized)?;
        Ok(Caller { user_id, root })
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req))
    }
}

fn caller_of(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or(ApiError::Unauthorized)?;
    let value = req.headers().get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthorized)?;
    state.tokens.verify(token.trim())
}

fn hasher() -> Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a password (PHC string format).
pub async fn hash_password(password: SecretString) -> Result<String, ApiError> {
    let hashed = web::block(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher().hash_password(password.expose_secret().as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(ApiError::internal)?;
    hashed.map_err(|e| ApiError::Internal(e.to_string().into()))
}

/// A hash of a random password nobody knows, checked when the user does not exist so that a
/// login takes as long whether or not the name is registered.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let password = uuid::Uuid::new_v4().to_string();
        hasher().hash_password(password.as_bytes(), &salt).expect("hashing works").to_string()
    })
}

/// Checks `password` against `hash` (or the decoy when there is no user); the comparison inside
/// argon2 is constant-time.
pub async fn verify_password(
    password: SecretString,
    hash: Option<String>,
) -> Result<bool, ApiError> {
    let known = hash.is_some();
    let matches = web::block(move || {
        let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
        let parsed = PasswordHash::new(&hash).ok()?;
        Some(hasher().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(known && matches.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&SecretString::from("s".repeat(32)), Duration::from_secs(60))
    }

    fn caller() -> Caller {
        Caller { user_id: UserId::new(), root: NodeId::new() }
    }

    #[test]
    fn an_issued_token_verifies_to_its_caller() {
        let caller = caller();
        let token = tokens().issue(&caller).unwrap();
        let verified = tokens().verify(&token).unwrap();
        assert_eq!((verified.user_id, verified.root), (caller.user_id, caller.root));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = Tokens::new(&SecretString::from("t".repeat(32)), Duration::from_secs(60));
        let token = other.issue(&caller()).unwrap();
        assert!(tokens().verify(&token).is_err());
    }
}
