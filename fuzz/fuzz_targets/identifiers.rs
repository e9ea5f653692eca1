//! Identifiers as they arrive in paths and bodies: node ids, kinds, field names. A value that
//! parses prints back as the same text, and parsing never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use walkerd_graph::{EdgeKind, FieldName, NodeId, NodeKind};

fuzz_target!(|text: &str| {
    if let Ok(id) = NodeId::parse(text) {
        assert_eq!(id.to_string(), text);
    }
    if let Ok(kind) = NodeKind::new(text) {
        assert_eq!(kind.as_str(), text);
    }
    if let Ok(kind) = EdgeKind::new(text) {
        assert_eq!(kind.as_str(), text);
    }
    if let Ok(name) = FieldName::new(text) {
        assert!(!name.as_str().starts_with('$') && !name.as_str().contains(['.', '\0']));
    }
});
