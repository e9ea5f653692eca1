//! Random interleavings of runs, checked against a sequential model.
//!
//! Each case starts a handful of runs, interleaves their read phases and commits in a random
//! order, and applies each committed run's intended effect to a model at its commit. The model
//! asserts that what the run read was still current when it committed (a read-modify-write of
//! the counter finds the value it read, a renamed item still exists): that is the no-lost-update
//! guarantee. Finally the store's graph must equal the model's.
//!
//! `WALKERD_PROPTEST_CASES` sets the number of cases (default 200).

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use walkerd_graph::bson::doc;
use walkerd_graph::{NodeId, Store, StoreError, StoreSettings, UnitOfWork};

#[derive(Debug, Clone)]
enum Op {
    AddItem,
    Touch,
    CountUp,
    Rename(usize),
    Delete(usize),
}

/// What a run meant to do, decided from what it read.
#[derive(Debug)]
enum Effect {
    Nothing,
    Add(NodeId, String),
    CreateCounter(NodeId),
    SetCounter(NodeId, i64),
    IncrementCounter(NodeId),
    Rename(NodeId, String),
    Delete(NodeId),
}

#[derive(Debug, Default, PartialEq)]
struct Model {
    items: BTreeMap<NodeId, String>,
    counter: Option<(NodeId, i64)>,
}

impl Model {
    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Nothing => {}
            Effect::Add(id, name) => {
                self.items.insert(id, name);
            }
            Effect::CreateCounter(id) => {
                assert!(self.counter.is_none(), "a second counter was created");
                self.counter = Some((id, 1));
            }
            Effect::SetCounter(id, value) => {
                let current = self.counter.as_mut().expect("the counter exists");
                assert_eq!(current.0, id);
                assert_eq!(current.1, value - 1, "a read-modify-write committed on a stale read");
                current.1 = value;
            }
            Effect::IncrementCounter(id) => {
                let current = self.counter.as_mut().expect("the counter exists");
                assert_eq!(current.0, id);
                current.1 += 1;
            }
            Effect::Rename(id, name) => {
                let item = self.items.get_mut(&id).expect("a deleted item was renamed");
                *item = name;
            }
            Effect::Delete(id) => {
                assert!(self.items.remove(&id).is_some(), "an item was deleted twice");
            }
        }
    }
}

/// The read phase of a run: reads and records changes, but does not commit.
async fn prepare(work: &mut UnitOfWork, op: &Op, tag: usize) -> Result<Effect, StoreError> {
    let root = work.root().clone();
    let name = format!("n{tag}");
    Ok(match op {
        Op::AddItem => {
            let id = work.create(item(), doc! { "name": &name })?;
            work.connect(&root, &id, edge(), doc! {})?;
            Effect::Add(id, name)
        }
        Op::Touch | Op::CountUp => {
            let counters = work.children(&root, Some(&edge()), Some(&counter())).await?;
            match counters.first() {
                None => {
                    let id = work.create(counter(), doc! { "value": 1_i64 })?;
                    work.connect(&root, &id, edge(), doc! {})?;
                    Effect::CreateCounter(id)
                }
                Some(c) if matches!(op, Op::Touch) => {
                    let value = int(c.fields.get("value")) + 1;
                    work.set(&c.id, "value", value)?;
                    Effect::SetCounter(c.id.clone(), value)
                }
                Some(c) => {
                    work.increment(&c.id, "value", 1)?;
                    Effect::IncrementCounter(c.id.clone())
                }
            }
        }
        Op::Rename(pick) | Op::Delete(pick) => {
            let mut items = work.children(&root, Some(&edge()), Some(&item())).await?;
            items.sort_by(|a, b| a.id.cmp(&b.id));
            let Some(target) = items.get(pick % items.len().max(1)).map(|n| n.id.clone()) else {
                return Ok(Effect::Nothing);
            };
            if matches!(op, Op::Rename(_)) {
                work.set(&target, "name", name.as_str())?;
                Effect::Rename(target, name)
            } else {
                work.delete(&target)?;
                Effect::Delete(target)
            }
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::AddItem),
        3 => Just(Op::Touch),
        1 => Just(Op::CountUp),
        2 => (0usize..8).prop_map(Op::Rename),
        1 => (0usize..8).prop_map(Op::Delete),
    ]
}

async fn run_case(store: &Store, initial: usize, ops: &[Op], choices: &[usize]) {
    let root = store.create_root().await.unwrap();
    let mut model = Model::default();
    if initial % 2 == 1 {
        let created = touch(store, &root).await.unwrap();
        assert_eq!(created.value, 0);
        model.counter = graph_of(store, &root).await.counter;
        assert!(model.counter.is_some(), "touch made no counter");
    }
    for i in 0..initial {
        let name = format!("init{i}");
        let id = add_item(store, &root, &name).await.unwrap().value;
        model.items.insert(id, name);
    }

    // Each run goes from not started, to read (holding its unit of work), to done.
    let mut pending: Vec<Option<(UnitOfWork, Effect)>> = ops.iter().map(|_| None).collect();
    let mut started = vec![false; ops.len()];
    let mut choices = choices.iter().cycle();
    loop {
        let ready: Vec<usize> =
            (0..ops.len()).filter(|&i| !started[i] || pending[i].is_some()).collect();
        let Some(&i) = ready.get(choices.next().unwrap() % ready.len().max(1)) else { break };
        match pending[i].take() {
            None => {
                started[i] = true;
                let mut work = store.begin(&root);
                let effect = prepare(&mut work, &ops[i], i).await.unwrap();
                pending[i] = Some((work, effect));
            }
            Some((work, effect)) => match work.commit().await {
                Ok(_) => model.apply(effect),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("commit failed: {e:?}"),
            },
        }
    }

    assert_eq!(graph_of(store, &root).await, model);
    store.collect_garbage(&root, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(graph_of(store, &root).await, model, "garbage collection changed the graph");
}

/// The graph as the model sees it, read back from the store.
async fn graph_of(store: &Store, root: &NodeId) -> Model {
    let mut work = store.begin(root);
    let items = work.children(root, Some(&edge()), Some(&item())).await.unwrap();
    let counters = work.children(root, Some(&edge()), Some(&counter())).await.unwrap();
    assert!(counters.len() <= 1, "{} counters", counters.len());
    Model {
        items: items
            .into_iter()
            .map(|n| (n.id, n.fields.get_str("name").unwrap().to_owned()))
            .collect(),
        counter: counters.first().map(|c| (c.id.clone(), int(c.fields.get("value")))),
    }
}

#[test]
fn random_interleavings_match_a_sequential_model() {
    let cases = std::env::var("WALKERD_PROPTEST_CASES").ok().and_then(|c| c.parse().ok());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Buckets of two edges, so that interleavings also cross bucket seals.
    let settings = StoreSettings { bucket_capacity: 2, ..StoreSettings::default() };
    let (db, store) = runtime.block_on(open_store("interleavings", settings));

    let config = ProptestConfig { cases: cases.unwrap_or(200), ..ProptestConfig::default() };
    proptest!(config, |(
        initial in 0usize..4,
        ops in proptest::collection::vec(op(), 1..7),
        choices in proptest::collection::vec(any::<usize>(), 1..20),
    )| {
        runtime.block_on(run_case(&store, initial, &ops, &choices));
    });
    runtime.block_on(db.drop_database());
}
