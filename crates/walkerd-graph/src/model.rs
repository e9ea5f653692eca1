//! The graph's domain values: ids, kinds, versions, field names, nodes and edges.
//!
//! Every value that crosses the store's boundary is one of these types, checked when it is made,
//! so a malformed id or a field name that could smuggle a MongoDB operator (`$set`, `a.b`) is
//! rejected before any database call.

use std::fmt;

use mongodb::bson::Document;
use thiserror::Error;
use uuid::Uuid;

/// A value given to a checking constructor was not acceptable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    #[error("invalid id {0:?}: expected 32 lowercase hexadecimal characters")]
    InvalidId(String),
    #[error("invalid kind {0:?}: expected a letter or `_`, then up to 63 letters, digits or `_`")]
    InvalidKind(String),
    #[error(
        "invalid field name {0:?}: must be 1 to 256 characters, not start with `$`, \
             and contain no `.` or NUL"
    )]
    InvalidFieldName(String),
}

/// Ids are UUIDv7 in simple form: time-ordered, so documents made together sit together.
fn new_hex_id() -> String {
    Uuid::now_v7().simple().to_string()
}

fn check_hex_id(s: &str) -> Result<(), ModelError> {
    let ok = s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidId(s.chars().take(64).collect()))
    }
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh, unique id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(new_hex_id())
            }

            /// Checks that `s` has the id format.
            pub fn parse(s: &str) -> Result<Self, ModelError> {
                check_hex_id(s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

hex_id!(
    /// Identifies a node. A user's root node id doubles as the id of that user's graph.
    NodeId
);
hex_id!(
    /// Identifies one edge, unique across the whole store.
    EdgeId
);

fn check_kind(s: &str) -> Result<(), ModelError> {
    let mut bytes = s.bytes();
    let first_ok = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if first_ok && rest_ok && s.len() <= 64 {
        Ok(())
    } else {
        Err(ModelError::InvalidKind(s.chars().take(80).collect()))
    }
}

macro_rules! kind_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks that `s` is an identifier-like type name.
            pub fn new(s: &str) -> Result<Self, ModelError> {
                check_kind(s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

kind_name!(
    /// A node's type name, such as `Item` or `Counter`.
    NodeKind
);
kind_name!(
    /// An edge's type name. Walkers that do not name one use [`EdgeKind::generic`].
    EdgeKind
);

impl NodeKind {
    /// The kind of every user's root node.
    pub fn root() -> Self {
        Self("Root".to_owned())
    }
}

impl EdgeKind {
    /// The kind of an edge made without naming one (Jac's plain `++>`).
    pub fn generic() -> Self {
        Self("Edge".to_owned())
    }
}

/// A node's version, `_v` in its document: 1 when created, bumped by every committed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub i64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The name of one field of a node or an edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(String);

impl FieldName {
    pub fn new(s: &str) -> Result<Self, ModelError> {
        let ok = !s.is_empty()
            && s.len() <= 256
            && !s.starts_with('$')
            && !s.contains('.')
            && !s.contains('\0');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ModelError::InvalidFieldName(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks every key of a field document, at every depth, with [`FieldName::new`].
pub fn check_fields(fields: &Document) -> Result<(), ModelError> {
    use mongodb::bson::Bson;

    fn check_value(value: &Bson) -> Result<(), ModelError> {
        match value {
            Bson::Document(doc) => check_fields(doc),
            Bson::Array(items) => items.iter().try_for_each(check_value),
            _ => Ok(()),
        }
    }

    for (key, value) in fields {
        FieldName::new(key)?;
        check_value(value)?;
    }
    Ok(())
}

/// A node as read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: NodeId,
    /// The root of the graph the node belongs to (its own id for a root).
    pub root: NodeId,
    pub kind: NodeKind,
    pub version: Version,
    pub fields: Document,
}

/// An edge as read from the store: it always points from `source` to `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub id: EdgeId,
    pub kind: EdgeKind,
    pub source: NodeId,
    pub target: NodeId,
    /// The target's kind, kept with the edge so children of one kind are found without
    /// loading the others.
    pub target_kind: NodeKind,
    pub fields: Document,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_text() {
        let id = NodeId::new();
        assert_eq!(NodeId::parse(id.as_str()), Ok(id));
        for bad in ["", "xyz", "0123456789ABCDEF0123456789abcdef", &"a".repeat(33)] {
            assert!(NodeId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn kinds_must_look_like_identifiers() {
        assert!(NodeKind::new("Item").is_ok());
        assert!(NodeKind::new("_x9").is_ok());
        for bad in ["", "9a", "a|b", "a.b", "$x", &"a".repeat(65)] {
            assert!(NodeKind::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn field_names_that_could_inject_operators_are_rejected() {
        for bad in ["$set", "a.b", "a\0b", ""] {
            assert!(FieldName::new(bad).is_err(), "{bad:?} was accepted");
        }
        let nested = mongodb::bson::doc! { "ok": { "inner": [ { "$where": 1 } ] } };
        assert!(check_fields(&nested).is_err());
        assert!(check_fields(&mongodb::bson::doc! { "name": "x", "n": 1 }).is_ok());
    }
}
