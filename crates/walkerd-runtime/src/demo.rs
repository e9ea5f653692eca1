//! The demo walkers: the workload of walkerd's tests, load runs and benchmarks.
//!
//! They mirror the Jac programs used to measure lost updates on other graph-walker servers:
//! `touch` does its counter update as a read-modify-write on purpose, and `count_up` does the
//! same with a blind increment, for comparison.

use chrono::{SecondsFormat, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::{json, Value};
use walkerd_graph::{Node, NodeKind};

use crate::error::WalkError;
use crate::registry::Registry;
use crate::walker::{field, int_field, Walk, Walker};

fn item() -> NodeKind {
    NodeKind::new("Item").expect("a valid kind")
}

fn counter() -> NodeKind {
    NodeKind::new("Counter").expect("a valid kind")
}

/// Registers every demo walker.
pub fn register(registry: &mut Registry) {
    registry
        .register::<AddItem>("add_item")
        .register::<ListItems>("list_items")
        .register::<Touch>("touch")
        .register::<CountUp>("count_up")
        .register::<ReadCounter>("read_counter");
}

fn default_name() -> String {
    "test".to_owned()
}

/// `add_item {name: str = "test"}`: creates `Item{name, created_at}` under the root.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    #[serde(default = "default_name")]
    name: String,
}

impl Walker for AddItem {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            if !walk.at_root() {
                return Ok(());
            }
            let created_at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
            let fields = json!({ "name": self.name, "created_at": created_at });
            let root = walk.root().clone();
            walk.create_child(&root, &item(), fields)?;
            walk.report(json!({ "success": true, "name": self.name, "created_at": created_at }));
            Ok(())
        }
        .boxed()
    }
}

/// `list_items {}`: reports the root's items.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListItems {}

impl Walker for ListItems {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            if !walk.at_root() {
                return Ok(());
            }
            let root = walk.root().clone();
            let items = walk.children(&root, Some(&item())).await?;
            let listed: Vec<Value> = items
                .iter()
                .map(|n| json!({ "name": field(n, "name"), "created_at": field(n, "created_at") }))
                .collect();
            walk.report(json!({ "success": true, "count": listed.len(), "items": listed }));
            Ok(())
        }
        .boxed()
    }
}

/// `touch {ts: str = ""}`: counts items and bumps the counter by reading and writing it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Touch {
    #[serde(default)]
    ts: String,
}

impl Walker for Touch {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            if !walk.at_root() {
                return Ok(());
            }
            let root = walk.root().clone();
            let items = walk.children(&root, Some(&item())).await?;
            let counters = walk.children(&root, Some(&counter())).await?;
            match counters.first() {
                None => {
                    walk.create_child(&root, &counter(), json!({ "value": 1 }))?;
                }
                Some(c) => {
                    let value = int_field(c, "value");
                    walk.set(&c.id, "value", json!(value + 1))?;
                }
            }
            walk.report(json!({ "success": true, "item_count": items.len(), "ts": self.ts }));
            Ok(())
        }
        .boxed()
    }
}

/// `count_up {}`: bumps the counter with a blind increment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountUp {}

impl Walker for CountUp {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            if !walk.at_root() {
                return Ok(());
            }
            let root = walk.root().clone();
            let counters = walk.children(&root, Some(&counter())).await?;
            match counters.first() {
                None => {
                    walk.create_child(&root, &counter(), json!({ "value": 1 }))?;
                }
                Some(c) => walk.increment(&c.id, "value", 1)?,
            }
            walk.report(json!({ "success": true }));
            Ok(())
        }
        .boxed()
    }
}

/// `read_counter {}`: reports how many counters exist and the first one's value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadCounter {}

impl Walker for ReadCounter {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            if !walk.at_root() {
                return Ok(());
            }
            let root = walk.root().clone();
            let counters: Vec<Node> = walk.children(&root, Some(&counter())).await?;
            let value = counters.first().map_or(0, |c| int_field(c, "value"));
            walk.report(json!({ "success": true, "counters": counters.len(), "value": value }));
            Ok(())
        }
        .boxed()
    }
}
