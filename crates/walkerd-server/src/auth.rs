//! Passwords and tokens.
//!
//! Passwords are hashed with argon2id (19 MiB, 2 passes, 1 lane: OWASP's baseline) on a blocking
//! thread, so hashing never stalls the request workers. Tokens are JWTs carrying the user id
//! (`sub`), the user's root node id (`root`), the user's token generation (`gen`), `iat`, `nbf`
//! and `exp`. They are signed with HS256 by default, or RS256 or EdDSA with a key pair from files;
//! validation accepts only the configured algorithm, so `alg: none` and HS/RS confusion fail.
//! Because the root id travels in the token, an authenticated request needs no database read
//! before it starts walking; the generation check ([`crate::revocation`]) is served from a
//! short-lived cache.

use std::future::Future;
use std::pin::Pin;
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
use crate::settings::{KeyAlgorithm, TokenKeys};
use crate::startup::AppState;
use crate::users::UserId;

/// Signs and checks tokens.
pub struct Tokens {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    expiry: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    root: String,
    gen: i64,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// The caller, as proven by a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub root: NodeId,
}

/// A token's claims once its signature and times are checked, before its generation is.
#[derive(Debug, Clone)]
pub struct Verified {
    pub caller: Caller,
    pub generation: i64,
}

/// Why the keys could not be used.
#[derive(Debug, thiserror::Error)]
#[error("the token keys are unusable: {0}")]
pub struct KeyError(String);

impl Tokens {
    pub fn new(keys: &TokenKeys, expiry: Duration) -> Result<Tokens, KeyError> {
        let key_error = |e: jsonwebtoken::errors::Error| KeyError(e.to_string());
        let (algorithm, encoding, decoding) = match keys {
            TokenKeys::Secret(secret) => {
                let bytes = secret.expose_secret().as_bytes();
                let (e, d) = (EncodingKey::from_secret(bytes), DecodingKey::from_secret(bytes));
                (Algorithm::HS256, e, d)
            }
            TokenKeys::Pair { algorithm: KeyAlgorithm::Rs256, private_pem, public_pem } => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(private_pem.expose_secret().as_bytes())
                    .map_err(key_error)?,
                DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(key_error)?,
            ),
            TokenKeys::Pair { algorithm: KeyAlgorithm::EdDsa, private_pem, public_pem } => (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(private_pem.expose_secret().as_bytes())
                    .map_err(key_error)?,
                DecodingKey::from_ed_pem(public_pem.as_bytes()).map_err(key_error)?,
            ),
        };
        // One algorithm, and every time claim required and checked with no leeway.
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["sub", "exp", "iat", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        let tokens = Tokens { algorithm, encoding, decoding, validation, expiry };

        // A private key that does not match the public one would only show on the first login.
        let probe = Caller { user_id: UserId::new(), root: NodeId::new() };
        let token = tokens.issue(&probe, 0).map_err(|_| KeyError("cannot sign".into()))?;
        tokens.verify(&token).map_err(|_| KeyError("the public key does not match".into()))?;
        Ok(tokens)
    }

    /// A fresh token for `caller`, valid while the user's token generation is `generation`.
    pub fn issue(&self, caller: &Caller, generation: i64) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: caller.user_id.to_string(),
            root: caller.root.to_string(),
            gen: generation,
            iat: now,
            nbf: now,
            exp: now + self.expiry.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The claims of a token that is well-formed, signed by us with the configured algorithm,
    /// already valid and not expired. Whether it was revoked is [`crate::revocation`]'s part.
    pub fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthorized)?;
        let claims = data.claims;
        if claims.iat > chrono::Utc::now().timestamp() + 60 || claims.gen < 0 {
            return Err(ApiError::Unauthorized);
        }
        let user_id = UserId::parse(&claims.sub).map_err(|_| ApiError::Unauthorized)?;
        let root = NodeId::parse(&claims.root).map_err(|_| ApiError::Unauthorized)?;
        Ok(Verified { caller: Caller { user_id, root }, generation: claims.gen })
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or(ApiError::Unauthorized)?;
            let verified = state.tokens.verify(&token?)?;
            state.generations.check(&verified).await?;
            Ok(verified.caller)
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthorized)?;
    Ok(token.trim())
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
        let keys = TokenKeys::Secret(SecretString::from("s".repeat(32)));
        Tokens::new(&keys, Duration::from_secs(60)).unwrap()
    }

    fn caller() -> Caller {
        Caller { user_id: UserId::new(), root: NodeId::new() }
    }

    #[test]
    fn an_issued_token_verifies_to_its_caller() {
        let caller = caller();
        let token = tokens().issue(&caller, 3).unwrap();
        let verified = tokens().verify(&token).unwrap();
        assert_eq!(verified.generation, 3);
        assert_eq!((verified.caller.user_id, verified.caller.root), (caller.user_id, caller.root));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let keys = TokenKeys::Secret(SecretString::from("t".repeat(32)));
        let other = Tokens::new(&keys, Duration::from_secs(60)).unwrap();
        let token = other.issue(&caller(), 0).unwrap();
        assert!(tokens().verify(&token).is_err());
    }
}
