//! Decoding untrusted JSON request bodies within limits.
//!
//! Every body the server reads goes through [`decode_json`] before anything else looks at it, so
//! the checks here hold for walkers, the graph API and the user routes alike:
//!
//! - the parser itself stops at 128 levels (serde_json's recursion limit), which keeps a hostile
//!   body from exhausting the stack; [`InputLimits::max_depth`] then bounds what is accepted;
//! - strings (object keys included), arrays and objects have size bounds, so one request cannot
//!   make a worker build an enormous document within the byte limit (a 1 MiB body of `[[],[],..]`
//!   is half a million values);
//! - every object key, at any depth, must be a valid stored field name: not empty, no leading
//!   `$`, no `.`, no NUL. Nothing a client sends can therefore reach MongoDB as an operator or a
//!   dotted path, whatever a walker later does with it.
//!
//! The checks are pure functions with no I/O, which is what the fuzz target (`fuzz/`) drives.

use serde_json::Value;
use walkerd_graph::FieldName;

use crate::error::WalkError;

/// Bounds on a decoded body. Each is inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLimits {
    /// Deepest nesting of arrays and objects; the body itself is depth 1.
    pub max_depth: usize,
    /// Longest string or object key, in bytes.
    pub max_string_bytes: usize,
    /// Most items in one array.
    pub max_array_len: usize,
    /// Most keys in one object.
    pub max_object_fields: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_depth: 32,
            max_string_bytes: 64 * 1024,
            max_array_len: 10_000,
            max_object_fields: 1_000,
        }
    }
}

/// Parses `bytes` as JSON and checks the value against `limits`. An empty or all-whitespace body
/// reads as `{}`.
pub fn decode_json(bytes: &[u8], limits: &InputLimits) -> Result<Value, WalkError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| WalkError::invalid(None, format!("malformed JSON: {e}")))?;
    check_json(&value, limits)?;
    Ok(value)
}

/// Checks an already parsed value against `limits` and the field-name rules.
pub fn check_json(value: &Value, limits: &InputLimits) -> Result<(), WalkError> {
    check_at(value, limits, 1, &mut Vec::new())
}

fn check_at<'v>(
    value: &'v Value,
    limits: &InputLimits,
    depth: usize,
    path: &mut Vec<&'v str>,
) -> Result<(), WalkError> {
    let refuse = |path: &[&str], message: String| {
        let field = (!path.is_empty()).then(|| path.join("."));
        Err(WalkError::invalid(field, message))
    };
    match value {
        Value::String(s) if s.len() > limits.max_string_bytes => {
            refuse(path, format!("a string is longer than {} bytes", limits.max_string_bytes))
        }
        Value::Array(_) | Value::Object(_) if depth > limits.max_depth => {
            refuse(path, format!("JSON nested deeper than {} levels", limits.max_depth))
        }
        Value::Array(items) => {
            if items.len() > limits.max_array_len {
                return refuse(
                    path,
                    format!("an array has more than {} items", limits.max_array_len),
                );
            }
            items.iter().try_for_each(|item| check_at(item, limits, depth + 1, path))
        }
        Value::Object(fields) => {
            if fields.len() > limits.max_object_fields {
                return refuse(
                    path,
                    format!("an object has more than {} fields", limits.max_object_fields),
                );
            }
            for (key, item) in fields {
                if key.len() > limits.max_string_bytes {
                    let message = format!("a key is longer than {} bytes", limits.max_string_bytes);
                    return refuse(path, message);
                }
                if FieldName::new(key).is_err() {
                    let shown: String = key.chars().filter(|c| !c.is_control()).take(40).collect();
                    return refuse(
                        path,
                        format!(
                            "field name {shown:?} is not allowed: names must be 1 to 256 bytes, \
                             must not start with `$` and must not contain `.` or NUL"
                        ),
                    );
                }
                path.push(key);
                check_at(item, limits, depth + 1, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn an_empty_body_is_an_empty_object() {
        assert_eq!(decode_json(b" \n", &InputLimits::default()).unwrap(), json!({}));
    }

    #[test]
    fn nesting_is_accepted_up_to_the_limit_and_refused_past_it() {
        let limits = InputLimits { max_depth: 4, ..InputLimits::default() };
        assert!(decode_json(nested(4).as_bytes(), &limits).is_ok());
        assert!(decode_json(nested(5).as_bytes(), &limits).is_err());
    }

    #[test]
    fn nesting_past_the_parser_limit_is_refused_without_overflowing_the_stack() {
        let error = decode_json(nested(100_000).as_bytes(), &InputLimits::default()).unwrap_err();
        assert!(error.to_string().contains("malformed JSON"), "{error}");
    }

    #[test]
    fn long_strings_keys_arrays_and_objects_are_refused() {
        let limits = InputLimits {
            max_depth: 8,
            max_string_bytes: 4,
            max_array_len: 3,
            max_object_fields: 2,
        };
        let refused = [
            json!({ "a": "12345" }),
            json!({ "abcde": 1 }),
            json!({ "a": [1, 2, 3, 4] }),
            json!({ "a": 1, "b": 2, "c": 3 }),
        ];
        for value in refused {
            assert!(check_json(&value, &limits).is_err(), "{value} was accepted");
        }
        assert!(check_json(&json!({ "a": "1234", "b": [1, 2, 3] }), &limits).is_ok());
    }

    #[test]
    fn operator_and_dotted_keys_are_refused_at_any_depth_and_named() {
        let limits = InputLimits::default();
        for value in [
            json!({ "$where": "1" }),
            json!({ "a": { "b.c": 1 } }),
            json!({ "a": [{ "ok": { "\u{0}": 1 } }] }),
            json!({ "": 1 }),
        ] {
            assert!(check_json(&value, &limits).is_err(), "{value} was accepted");
        }
        let error = check_json(&json!({ "outer": { "$set": 1 } }), &limits).unwrap_err();
        assert!(error.to_string().contains("`outer`"), "{error}");
    }
}
