//! Revoking all of a user's tokens, checked on every request without a database read per request.
//!
//! Each user has a token generation (`token_gen` in `users`), and every token carries the
//! generation it was issued in. `POST /user/logout-all` bumps the generation, which revokes every
//! token issued before. A request's token is accepted only if its generation equals the user's.
//!
//! Each replica caches the generations it has read for `WALKERD_REVOCATION_CACHE_SECS` (5 s by
//! default), so a user's requests cost one small read per replica per interval. The price is the
//! staleness bound: **after a logout-all, another replica may accept the revoked tokens for up
//! to that many seconds**; the replica that served the logout-all refuses them at once. A token
//! newer than the cached generation makes the cache read again, so a cache never refuses a valid
//! token. 0 turns the cache off: every authenticated request then reads the generation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::ApiError;
use crate::auth::Verified;
use crate::users::{UserId, Users};

/// Beyond this many cached users, stale entries are dropped before adding one, so the cache
/// cannot grow without bound however many users call.
const MAX_ENTRIES: usize = 100_000;

/// The cached token generations of one replica.
pub struct Generations {
    users: Users,
    ttl: Duration,
    cache: Mutex<HashMap<UserId, (i64, Instant)>>,
}

impl Generations {
    pub fn new(users: Users, ttl: Duration) -> Generations {
        Generations { users, ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// Accepts a verified token if its generation is the user's current one.
    pub async fn check(&self, token: &Verified) -> Result<(), ApiError> {
        let user = &token.caller.user_id;
        if let Some(current) = self.cached(user) {
            if token.generation == current {
                return Ok(());
            }
            if token.generation < current {
                return Err(ApiError::Unauthorized);
            }
            // Newer than what we saw: our entry is stale; read again.
        }
        let current = self.users.token_generation(user).await?.ok_or(ApiError::Unauthorized)?;
        self.remember(user, current);
        if token.generation == current {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// Revokes the user's tokens; returns the new generation for the token issued in reply.
    pub async fn revoke_all(&self, user: &UserId) -> Result<i64, ApiError> {
        let current =
            self.users.bump_token_generation(user).await?.ok_or(ApiError::Unauthorized)?;
        self.remember(user, current);
        Ok(current)
    }

    fn cached(&self, user: &UserId) -> Option<i64> {
        let cache = self.cache.lock().expect("the generation cache lock is never poisoned");
        let (generation, read_at) = cache.get(user)?;
        (read_at.elapsed() < self.ttl).then_some(*generation)
    }

    fn remember(&self, user: &UserId, generation: i64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().expect("the generation cache lock is never poisoned");
        if cache.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            cache.retain(|_, (_, read_at)| read_at.elapsed() < ttl);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        // A concurrent reader may have seen an older generation; never step back.
        let entry = cache.entry(user.clone()).or_insert((generation, Instant::now()));
        if generation >= entry.0 {
            *entry = (generation, Instant::now());
        }
    }
}
