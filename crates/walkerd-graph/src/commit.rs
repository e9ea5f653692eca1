//! Commit: turning a unit of work into writes that are all-or-nothing.
//!
//! The writes of a commit fall in two groups:
//!
//! - *Writes to existing documents*: a node update (`$set` of the changed fields and `$inc` of
//!   `_v`, filtered on the `_v` the run read), a blind increment, a tombstone for a deleted node,
//!   and the change of an edge set's head. Each can conflict or fail on its own.
//! - *Inserts of new nodes*, which cannot conflict: nobody else knows their ids.
//!
//! With at most one write to an existing document, no transaction is needed: the new nodes are
//! inserted first, then the single write is applied. A crash in between leaves only nodes that no
//! edge reaches, and the single write is atomic by itself; if that write conflicts instead, the
//! new nodes are deleted again before the run replays. With two or more, everything goes in
//! one MongoDB transaction. This keeps the common walkers (add an item, bump a counter) out of
//! transactions, which matters because a transaction that touches a document every request
//! touches (a user's item list) serialises on it and collapses under load.
//!
//! After the commit, two idempotent clean-ups run:
//!
//! - Deleted nodes are purged: the tombstone written by the commit already hides them; the purge
//!   removes their edges and then the document.
//! - Edges added to a node that existed before this run (other than the root, which is never
//!   deleted) are checked: if that node was deleted meanwhile, the edge is taken back. Deletion
//!   tombstones first and purges after, and this check runs after the edge is written, so between
//!   the two one of them always sees the other: no dangling edge survives.
//!
//! A crash can interrupt either clean-up; [`Store::collect_garbage`] finishes the work, and also
//! removes nodes that a crashed commit inserted but never linked.

use mongodb::bson::{doc, DateTime, Document};
use mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT;
use mongodb::ClientSession;
use std::sync::atomic::Ordering;

use crate::edges::SetKey;
use crate::error::{ConflictKind, DriverResultExt, Result, StoreError};
use crate::model::{EdgeId, NodeId, Version};
use crate::store::{node_document, Store};
use crate::unit_of_work::{AlsoUpdate, Tracked, UnitOfWork};

/// What a commit wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub nodes_created: usize,
    pub nodes_updated: usize,
    pub nodes_deleted: usize,
    pub edges_added: usize,
    pub edges_removed: usize,
    /// Whether the commit needed a transaction.
    pub transaction: bool,
}

/// One write to an existing node document.
struct NodeWrite {
    filter: Document,
    update: Document,
    /// Filtered on the version read (not a blind increment).
    conditional: bool,
}

/// Adds to one edge set.
struct SetAdd {
    key: SetKey,
    entries: Vec<Document>,
    expect: Option<Version>,
}

/// Everything a commit will write, worked out before the first write.
struct Plan {
    root: NodeId,
    inserts: Vec<Document>,
    node_writes: Vec<NodeWrite>,
    also: Vec<AlsoUpdate>,
    set_adds: Vec<SetAdd>,
    removals: Vec<(SetKey, EdgeId, Option<Version>)>,
    deleted: Vec<NodeId>,
    /// Edges whose endpoints must be checked after the commit, with those endpoints.
    to_verify: Vec<(SetKey, EdgeId, Vec<NodeId>)>,
    stats: CommitStats,
}

impl Plan {
    fn writes_to_existing(&self) -> usize {
        // A removal touches the bucket holding the edge and the set's head.
        self.node_writes.len() + self.set_adds.len() + 2 * self.removals.len() + self.also.len()
    }

    /// Whether the commit must be one transaction. Two or more writes to existing documents
    /// must; so must new nodes next to a write that is likely to conflict (a conditional one),
    /// or every lost race would leave its new nodes behind as garbage; and so must a commit
    /// that carries a document from outside the graph.
    fn needs_transaction(&self) -> bool {
        let single_is_conditional = self.node_writes.iter().any(|w| w.conditional)
            || self.set_adds.iter().any(|a| a.expect.is_some());
        self.writes_to_existing() >= 2
            || (!self.inserts.is_empty() && single_is_conditional)
            || !self.also.is_empty()
    }
}

impl UnitOfWork {
    /// Applies the run's changes, all or nothing. A run that changed nothing sends nothing.
    ///
    /// Returns [`StoreError::Conflict`] when something the run read changed meanwhile; nothing
    /// of the commit is then visible and the run can be replayed from fresh state.
    pub async fn commit(self) -> Result<CommitStats> {
        let store = self.store.clone();
        let plan = self.plan();
        if plan.inserts.is_empty() && plan.writes_to_existing() == 0 {
            return Ok(plan.stats);
        }

        let mut stats = plan.stats.clone();
        if !plan.needs_transaction() {
            if let Err(e) = store.apply_alone(&plan).await {
                // A conflict means the one write did not apply, so the nodes inserted for it are
                // unreachable: remove them now rather than leave them to garbage collection. Any
                // other error may hide a write that did apply, and then they stay.
                if e.is_conflict() {
                    store.remove_inserted(&plan).await;
                }
                return Err(e);
            }
        } else {
            stats.transaction = true;
            let mut session = store.start_transaction().await?;
            let outcome = store.apply_in(&mut session, &plan).await;
            store.finish_transaction(&mut session, outcome).await?;
        }

        store.after_commit(&plan).await?;
        Ok(stats)
    }

    fn plan(self) -> Plan {
        let now = DateTime::now();
        let mut plan = Plan {
            root: self.root.clone(),
            inserts: Vec::new(),
            node_writes: Vec::new(),
            also: self.also.clone(),
            set_adds: Vec::new(),
            removals: Vec::new(),
            deleted: Vec::new(),
            to_verify: Vec::new(),
            stats: CommitStats::default(),
        };

        for tracked in self.nodes.values() {
            match (tracked.read_at, tracked.deleted) {
                (None, true) => {}
                (None, false) => {
                    plan.inserts.push(node_document(&tracked.node, now));
                    plan.stats.nodes_created += 1;
                }
                (Some(read_at), true) => {
                    plan.node_writes.push(tombstone(tracked, read_at, now));
                    plan.deleted.push(tracked.node.id.clone());
                    plan.stats.nodes_deleted += 1;
                }
                (Some(read_at), false) => {
                    if let Some(write) = node_update(tracked, read_at, now) {
                        plan.node_writes.push(write);
                        plan.stats.nodes_updated += 1;
                    }
                }
            }
        }

        let mut by_set: Vec<SetAdd> = Vec::new();
        for added in &self.added {
            let existing = |id: &NodeId| {
                id != &self.root && self.nodes.get(id).is_some_and(|t| t.read_at.is_some())
            };
            let check: Vec<NodeId> = [&added.edge.source, &added.edge.target]
                .into_iter()
                .filter(|id| existing(id))
                .cloned()
                .collect();
            if !check.is_empty() {
                plan.to_verify.push((added.key.clone(), added.edge.id.clone(), check));
            }
            match by_set.iter_mut().find(|s| s.key == added.key) {
                Some(set) => set.entries.push(added.entry.clone()),
                None => by_set.push(SetAdd {
                    key: added.key.clone(),
                    entries: vec![added.entry.clone()],
                    expect: self.expected_version(&added.key),
                }),
            }
            plan.stats.edges_added += 1;
        }
        plan.set_adds = by_set;

        for (key, id) in &self.removed {
            plan.removals.push((key.clone(), id.clone(), self.expected_version(key)));
            plan.stats.edges_removed += 1;
        }
        plan
    }
}

/// `$set` of the changed fields and `$inc` of the incremented ones, with `_v` bumped. Conditional
/// on the version read unless the node only received blind increments.
fn node_update(tracked: &Tracked, read_at: Version, now: DateTime) -> Option<NodeWrite> {
    if tracked.dirty.is_empty() && tracked.increments.is_empty() {
        return None;
    }
    let mut set = doc! { "updated_at": now };
    let mut unset = Document::new();
    for name in &tracked.dirty {
        match tracked.node.fields.get(name) {
            Some(value) => set.insert(format!("fields.{name}"), value.clone()),
            None => unset.insert(format!("fields.{name}"), ""),
        };
    }
    let mut inc = doc! { "_v": 1_i64 };
    for (name, by) in &tracked.increments {
        inc.insert(format!("fields.{name}"), *by);
    }

    let conditional = !tracked.dirty.is_empty();
    let mut filter = doc! { "_id": tracked.node.id.as_str(), "_deleted": { "$exists": false } };
    if conditional {
        filter.insert("_v", read_at.0);
    }
    let mut update = doc! { "$set": set, "$inc": inc };
    if !unset.is_empty() {
        update.insert("$unset", unset);
    }
    Some(NodeWrite { filter, update, conditional })
}

fn tombstone(tracked: &Tracked, read_at: Version, now: DateTime) -> NodeWrite {
    NodeWrite {
        filter: doc! { "_id": tracked.node.id.as_str(), "_v": read_at.0 },
        update: doc! {
            "$set": { "_deleted": true, "updated_at": now },
            "$inc": { "_v": 1_i64 },
        },
        conditional: true,
    }
}

impl Store {
    /// Applies a plan with at most one write to an existing document, without a transaction.
    async fn apply_alone(&self, plan: &Plan) -> Result<()> {
        if !plan.inserts.is_empty() {
            self.faults().before_write()?;
            self.nodes().insert_many(plan.inserts.clone()).await.ctx("inserting nodes")?;
        }
        if let Some(write) = plan.node_writes.first() {
            self.faults().before_write()?;
            let result = self
                .nodes()
                .update_one(write.filter.clone(), write.update.clone())
                .await
                .ctx("updating a node")?;
            if result.matched_count == 0 {
                return Err(StoreError::Conflict(ConflictKind::StaleNode));
            }
        }
        if let Some(add) = plan.set_adds.first() {
            self.add_to_set_alone(&add.key, &plan.root, add.entries.clone(), add.expect).await?;
        }
        Ok(())
    }

    /// Best effort: deletes the nodes a failed plan inserted (garbage collection catches any left).
    async fn remove_inserted(&self, plan: &Plan) {
        let ids: Vec<&str> = plan.inserts.iter().filter_map(|d| d.get_str("_id").ok()).collect();
        if ids.is_empty() {
            return;
        }
        let filter = doc! { "_id": { "$in": ids }, "root": plan.root.as_str() };
        if let Err(e) = self.nodes().delete_many(filter).await {
            tracing::warn!(error = %e, "could not remove the nodes of a conflicting commit");
        }
    }

    /// Applies a whole plan inside `session`'s transaction.
    async fn apply_in(&self, session: &mut ClientSession, plan: &Plan) -> Result<()> {
        if !plan.inserts.is_empty() {
            self.faults().before_write()?;
            self.nodes()
                .insert_many(plan.inserts.clone())
                .session(&mut *session)
                .await
                .ctx("inserting nodes")?;
        }
        for write in &plan.node_writes {
            self.faults().before_write()?;
            let result = self
                .nodes()
                .update_one(write.filter.clone(), write.update.clone())
                .session(&mut *session)
                .await
                .ctx("updating a node")?;
            if result.matched_count == 0 {
                return Err(StoreError::Conflict(ConflictKind::StaleNode));
            }
        }
        for add in &plan.set_adds {
            self.add_to_set_in(session, &add.key, &plan.root, &add.entries, add.expect).await?;
        }
        for (key, edge, expect) in &plan.removals {
            self.remove_from_set_in(session, key, edge, *expect).await?;
        }
        for also in &plan.also {
            self.faults().before_write()?;
            let collection = self.database().collection::<Document>(&also.collection);
            let result = collection
                .update_one(also.filter.clone(), also.update.clone())
                .session(&mut *session)
                .await
                .ctx("updating a document committed with the run")?;
            if result.matched_count == 0 {
                return Err(StoreError::Conflict(ConflictKind::StaleDocument));
            }
        }
        Ok(())
    }

    pub(crate) async fn start_transaction(&self) -> Result<ClientSession> {
        let mut session = self.client().start_session().await.ctx("starting a session")?;
        session.start_transaction().await.ctx("starting a transaction")?;
        Ok(session)
    }

    /// Commits when `outcome` is Ok, aborts otherwise. A commit whose result is unknown (the
    /// connection dropped) is retried as a commit, never as a new run, so it cannot apply twice.
    pub(crate) async fn finish_transaction(
        &self,
        session: &mut ClientSession,
        outcome: Result<()>,
    ) -> Result<()> {
        let stats = self.stats();
        if let Err(e) = outcome {
            // The server aborts an abandoned transaction by itself; a failed abort changes
            // nothing for the caller.
            let _ = session.abort_transaction().await;
            stats.count_abort(&e);
            return Err(e);
        }
        let mut tries = 0;
        loop {
            match session.commit_transaction().await {
                Ok(()) => {
                    stats.transactions_committed.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) => {
                    stats.commit_retries_unknown_result.fetch_add(1, Ordering::Relaxed);
                    tries += 1;
                    if tries >= 5 {
                        return Err(StoreError::OutcomeUnknown { source: e });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
                }
                Err(e) => {
                    let e = StoreError::from_driver("committing a transaction", e);
                    stats.count_abort(&e);
                    return Err(e);
                }
            }
        }
    }

    /// The idempotent clean-ups described in the module documentation.
    async fn after_commit(&self, plan: &Plan) -> Result<()> {
        if !plan.to_verify.is_empty() {
            let endpoints: Vec<&str> =
                plan.to_verify.iter().flat_map(|(_, _, ids)| ids).map(NodeId::as_str).collect();
            let alive = self.live_ids(&endpoints).await?;
            let orphaned: Vec<(SetKey, EdgeId)> = plan
                .to_verify
                .iter()
                .filter(|(_, _, ids)| ids.iter().any(|id| !alive.contains(id.as_str())))
                .map(|(key, id, _)| (key.clone(), id.clone()))
                .collect();
            self.pull_edges(&orphaned).await?;
        }
        for id in &plan.deleted {
            self.purge(&plan.root, id).await?;
        }
        Ok(())
    }

    /// The ids among `ids` of nodes that exist and are not deleted.
    pub(crate) async fn live_ids(&self, ids: &[&str]) -> Result<std::collections::HashSet<String>> {
        use futures::TryStreamExt;
        let filter = doc! { "_id": { "$in": ids }, "_deleted": { "$exists": false } };
        let docs: Vec<Document> = self
            .nodes()
            .find(filter)
            .projection(doc! { "_id": 1 })
            .await
            .ctx("checking nodes")?
            .try_collect()
            .await
            .ctx("checking nodes")?;
        Ok(docs.iter().filter_map(|d| d.get_str("_id").ok().map(str::to_owned)).collect())
    }

    /// Removes a tombstoned node's edges, then the node.
    pub(crate) async fn purge(&self, root: &NodeId, id: &NodeId) -> Result<()> {
        self.remove_edges_into(root, id).await?;
        self.remove_edges_from(id).await?;
        self.nodes()
            .delete_one(doc! { "_id": id.as_str(), "_deleted": true })
            .await
            .ctx("purging a node")?;
        Ok(())
    }
}
