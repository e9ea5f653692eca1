//! Request bodies as a client can send them: arbitrary bytes through the server's decoder, then
//! into every demo walker's fields and into node fields, as the walker and graph routes do.
//!
//! Beyond "never panics", it checks what the rest of walkerd relies on: whatever the decoder
//! accepts is within the limits and has only storable field names, so it converts to BSON
//! without an operator or a dotted path reaching MongoDB.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use walkerd_graph::bson::Bson;
use walkerd_graph::model::check_fields;
use walkerd_graph::FieldName;
use walkerd_runtime::input::{check_json, decode_json};
use walkerd_runtime::json::json_to_bson;
use walkerd_runtime::{demo, InputLimits, Registry};

/// Small limits, so the fuzzer reaches each of them with short inputs.
fn limits() -> InputLimits {
    InputLimits { max_depth: 6, max_string_bytes: 64, max_array_len: 16, max_object_fields: 8 }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Every object key at any depth is a storable field name.
fn keys_are_storable(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().all(keys_are_storable),
        Value::Object(fields) => {
            fields.iter().all(|(key, item)| FieldName::new(key).is_ok() && keys_are_storable(item))
        }
        _ => true,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let limits = limits();
    let Ok(value) = decode_json(bytes, &limits) else { return };

    assert!(depth(&value) <= limits.max_depth, "accepted nesting past the limit");
    assert!(keys_are_storable(&value), "accepted a field name MongoDB would misread");
    assert!(check_json(&value, &limits).is_ok(), "an accepted body fails its own check");

    // The store checks field names again on the BSON it is given: that check must agree.
    if let Ok(Bson::Document(fields)) = Bson::try_from(value.clone()) {
        assert!(check_fields(&fields).is_ok(), "the store refuses what the decoder accepted");
    }
    let _ = json_to_bson(value.clone());

    let mut registry = Registry::new();
    demo::register(&mut registry);
    let names: Vec<String> = registry.names().map(str::to_owned).collect();
    for name in names {
        let _ = registry.check_input(&name, value.clone());
    }
});
