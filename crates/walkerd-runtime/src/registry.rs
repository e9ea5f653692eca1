//! Walkers registered by name, and running one inside the store's replay loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use walkerd_graph::bson::Document;
use walkerd_graph::{CommitStats, ConflictKind, NodeId, Store};

use crate::error::WalkError;
use crate::walker::{Walk, Walker};

/// Bounds on one run; exceeding either answers an error and applies nothing.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most node entries in one walk (`WALKERD_MAX_VISITS`).
    pub max_visits: usize,
    /// Longest a walk may run, replays included (`WALKERD_WALK_TIME_LIMIT_MS`).
    pub time_limit: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_visits: 10_000, time_limit: Duration::from_secs(30) }
    }
}

/// What a committed run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub result: Option<Value>,
    pub reports: Vec<Value>,
    /// Attempts made, the committed one included.
    pub attempts: u32,
    /// What each failed attempt ran into.
    pub conflicts: Vec<ConflictKind>,
    pub stats: CommitStats,
}

type Factory = Arc<dyn Fn(Value) -> Result<Box<dyn Walker>, WalkError> + Send + Sync>;

/// A document outside the graph to update in the same commit as a walk, with an update built
/// from what the walk produced (its result and reports). The server stores an idempotent
/// request's response this way, so the response exists exactly when the walk's changes do.
pub struct Attachment {
    pub collection: String,
    pub filter: Document,
    pub update: AttachmentUpdate,
}

/// Builds an attachment's update from a walk's result and reports.
pub type AttachmentUpdate = Box<dyn Fn(&Option<Value>, &[Value]) -> Document + Send + Sync>;

/// The walkers a server offers, by name.
#[derive(Clone, Default)]
pub struct Registry {
    walkers: BTreeMap<String, Factory>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `W` under `name`; its fields come from the request body.
    pub fn register<W>(&mut self, name: &str) -> &mut Self
    where
        W: Walker + DeserializeOwned,
    {
        let factory: Factory = Arc::new(|body| Ok(Box::new(decode::<W>(body)?)));
        self.walkers.insert(name.to_owned(), factory);
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.walkers.contains_key(name)
    }

    /// Walker names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.walkers.keys().map(String::as_str)
    }

    /// Decodes `body` as the fields of the walker `name`, without running it: the check every
    /// run makes before touching the database.
    pub fn check_input(&self, name: &str, body: Value) -> Result<(), WalkError> {
        let factory =
            self.walkers.get(name).ok_or_else(|| WalkError::UnknownWalker(name.into()))?;
        factory(body).map(drop)
    }

    /// Runs the walker `name` on the graph `root`, spawned on `spawn` (the root when `None`),
    /// replaying on conflict. Reports of conflicting attempts are dropped with them.
    pub async fn run(
        &self,
        store: &Store,
        name: &str,
        root: &NodeId,
        spawn: Option<&NodeId>,
        body: Value,
        limits: &Limits,
    ) -> Result<RunOutcome, WalkError> {
        self.run_attached(store, name, root, spawn, body, limits, None).await
    }

    /// [`Registry::run`], also committing `attachment` with the walk's changes.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_attached(
        &self,
        store: &Store,
        name: &str,
        root: &NodeId,
        spawn: Option<&NodeId>,
        body: Value,
        limits: &Limits,
        attachment: Option<Arc<Attachment>>,
    ) -> Result<RunOutcome, WalkError> {
        let factory =
            self.walkers.get(name).ok_or_else(|| WalkError::UnknownWalker(name.into()))?;
        // Decode once up front, so a bad body is answered before any database work.
        factory(body.clone())?;

        let deadline = Instant::now() + limits.time_limit;
        let max_visits = limits.max_visits;
        let spawn = spawn.unwrap_or(root).clone();
        let committed = store
            .run(root, |work| {
                let walker = factory(body.clone());
                let spawn = spawn.clone();
                let attachment = attachment.clone();
                async move {
                    let mut walker = walker?;
                    // The root always exists; any other spawn node must, before the walk starts.
                    if &spawn != work.root() && work.load(&spawn).await?.is_none() {
                        return Err(WalkError::NodeNotFound);
                    }
                    let mut walk = Walk::new(work, spawn, deadline);
                    walk_all(&mut *walker, &mut walk, max_visits).await?;
                    let (result, reports) = (walker.result(), walk.into_reports());
                    if let Some(a) = attachment {
                        let update = (a.update)(&result, &reports);
                        work.also_update(&a.collection, a.filter.clone(), update);
                    }
                    Ok::<_, WalkError>((result, reports))
                }
                .boxed()
            })
            .await?;
        let (result, reports) = committed.value;
        let (attempts, conflicts, stats) =
            (committed.attempts, committed.conflicts, committed.stats);
        Ok(RunOutcome { result, reports, attempts, conflicts, stats })
    }
}

/// Enters the spawn node, then every queued node, breadth-first.
async fn walk_all(
    walker: &mut dyn Walker,
    walk: &mut Walk<'_>,
    max_visits: usize,
) -> Result<(), WalkError> {
    let mut visits = 1;
    walker.enter(walk).await?;
    while let Some(next) = walk.next_node() {
        visits += 1;
        if visits > max_visits {
            return Err(WalkError::VisitLimitExceeded { limit: max_visits });
        }
        if Instant::now() > walk.deadline() {
            return Err(WalkError::TimeLimitExceeded);
        }
        // A queued node that no longer exists (or never belonged to this graph) is skipped.
        if walk.work().load(&next).await?.is_none() {
            continue;
        }
        walk.move_to(next);
        walker.enter(walk).await?;
    }
    if Instant::now() > walk.deadline() {
        return Err(WalkError::TimeLimitExceeded);
    }
    Ok(())
}

/// Builds a walker from a JSON body; errors name the offending field.
fn decode<W: DeserializeOwned>(body: Value) -> Result<W, WalkError> {
    let body = match body {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => body,
        _ => return Err(WalkError::invalid(None, "the body must be a JSON object")),
    };
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        let inner = e.into_inner().to_string();
        // serde names a missing or unknown field only in its message.
        let field = field.or_else(|| backticked(&inner));
        WalkError::invalid(field, inner)
    })
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}
