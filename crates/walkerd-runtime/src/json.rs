//! Conversions between the JSON walkers speak and the BSON the store keeps.
//!
//! Integers stay integers (64-bit), other numbers become doubles; on the way out every value is
//! written as plain JSON (relaxed extended JSON), so a client never sees `{"$numberLong": ..}`.

use serde_json::Value;
use walkerd_graph::bson::{Bson, Document};
use walkerd_graph::model::check_fields;

use crate::error::WalkError;

/// A JSON value as BSON; field names inside objects are checked.
pub fn json_to_bson(value: Value) -> Result<Bson, WalkError> {
    let bson = Bson::try_from(value).map_err(|e| WalkError::invalid(None, e.to_string()))?;
    if let Bson::Document(doc) = &bson {
        check_fields(doc).map_err(|e| WalkError::invalid(None, e.to_string()))?;
    }
    Ok(bson)
}

/// A JSON object as a node's fields.
pub fn json_to_fields(value: Value) -> Result<Document, WalkError> {
    match json_to_bson(value)? {
        Bson::Document(doc) => Ok(doc),
        _ => Err(WalkError::invalid(None, "node fields must be a JSON object")),
    }
}

/// A stored value as plain JSON.
pub fn bson_to_json(value: Bson) -> Value {
    value.into_relaxed_extjson()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_nesting_round_trip() {
        let original = json!({ "n": 5, "x": 1.5, "s": "a", "list": [1, { "k": true }] });
        let fields = json_to_fields(original.clone()).unwrap();
        assert_eq!(bson_to_json(Bson::Document(fields)), original);
    }

    #[test]
    fn operator_like_keys_are_rejected() {
        assert!(json_to_fields(json!({ "$set": 1 })).is_err());
        assert!(json_to_fields(json!({ "a": { "b.c": 1 } })).is_err());
        assert!(json_to_fields(json!([1, 2])).is_err());
    }
}
