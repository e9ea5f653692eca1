//! Garbage collection: finishing what crashes interrupted.
//!
//! The commit path is ordered so that a crash leaves only garbage, never a visible half-change:
//!
//! - nodes inserted by a commit that never linked them (the process died, or the commit
//!   conflicted after the insert): nothing reaches them;
//! - tombstones whose purge did not run: every read already skips them;
//! - edges into a node deleted while the edge was being added, whose check did not run.
//!
//! [`Store::collect_garbage`] removes all three for one graph. It is idempotent and safe to run
//! from any replica at any time; it takes a grace period so that it never touches a node that a
//! commit in flight has just inserted and is about to link. It walks the whole graph, so its cost
//! grows with the graph: run it rarely, off the request path.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};

use crate::error::{DriverResultExt, Result};
use crate::model::NodeId;
use crate::store::Store;

/// What one collection pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GarbageReport {
    pub unreachable_nodes: usize,
    pub tombstones_purged: usize,
    pub dangling_edges: usize,
}

impl Store {
    /// Removes the garbage of the graph `root` older than `grace`.
    pub async fn collect_garbage(&self, root: &NodeId, grace: Duration) -> Result<GarbageReport> {
        let cutoff =
            DateTime::from_millis(DateTime::now().timestamp_millis() - grace.as_millis() as i64);
        let mut report = GarbageReport::default();

        // Tombstones first: purging them also removes the edges that point at them.
        let tombstones = self.node_ids(doc! { "root": root.as_str(), "_deleted": true }).await?;
        for id in &tombstones {
            self.purge(root, id).await?;
        }
        report.tombstones_purged = tombstones.len();

        let live: HashSet<NodeId> = self
            .node_ids(doc! { "root": root.as_str(), "_deleted": { "$exists": false } })
            .await?
            .into_iter()
            .collect();
        report.dangling_edges = self.remove_dangling_edges(root, &live).await?;

        let reachable = self.reachable_from(root).await?;
        let old = doc! { "$lte": cutoff };
        let filter =
            doc! { "root": root.as_str(), "_deleted": { "$exists": false }, "created_at": old };
        for id in self.node_ids(filter).await? {
            if reachable.contains(&id) {
                continue;
            }
            self.remove_edges_from(&id).await?;
            self.nodes().delete_one(doc! { "_id": id.as_str() }).await.ctx("deleting garbage")?;
            report.unreachable_nodes += 1;
        }
        Ok(report)
    }

    async fn node_ids(&self, filter: Document) -> Result<Vec<NodeId>> {
        let docs: Vec<Document> = self
            .nodes()
            .find(filter)
            .projection(doc! { "_id": 1 })
            .await
            .ctx("listing nodes")?
            .try_collect()
            .await
            .ctx("listing nodes")?;
        Ok(docs.iter().filter_map(|d| NodeId::parse(d.get_str("_id").ok()?).ok()).collect())
    }

    /// Pulls entries whose source or target is not a live node of the graph; deletes buckets
    /// of missing sources.
    async fn remove_dangling_edges(&self, root: &NodeId, live: &HashSet<NodeId>) -> Result<usize> {
        let mut removed = 0;
        for set in self.read_graph_sets(root).await? {
            if !live.contains(&set.key.source) {
                removed += set.edges.len();
                self.remove_edges_from(&set.key.source).await?;
                continue;
            }
            let dangling: Vec<_> = set
                .edges
                .iter()
                .filter(|e| !live.contains(&e.target))
                .map(|e| (set.key.clone(), e.id.clone()))
                .collect();
            removed += dangling.len();
            self.pull_edges(&dangling).await?;
        }
        Ok(removed)
    }

    /// Every node reachable from `root` along out-edges.
    async fn reachable_from(&self, root: &NodeId) -> Result<HashSet<NodeId>> {
        let mut seen = HashSet::from([root.clone()]);
        let mut queue = VecDeque::from([root.clone()]);
        while let Some(node) = queue.pop_front() {
            for set in self.read_out_sets(&node, None, None).await? {
                for edge in set.edges {
                    if seen.insert(edge.target.clone()) {
                        queue.push_back(edge.target);
                    }
                }
            }
        }
        Ok(seen)
    }
}
