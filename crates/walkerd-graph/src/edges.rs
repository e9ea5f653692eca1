//! Edges, stored as bounded adjacency buckets in their own collection.
//!
//! An *edge set* is every edge leaving one node with one edge kind towards nodes of one kind, for
//! example "the `Edge` edges from this root to `Item` nodes". Each set is a chain of documents in
//! `edges`:
//!
//! - the *head* `{_id: "<node>|<edge kind>|<target kind>", v, n, seq, entries: [..]}` takes every
//!   new edge. `v` is the set's version, bumped by every change, and `n` counts the slots used;
//! - when the head is full it is *sealed*: its entries move to a bucket
//!   `{_id: "<head id>|<seq>", entries: [..]}` and the head starts again, in one transaction.
//!
//! Each entry is `{id, t: target, f: fields}`. Every edge is stored once, on its source's side;
//! in-traversal (`<--`) is served by the multikey index on `entries.t`.
//!
//! Why this shape: adding an edge is one `$addToSet` on one small document, whatever the size of
//! the set, so it stays O(1) and never rewrites a node; concurrent blind adds commute; and the
//! head's `v` gives check-then-create something to condition on. Splitting sets by target kind
//! keeps a walker that looks for its `Counter` from conflicting with every new `Item`.
//!
//! `n` is never decremented: a bucket emptied by removals is not refilled, which keeps the
//! capacity check a plain filter. The cost is sparse buckets after heavy churn; sealing skips
//! an empty bucket and garbage collection deletes emptied ones.

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::ClientSession;

use crate::error::{is_duplicate_key, ConflictKind, DriverResultExt, Result, StoreError};
use crate::model::{Edge, EdgeId, EdgeKind, NodeId, NodeKind, Version};
use crate::store::{corrupt, Store};

/// How often a blind add retries sealing a full head before its run replays instead.
const SEAL_TRIES: u32 = 20;

/// Buckets read per query when paging.
const PAGE_WINDOW: i64 = 2;

/// Names one edge set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SetKey {
    pub source: NodeId,
    pub edge_kind: EdgeKind,
    pub target_kind: NodeKind,
}

impl SetKey {
    pub fn of(edge: &Edge) -> SetKey {
        SetKey {
            source: edge.source.clone(),
            edge_kind: edge.kind.clone(),
            target_kind: edge.target_kind.clone(),
        }
    }

    pub fn head_id(&self) -> String {
        format!("{}|{}|{}", self.source, self.edge_kind, self.target_kind)
    }

    fn bucket_id(&self, seq: i64) -> String {
        format!("{}|{seq:010}", self.head_id())
    }

    fn filter(&self) -> Document {
        doc! {
            "node": self.source.as_str(),
            "ek": self.edge_kind.as_str(),
            "tk": self.target_kind.as_str(),
        }
    }
}

/// One edge as it sits in a bucket.
pub(crate) fn entry_document(id: &EdgeId, target: &NodeId, fields: &Document) -> Document {
    let mut entry = doc! { "id": id.as_str(), "t": target.as_str() };
    if !fields.is_empty() {
        entry.insert("f", fields.clone());
    }
    entry
}

/// The edges of one set as read by a run, with the set's version at that moment (0 when the set
/// has never held an edge).
#[derive(Debug, Clone)]
pub(crate) struct SetRead {
    pub key: SetKey,
    pub version: Version,
    pub edges: Vec<Edge>,
}

/// Parses bucket documents, sorted by set then `seq`, into one [`SetRead`] per set.
fn sets_from_buckets(buckets: Vec<Document>) -> Result<Vec<SetRead>> {
    let mut sets: Vec<SetRead> = Vec::new();
    for bucket in buckets {
        let key = SetKey {
            source: NodeId::parse(bucket.get_str("node").map_err(|_| corrupt("bucket", "node"))?)?,
            edge_kind: EdgeKind::new(bucket.get_str("ek").map_err(|_| corrupt("bucket", "ek"))?)?,
            target_kind: NodeKind::new(bucket.get_str("tk").map_err(|_| corrupt("bucket", "tk"))?)?,
        };
        if sets.last().is_none_or(|s| s.key != key) {
            sets.push(SetRead { key: key.clone(), version: Version(0), edges: Vec::new() });
        }
        let set = sets.last_mut().expect("pushed above");
        if let Ok(v) = bucket.get_i64("v") {
            set.version = Version(v);
        }
        for entry in entries_of(&bucket)? {
            set.edges.push(edge_from_entry(&key, entry)?);
        }
    }
    Ok(sets)
}

/// The entries of a bucket; none when a projection left them out.
fn entries_of(bucket: &Document) -> Result<impl Iterator<Item = &Document>> {
    let entries = match bucket.get("entries") {
        None => &[][..],
        Some(Bson::Array(entries)) => &entries[..],
        Some(_) => return Err(corrupt("bucket", "entries")),
    };
    Ok(entries.iter().filter_map(Bson::as_document))
}

fn edge_from_entry(key: &SetKey, entry: &Document) -> Result<Edge> {
    Ok(Edge {
        id: EdgeId::parse(entry.get_str("id").map_err(|_| corrupt("edge", "id"))?)?,
        kind: key.edge_kind.clone(),
        source: key.source.clone(),
        target: NodeId::parse(entry.get_str("t").map_err(|_| corrupt("edge", "t"))?)?,
        target_kind: key.target_kind.clone(),
        fields: entry.get_document("f").cloned().unwrap_or_default(),
    })
}

/// A page of a set's edges, oldest bucket first, and where the next page starts.
#[derive(Debug, Clone)]
pub struct EdgePage {
    pub edges: Vec<Edge>,
    pub next: Option<PageCursor>,
}

/// Where a page stops: the bucket `seq` and the last edge id taken from it. Entries are taken in
/// id order within a bucket, so removals between pages never make a page skip an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub seq: i64,
    pub after: EdgeId,
}

impl Store {
    /// Lists the edges leaving `source`, optionally only those of one edge kind and one target
    /// kind, as one read per matching set.
    pub(crate) async fn read_out_sets(
        &self,
        source: &NodeId,
        edge_kind: Option<&EdgeKind>,
        target_kind: Option<&NodeKind>,
    ) -> Result<Vec<SetRead>> {
        let mut filter = doc! { "node": source.as_str() };
        if let Some(kind) = edge_kind {
            filter.insert("ek", kind.as_str());
        }
        if let Some(kind) = target_kind {
            filter.insert("tk", kind.as_str());
        }
        let mut sets = self.read_sets(filter).await?;
        // Only the target kind may be unset while the edge kind is set, which the index sorts
        // correctly; an unset edge kind with a set target kind is filtered here.
        sets.retain(|s| edge_kind.is_none_or(|k| &s.key.edge_kind == k));
        Ok(sets)
    }

    /// The edge `id` of the graph `root`, if it exists.
    pub async fn find_edge(&self, root: &NodeId, id: &EdgeId) -> Result<Option<Edge>> {
        let filter = doc! { "root": root.as_str(), "entries.id": id.as_str() };
        let sets = self.read_sets(filter).await?;
        Ok(sets.into_iter().flat_map(|s| s.edges).find(|e| &e.id == id))
    }

    /// Every edge set of the graph `root`, for garbage collection.
    pub(crate) async fn read_graph_sets(&self, root: &NodeId) -> Result<Vec<SetRead>> {
        self.read_sets(doc! { "root": root.as_str() }).await
    }

    async fn read_sets(&self, filter: Document) -> Result<Vec<SetRead>> {
        let buckets: Vec<Document> = self
            .edges()
            .find(filter)
            .sort(doc! { "node": 1, "ek": 1, "tk": 1, "seq": 1 })
            .await
            .ctx("reading edges")?
            .try_collect()
            .await
            .ctx("reading edges")?;
        sets_from_buckets(buckets)
    }

    /// Edges that point at `target` from nodes of the graph `root`.
    pub(crate) async fn read_in_edges(&self, root: &NodeId, target: &NodeId) -> Result<Vec<Edge>> {
        let filter = doc! { "root": root.as_str(), "entries.t": target.as_str() };
        let sets = self.read_sets(filter).await?;
        let edges = sets.into_iter().flat_map(|s| s.edges);
        Ok(edges.filter(|e| &e.target == target).collect())
    }

    /// One page of at most `limit` edges of the set (`source`, `edge_kind`, `target_kind`),
    /// read from the `(node, ek, tk, seq)` index: a page touches only the buckets it returns.
    pub async fn page_edges(
        &self,
        source: &NodeId,
        edge_kind: &EdgeKind,
        target_kind: &NodeKind,
        cursor: Option<&PageCursor>,
        limit: usize,
    ) -> Result<EdgePage> {
        let key = SetKey {
            source: source.clone(),
            edge_kind: edge_kind.clone(),
            target_kind: target_kind.clone(),
        };
        // The head carries the highest seq; without a head the set is empty.
        let head = self
            .edges()
            .find_one(doc! { "_id": key.head_id() })
            .projection(doc! { "seq": 1 })
            .await
            .ctx("paging edges")?;
        let Some(head) = head else {
            return Ok(EdgePage { edges: Vec::new(), next: None });
        };
        let last = head.get_i64("seq").map_err(|_| corrupt("bucket", "seq"))?;

        // Each edge is kept with its bucket's seq, which the next page's cursor needs.
        let mut page: Vec<(i64, Edge)> = Vec::new();
        let mut from = cursor.map_or(0, |c| c.seq);
        while from <= last {
            // A bounded seq window, not an open range with a limit: some servers read the whole
            // range before applying the limit.
            let mut filter = key.filter();
            filter.insert("seq", doc! { "$gte": from, "$lt": from + PAGE_WINDOW });
            from += PAGE_WINDOW;
            let buckets: Vec<Document> = self
                .edges()
                .find(filter)
                .sort(doc! { "node": 1, "ek": 1, "tk": 1, "seq": 1 })
                .await
                .ctx("paging edges")?
                .try_collect()
                .await
                .ctx("paging edges")?;
            for bucket in buckets {
                let seq = bucket.get_i64("seq").map_err(|_| corrupt("bucket", "seq"))?;
                let mut entries = entries_of(&bucket)?
                    .map(|e| edge_from_entry(&key, e))
                    .collect::<Result<Vec<_>>>()?;
                entries.sort_by(|a, b| a.id.cmp(&b.id));
                if let Some(c) = cursor.filter(|c| c.seq == seq) {
                    entries.retain(|e| e.id > c.after);
                }
                for edge in entries {
                    if page.len() == limit.max(1) {
                        let (seq, last) = page.last().expect("limit is at least one");
                        let next = Some(PageCursor { seq: *seq, after: last.id.clone() });
                        let edges = page.into_iter().map(|(_, e)| e).collect();
                        return Ok(EdgePage { edges, next });
                    }
                    page.push((seq, edge));
                }
            }
        }
        Ok(EdgePage { edges: page.into_iter().map(|(_, e)| e).collect(), next: None })
    }

    /// Adds edges to one set without a transaction: a single `$addToSet` on the head in the
    /// common case. A full head, or a condition that needs a look, falls back to a transaction.
    pub(crate) async fn add_to_set_alone(
        &self,
        key: &SetKey,
        root: &NodeId,
        entries: Vec<Document>,
        expect: Option<Version>,
    ) -> Result<()> {
        let capacity = self.bucket_capacity() as i64;
        let count = entries.len() as i64;
        self.faults().before_write()?;

        let pushed = match expect {
            _ if count > capacity => false,
            None => return self.add_blindly(key, root, entries).await,
            // Nobody has ever added to this set: create its head, and lose to anyone who did.
            Some(Version(0)) => {
                match self.edges().insert_one(new_head(key, root, &entries)).await {
                    Ok(_) => true,
                    Err(e) if is_duplicate_key(&e) => {
                        return Err(StoreError::Conflict(ConflictKind::StaleEdgeSet))
                    }
                    Err(e) => return Err(StoreError::from_driver("adding an edge", e)),
                }
            }
            Some(Version(v)) => {
                let filter =
                    doc! { "_id": key.head_id(), "v": v, "n": { "$lte": capacity - count } };
                let update = push_update(entries.clone(), count);
                let result = self.edges().update_one(filter, update).await.ctx("adding an edge")?;
                result.matched_count == 1
            }
        };
        if pushed {
            return Ok(());
        }
        let mut session = self.start_transaction().await?;
        let outcome = self.add_to_set_in(&mut session, key, root, &entries, expect).await;
        self.finish_transaction(&mut session, outcome).await
    }

    /// A blind add: an upserting `$addToSet` on the head while it has room. When it is full,
    /// one transaction seals it; writers that lose that race go back to the plain push, since
    /// the winner has most likely just made room.
    async fn add_blindly(&self, key: &SetKey, root: &NodeId, entries: Vec<Document>) -> Result<()> {
        let capacity = self.bucket_capacity() as i64;
        let count = entries.len() as i64;
        let mut tries = 0;
        loop {
            if count <= capacity {
                let filter = doc! { "_id": key.head_id(), "n": { "$lte": capacity - count } };
                let mut update = push_update(entries.clone(), count);
                update.insert("$setOnInsert", head_fields(key, root));
                match self.edges().update_one(filter, update).upsert(true).await {
                    Ok(_) => return Ok(()),
                    // The head exists and is full: the upsert collided with it.
                    Err(e) if is_duplicate_key(&e) => {}
                    Err(e) => return Err(StoreError::from_driver("adding an edge", e)),
                }
            }

            let mut session = self.start_transaction().await?;
            let outcome = self.add_to_set_in(&mut session, key, root, &entries, None).await;
            match self.finish_transaction(&mut session, outcome).await {
                Err(StoreError::Conflict(_)) if tries < SEAL_TRIES => {
                    tries += 1;
                    let pause = rand::random_range(0..=1000 * u64::from(tries.min(10)));
                    tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                }
                done => return done,
            }
        }
    }

    /// Adds edges to one set inside `session`'s transaction, sealing the head whenever it is
    /// full. The head is read afresh before each step: inside the transaction that read sees
    /// this transaction's own writes.
    pub(crate) async fn add_to_set_in(
        &self,
        session: &mut ClientSession,
        key: &SetKey,
        root: &NodeId,
        entries: &[Document],
        expect: Option<Version>,
    ) -> Result<()> {
        let capacity = self.bucket_capacity();
        let mut remaining = entries;
        let mut first_look = true;
        while !remaining.is_empty() {
            let head = self
                .edges()
                .find_one(doc! { "_id": key.head_id() })
                .session(&mut *session)
                .await
                .ctx("reading an edge head")?;
            let version = head.as_ref().map_or(Ok(0), |h| h.get_i64("v"));
            let version = version.map_err(|_| corrupt("bucket", "v"))?;
            if first_look && expect.is_some_and(|v| v.0 != version) {
                return Err(StoreError::Conflict(ConflictKind::StaleEdgeSet));
            }
            first_look = false;

            let Some(head) = head else {
                let (now, later) = remaining.split_at(remaining.len().min(capacity));
                self.faults().before_write()?;
                self.edges()
                    .insert_one(new_head(key, root, now))
                    .session(&mut *session)
                    .await
                    .map_err(head_insert_error)?;
                remaining = later;
                continue;
            };
            let used = head.get_i32("n").map_err(|_| corrupt("bucket", "n"))? as usize;
            let take = remaining.len().min(capacity.saturating_sub(used));
            if take == 0 {
                self.seal(session, key, &head).await?;
                continue;
            }
            let (now, later) = remaining.split_at(take);
            self.faults().before_write()?;
            self.edges()
                .update_one(
                    doc! { "_id": key.head_id(), "v": version },
                    push_update(now.to_vec(), take as i64),
                )
                .session(&mut *session)
                .await
                .ctx("adding an edge")?;
            remaining = later;
        }
        Ok(())
    }

    /// Moves a full head's entries to a sealed bucket and empties the head.
    async fn seal(&self, session: &mut ClientSession, key: &SetKey, head: &Document) -> Result<()> {
        let seq = head.get_i64("seq").map_err(|_| corrupt("bucket", "seq"))?;
        let version = head.get_i64("v").map_err(|_| corrupt("bucket", "v"))?;
        let entries = head.get_array("entries").map_err(|_| corrupt("bucket", "entries"))?;

        if !entries.is_empty() {
            let mut sealed = key.filter();
            sealed.insert("_id", key.bucket_id(seq));
            sealed.insert("root", head.get_str("root").map_err(|_| corrupt("bucket", "root"))?);
            sealed.insert("seq", seq);
            sealed.insert("entries", entries.clone());
            self.faults().before_write()?;
            self.edges().insert_one(sealed).session(&mut *session).await.ctx("sealing a bucket")?;
        }

        let reset = doc! {
            "$set": { "entries": [], "n": 0, "seq": seq + 1 },
            "$inc": { "v": 1_i64 },
        };
        self.faults().before_write()?;
        self.edges()
            .update_one(doc! { "_id": key.head_id(), "v": version }, reset)
            .session(&mut *session)
            .await
            .ctx("sealing a bucket")?;
        Ok(())
    }

    /// Removes one edge from its set inside `session`'s transaction and bumps the set version.
    /// Removing an edge that is already gone changes nothing.
    pub(crate) async fn remove_from_set_in(
        &self,
        session: &mut ClientSession,
        key: &SetKey,
        edge: &EdgeId,
        expect: Option<Version>,
    ) -> Result<()> {
        if let Some(expected) = expect {
            let head = self
                .edges()
                .find_one(doc! { "_id": key.head_id() })
                .projection(doc! { "v": 1 })
                .session(&mut *session)
                .await
                .ctx("reading an edge head")?;
            let current = head.and_then(|h| h.get_i64("v").ok()).unwrap_or(0);
            if current != expected.0 {
                return Err(StoreError::Conflict(ConflictKind::StaleEdgeSet));
            }
        }

        let mut filter = key.filter();
        filter.insert("entries.id", edge.as_str());
        self.faults().before_write()?;
        let pulled = self
            .edges()
            .update_one(filter, doc! { "$pull": { "entries": { "id": edge.as_str() } } })
            .session(&mut *session)
            .await
            .ctx("removing an edge")?;
        if pulled.modified_count == 0 {
            return Ok(());
        }
        self.faults().before_write()?;
        self.edges()
            .update_one(doc! { "_id": key.head_id() }, doc! { "$inc": { "v": 1_i64 } })
            .session(&mut *session)
            .await
            .ctx("removing an edge")?;
        Ok(())
    }

    /// Removes every edge into `target` (the node is being purged) and bumps the versions of the
    /// sets that held them. Runs without a transaction: each step is idempotent, and a purge that
    /// stops halfway is finished by garbage collection.
    pub(crate) async fn remove_edges_into(&self, root: &NodeId, target: &NodeId) -> Result<()> {
        let filter = doc! { "root": root.as_str(), "entries.t": target.as_str() };
        let holders: Vec<Document> = self
            .edges()
            .find(filter.clone())
            .projection(doc! { "node": 1, "ek": 1, "tk": 1 })
            .await
            .ctx("finding edges into a deleted node")?
            .try_collect()
            .await
            .ctx("finding edges into a deleted node")?;
        if holders.is_empty() {
            return Ok(());
        }
        let pull = doc! { "$pull": { "entries": { "t": target.as_str() } } };
        self.edges().update_many(filter, pull).await.ctx("removing edges into a node")?;

        let heads: Vec<String> =
            sets_from_buckets(holders)?.into_iter().map(|set| set.key.head_id()).collect();
        let bump = doc! { "$inc": { "v": 1_i64 } };
        self.edges()
            .update_many(doc! { "_id": { "$in": heads } }, bump)
            .await
            .ctx("removing edges into a node")?;
        Ok(())
    }

    /// Deletes every bucket of every set leaving `source`.
    pub(crate) async fn remove_edges_from(&self, source: &NodeId) -> Result<()> {
        self.edges()
            .delete_many(doc! { "node": source.as_str() })
            .await
            .ctx("removing edges from a node")?;
        Ok(())
    }

    /// Takes back edges that a commit added to a node deleted in the meantime (see
    /// [`crate::commit`]).
    pub(crate) async fn pull_edges(&self, edges: &[(SetKey, EdgeId)]) -> Result<()> {
        for (key, id) in edges {
            let mut filter = key.filter();
            filter.insert("entries.id", id.as_str());
            let pull = doc! { "$pull": { "entries": { "id": id.as_str() } } };
            self.edges().update_many(filter, pull).await.ctx("taking back an edge")?;
        }
        Ok(())
    }
}

fn head_fields(key: &SetKey, root: &NodeId) -> Document {
    let mut fields = key.filter();
    fields.insert("root", root.as_str());
    fields.insert("seq", 0_i64);
    fields
}

fn new_head(key: &SetKey, root: &NodeId, entries: &[Document]) -> Document {
    let mut head = head_fields(key, root);
    head.insert("_id", key.head_id());
    head.insert("v", 1_i64);
    head.insert("n", entries.len() as i32);
    head.insert("entries", entries.iter().cloned().map(Bson::Document).collect::<Vec<_>>());
    head
}

fn push_update(entries: Vec<Document>, count: i64) -> Document {
    let each: Vec<Bson> = entries.into_iter().map(Bson::Document).collect();
    doc! {
        "$addToSet": { "entries": { "$each": each } },
        "$inc": { "n": count as i32, "v": 1_i64 },
    }
}

/// Inside a transaction, a duplicate head means another run created the set first.
fn head_insert_error(e: mongodb::error::Error) -> StoreError {
    if is_duplicate_key(&e) {
        StoreError::Conflict(ConflictKind::StaleEdgeSet)
    } else {
        StoreError::from_driver("creating an edge head", e)
    }
}
