//! A small notes application built on walkerd, to show walkerd used as a library.
//!
//! It defines one node kind, `Note`, and three walkers:
//!
//! - `add_note {text}` on the root: creates a note under the root and reports it;
//! - `list_notes {}` on the root: reports every note, with its id;
//! - `pin {}` spawned on a note (`POST /walker/pin/{note_id}`): marks that note pinned.
//!
//! [`walkers`] builds the registry; `main.rs` serves it with `walkerd_server::serve`.

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::json;
use walkerd_graph::NodeKind;
use walkerd_server::{node_json, Registry, Walk, WalkError, Walker};

fn note() -> NodeKind {
    NodeKind::new("Note").expect("a valid kind")
}

/// The application's walkers.
pub fn walkers() -> Registry {
    let mut walkers = Registry::new();
    walkers
        .register::<AddNote>("add_note")
        .register::<ListNotes>("list_notes")
        .register::<Pin>("pin");
    walkers
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    text: String,
}

impl Walker for AddNote {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            if self.text.trim().is_empty() {
                return Err(WalkError::Failed("a note needs some text".into()));
            }
            let root = walk.root().clone();
            let id =
                walk.create_child(&root, &note(), json!({ "text": self.text, "pinned": false }))?;
            let created = walk.load(&id).await?.expect("created in this walk");
            walk.report(node_json(&created));
            Ok(())
        }
        .boxed()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListNotes {}

impl Walker for ListNotes {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            let root = walk.root().clone();
            for node in walk.children(&root, Some(&note())).await? {
                walk.report(node_json(&node));
            }
            Ok(())
        }
        .boxed()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {}

impl Walker for Pin {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            if walk.here().await?.kind != note() {
                return Err(WalkError::Failed("pin must be spawned on a note".into()));
            }
            let here = walk.here_id().clone();
            walk.set(&here, "pinned", json!(true))?;
            let pinned = walk.here().await?;
            walk.report(node_json(&pinned));
            Ok(())
        }
        .boxed()
    }
}
