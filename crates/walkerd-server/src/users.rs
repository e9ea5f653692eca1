//! User accounts: a name, a password hash and the root of the user's graph.
//!
//! Users live in the `users` collection, one document each:
//! `{_id, username, key, password_hash, root, token_gen, created_at}`. `token_gen` counts the
//! user's `logout-all` calls (missing reads as 0): tokens carry the generation they were issued
//! in, and a token of an older generation is revoked. `key` is the name in lower case and
//! carries a unique index, so `Ann@Example.com` and `ann@example.com` are one identity, and two
//! concurrent registrations of one name end with exactly one account.

use std::fmt;

use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use walkerd_graph::{NodeId, Store};

use crate::api::ApiError;

/// Identifies a user: 32 lowercase hexadecimal characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn new() -> UserId {
        UserId(uuid::Uuid::now_v7().simple().to_string())
    }

    pub fn parse(s: &str) -> Result<UserId, ApiError> {
        let hex = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if hex {
            Ok(UserId(s.to_owned()))
        } else {
            Err(ApiError::validation("malformed user id"))
        }
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered user as stored.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    pub root: NodeId,
    pub token_generation: i64,
}

/// The `users` collection.
#[derive(Clone)]
pub struct Users {
    users: Collection<Document>,
}

const DUPLICATE_KEY: i32 = 11000;

impl Users {
    pub fn new(store: &Store) -> Users {
        Users { users: store.database().collection("users") }
    }

    pub async fn ensure_indexes(&self) -> Result<(), ApiError> {
        let unique = IndexOptions::builder().unique(true).build();
        let index = IndexModel::builder().keys(doc! { "key": 1 }).options(unique).build();
        self.users.create_index(index).await.map_err(db_error)?;
        Ok(())
    }

    /// Stores a new user. `Ok(false)` when the name is taken.
    pub async fn insert(&self, user: &User) -> Result<bool, ApiError> {
        let document = doc! {
            "_id": user.id.to_string(),
            "username": &user.username,
            "key": user.username.to_lowercase(),
            "password_hash": &user.password_hash,
            "root": user.root.as_str(),
            "token_gen": user.token_generation,
            "created_at": DateTime::now(),
        };
        match self.users.insert_one(document).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(db_error(e)),
        }
    }

    pub async fn by_name(&self, username: &str) -> Result<Option<User>, ApiError> {
        let filter = doc! { "key": username.to_lowercase() };
        self.users.find_one(filter).await.map_err(db_error)?.map(user_from).transpose()
    }

    pub async fn by_id(&self, id: &UserId) -> Result<Option<User>, ApiError> {
        let filter = doc! { "_id": id.to_string() };
        self.users.find_one(filter).await.map_err(db_error)?.map(user_from).transpose()
    }

    /// The user's current token generation; `None` when the user does not exist.
    pub async fn token_generation(&self, id: &UserId) -> Result<Option<i64>, ApiError> {
        let filter = doc! { "_id": id.to_string() };
        let found = self
            .users
            .find_one(filter)
            .projection(doc! { "token_gen": 1 })
            .await
            .map_err(db_error)?;
        Ok(found.map(|d| generation_of(&d)))
    }

    /// Revokes every token issued so far to the user: bumps the generation and returns the new
    /// one, or `None` when the user does not exist.
    pub async fn bump_token_generation(&self, id: &UserId) -> Result<Option<i64>, ApiError> {
        use mongodb::options::ReturnDocument;
        let filter = doc! { "_id": id.to_string() };
        let updated = self
            .users
            .find_one_and_update(filter, doc! { "$inc": { "token_gen": 1_i64 } })
            .projection(doc! { "token_gen": 1 })
            .return_document(ReturnDocument::After)
            .await
            .map_err(db_error)?;
        Ok(updated.map(|d| generation_of(&d)))
    }
}

fn generation_of(doc: &Document) -> i64 {
    match doc.get("token_gen") {
        Some(mongodb::bson::Bson::Int64(n)) => *n,
        Some(mongodb::bson::Bson::Int32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn user_from(doc: Document) -> Result<User, ApiError> {
    let text = |key: &str| doc.get_str(key).map_err(|_| corrupt(key));
    Ok(User {
        id: UserId::parse(text("_id")?).map_err(|_| corrupt("_id"))?,
        username: text("username")?.to_owned(),
        password_hash: text("password_hash")?.to_owned(),
        root: NodeId::parse(text("root")?).map_err(|_| corrupt("root"))?,
        token_generation: generation_of(&doc),
    })
}

fn corrupt(key: &str) -> ApiError {
    ApiError::Internal(format!("user document without a valid `{key}`").into())
}

pub(crate) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    let kind = e.kind.as_ref();
    matches!(kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == DUPLICATE_KEY)
}

/// A driver error from the users collection, classified like the store's.
pub(crate) fn db_error(e: mongodb::error::Error) -> ApiError {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. } => ApiError::DatabaseUnavailable(Box::new(e)),
        _ => ApiError::internal(e),
    }
}
