//! Idempotent retries of walker calls (`Idempotency-Key`).
//!
//! A client whose request timed out cannot know whether it applied. With a key, it can retry
//! safely: the walker's effects happen at most once, and every retry gets the first answer.
//!
//! Each key is a document in `idempotency`, `_id` = `"<user id>|<key>"`:
//!
//! 1. *Claim*: the first request inserts `{state: "running", claim: <random>, fingerprint}`.
//!    The fingerprint is a SHA-256 of the walker name, the spawn node and the body; a retry
//!    with another fingerprint is refused (422 `IDEMPOTENCY_KEY_REUSED`).
//! 2. *Complete*: the walker's commit also sets the document to `{state: "done", response}`,
//!    filtered on the claim, in the same transaction. So the stored response exists exactly
//!    when the walker's changes do, even if the process dies right after committing.
//! 3. *Retry*: a retry finds `done` and gets the stored response without running the walker;
//!    finds `running` and gets 409 `REQUEST_IN_PROGRESS` (the first may still apply); or finds
//!    a claim older than `WALKERD_IDEMPOTENCY_CLAIM_SECS` (its replica died) and takes it over.
//!    A taken-over claim can no longer complete: its commit's filter no longer matches.
//!
//! A request that fails definitely (4xx, or 409 `WRITE_CONFLICT`: nothing applied) releases its
//! claim, so a retry runs again. One whose outcome is unknown (503) keeps it. Finished keys
//! expire after 24 hours (a TTL index). Requests without a key pay nothing for this.

use std::time::Duration;

use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use serde_json::Value;
use sha2::{Digest, Sha256};
use walkerd_runtime::Attachment;

use crate::api::ApiError;
use crate::users::{db_error, is_duplicate_key, UserId};

const COLLECTION: &str = "idempotency";

/// How long a finished key is remembered.
const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// What a claim found.
pub enum Claim {
    /// This request holds the key and runs the walker.
    Fresh { claim: String },
    /// An earlier request finished: answer with its response.
    Replay { status: u16, body: Value },
}

#[derive(Clone)]
pub struct Idempotency {
    keys: Collection<Document>,
    claim_timeout: Duration,
}

impl Idempotency {
    pub fn new(store: &walkerd_graph::Store, claim_timeout: Duration) -> Idempotency {
        Idempotency { keys: store.database().collection(COLLECTION), claim_timeout }
    }

    pub async fn ensure_indexes(&self) -> Result<(), ApiError> {
        let ttl = IndexOptions::builder().expire_after(Duration::ZERO).build();
        let index = IndexModel::builder().keys(doc! { "expires_at": 1 }).options(ttl).build();
        self.keys.create_index(index).await.map_err(db_error)?;
        Ok(())
    }

    /// Checks a key from a header: 1 to 128 visible ASCII characters.
    pub fn check_key(key: &str) -> Result<(), ApiError> {
        let ok = (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(())
        } else {
            Err(ApiError::validation("Idempotency-Key must be 1 to 128 visible ASCII characters"))
        }
    }

    /// A digest of what the request asks for: the walker (or a method and path), the spawn
    /// node, and the body.
    pub fn fingerprint(walker: &str, node: Option<&str>, body: &Value) -> String {
        let mut hash = Sha256::new();
        hash.update(walker.as_bytes());
        hash.update([0]);
        hash.update(node.unwrap_or("").as_bytes());
        hash.update([0]);
        // serde_json keeps object keys sorted, so equal bodies serialise equally.
        hash.update(body.to_string().as_bytes());
        format!("{:x}", hash.finalize())
    }

    fn id(user: &UserId, key: &str) -> String {
        format!("{user}|{key}")
    }

    /// Claims `key` for `user`, or says why not.
    pub async fn claim(
        &self,
        user: &UserId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim, ApiError> {
        let id = Self::id(user, key);
        let claim = uuid::Uuid::new_v4().simple().to_string();
        let now = DateTime::now();
        let expires = DateTime::from_millis(now.timestamp_millis() + RETENTION.as_millis() as i64);
        let document = doc! {
            "_id": &id, "state": "running", "claim": &claim, "fingerprint": fingerprint,
            "claimed_at": now, "expires_at": expires,
        };
        match self.keys.insert_one(document).await {
            Ok(_) => return Ok(Claim::Fresh { claim }),
            Err(e) if !is_duplicate_key(&e) => return Err(db_error(e)),
            Err(_) => {}
        }

        let existing = self.keys.find_one(doc! { "_id": &id }).await.map_err(db_error)?;
        // Released between our insert and this read: the caller may simply retry.
        let existing = existing.ok_or(ApiError::RequestInProgress)?;
        if existing.get_str("fingerprint").ok() != Some(fingerprint) {
            return Err(ApiError::IdempotencyKeyReused);
        }
        if existing.get_str("state").ok() == Some("done") {
            let status = existing.get_i32("status").unwrap_or(200) as u16;
            let text = existing.get_str("response").unwrap_or("null");
            let body = serde_json::from_str(text).map_err(ApiError::internal)?;
            return Ok(Claim::Replay { status, body });
        }

        // Running. Take the claim over only once it is older than the timeout.
        let claimed_at = existing.get_datetime("claimed_at").map_err(ApiError::internal)?;
        let age = now.timestamp_millis() - claimed_at.timestamp_millis();
        if age < self.claim_timeout.as_millis() as i64 {
            return Err(ApiError::RequestInProgress);
        }
        let old = existing.get_str("claim").map_err(ApiError::internal)?;
        let filter = doc! { "_id": &id, "state": "running", "claim": old };
        let update = doc! { "$set": { "claim": &claim, "claimed_at": now } };
        let taken = self.keys.update_one(filter, update).await.map_err(db_error)?;
        if taken.matched_count == 1 {
            Ok(Claim::Fresh { claim })
        } else {
            Err(ApiError::RequestInProgress)
        }
    }

    /// The update that completes the claim, committed with the walker's changes.
    pub fn completion(
        &self,
        user: &UserId,
        key: &str,
        claim: &str,
        respond: ResponseFn,
    ) -> Attachment {
        Attachment {
            collection: COLLECTION.into(),
            filter: Self::claim_filter(user, key, claim),
            update: Box::new(move |result, reports| {
                let (status, body) = respond(result, reports);
                Self::done(status, &body)
            }),
        }
    }

    /// Completes the claim inside `work`'s commit with a response already known (graph calls).
    pub fn complete_in(
        &self,
        work: &mut walkerd_graph::UnitOfWork,
        user: &UserId,
        key: &str,
        claim: &str,
        status: u16,
        body: &Value,
    ) {
        work.also_update(
            COLLECTION,
            Self::claim_filter(user, key, claim),
            Self::done(status, body),
        );
    }

    fn claim_filter(user: &UserId, key: &str, claim: &str) -> Document {
        doc! { "_id": Self::id(user, key), "state": "running", "claim": claim }
    }

    fn done(status: u16, body: &Value) -> Document {
        doc! { "$set": {
            "state": "done",
            "status": i32::from(status),
            "response": body.to_string(),
            "completed_at": DateTime::now(),
        } }
    }

    /// The answer to a retry of a finished request: its stored status and body, marked
    /// `Idempotent-Replayed`, with the node's ETag when the body holds a node.
    pub fn replayed(status: u16, body: Value) -> actix_web::HttpResponse {
        use actix_web::http::{header, StatusCode};
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let mut answer = actix_web::HttpResponse::build(status);
        answer.insert_header(("Idempotent-Replayed", "true"));
        if let Some(version) = body["data"]["_v"].as_i64() {
            answer.insert_header((header::ETAG, format!("\"{version}\"")));
        }
        if body.is_null() {
            answer.finish()
        } else {
            answer.json(body)
        }
    }

    /// Gives the key back after a definite failure, so that a retry runs again.
    pub async fn release(&self, user: &UserId, key: &str, claim: &str) {
        let filter = doc! { "_id": Self::id(user, key), "state": "running", "claim": claim };
        if let Err(e) = self.keys.delete_one(filter).await {
            // The claim then simply expires; the client sees the original failure either way.
            tracing::warn!(error = %e, "could not release an idempotency claim");
        }
    }
}

/// Builds the response (status and envelope) from a walk's result and reports.
pub type ResponseFn = Box<dyn Fn(&Option<Value>, &[Value]) -> (u16, Value) + Send + Sync>;
