//! The replay loop: run, commit, and on conflict run again from fresh state.
//!
//! Every attempt gets a new [`UnitOfWork`], so nothing a failed attempt read or computed leaks
//! into the next. Between attempts the loop sleeps a random time below an exponentially growing
//! cap ("full jitter"), which spreads contending runs apart instead of letting them collide in
//! lockstep. It stops at an attempt budget or a deadline, whichever comes first.
//!
//! A commit whose outcome is unknown is never replayed: replaying a run whose first commit did
//! apply would apply it twice.
//!
//! On a hot node, optimistic replays can starve: with many runs reading and writing one node,
//! each attempt's window between read and commit sees other commits, and on a loaded machine
//! that window is long. So after its first conflict a run replays while holding a per-graph
//! *replay gate* of this process: replays of one graph on one replica then take turns instead
//! of colliding, while first attempts never wait. The gate is not needed for correctness (the
//! version checks are; two replicas are exactly as safe as one), only for progress, and it is
//! sharded by graph so that it costs one small mutex per shard.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rand::Rng;

use crate::commit::CommitStats;
use crate::error::{ConflictKind, StoreError};
use crate::model::NodeId;
use crate::store::Store;
use crate::unit_of_work::UnitOfWork;

/// The replay loop's budget.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// No new attempt starts after this much time (`WALKERD_REPLAY_DEADLINE_MS`).
    pub deadline: Duration,
    /// Attempts at most, the first included (`WALKERD_REPLAY_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The cap on the first backoff; it doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(10),
            max_attempts: 200,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(50),
        }
    }
}

impl ReplaySettings {
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.base_backoff.saturating_mul(1 << attempt.min(16)).min(self.max_backoff);
        let micros = rand::rng().random_range(0..=cap.as_micros() as u64);
        Duration::from_micros(micros)
    }
}

/// The result of a run that committed.
#[derive(Debug)]
pub struct Committed<T> {
    pub value: T,
    /// Attempts made, the committed one included.
    pub attempts: u32,
    /// What each failed attempt ran into, in order.
    pub conflicts: Vec<ConflictKind>,
    pub stats: CommitStats,
}

impl Store {
    /// Runs `attempt` on a fresh unit of work of the graph `root` and commits it, replaying on
    /// conflict within [`ReplaySettings`]. An error returned by `attempt` ends the loop with
    /// nothing applied. When replays run out the error is [`StoreError::ConflictsExhausted`].
    ///
    /// `attempt` must have no effect outside the unit of work: it may run several times.
    pub async fn run<T, E, F>(&self, root: &NodeId, mut attempt: F) -> Result<Committed<T>, E>
    where
        F: for<'u> FnMut(&'u mut UnitOfWork) -> BoxFuture<'u, Result<T, E>>,
        E: From<StoreError>,
    {
        let settings = &self.settings().replay;
        let started = Instant::now();
        let mut attempts = 0;
        let mut conflicts = Vec::new();
        let mut gate = None;
        loop {
            attempts += 1;
            let mut work = self.begin(root);
            let value = attempt(&mut work).await?;
            match work.commit().await {
                Ok(stats) => return Ok(Committed { value, attempts, conflicts, stats }),
                Err(StoreError::Conflict(kind)) => {
                    tracing::debug!(
                        attempt = attempts,
                        conflict = kind.label(),
                        "commit conflicted"
                    );
                    conflicts.push(kind);
                }
                Err(e) => return Err(e.into()),
            }

            // Holding the gate already spaces this graph's replays apart on this replica.
            let pause = match gate {
                None => settings.backoff(attempts),
                Some(_) => settings.backoff(0).min(settings.base_backoff),
            };
            let out_of_time = started.elapsed() + pause >= settings.deadline;
            if attempts >= settings.max_attempts || out_of_time {
                let last = *conflicts.last().expect("a conflict was just recorded");
                return Err(StoreError::ConflictsExhausted { attempts, last }.into());
            }
            tokio::time::sleep(pause).await;
            if gate.is_none() {
                gate = Some(self.replay_gate(root).lock().await);
            }
        }
    }
}

/// Replay gates, one per shard of graphs.
pub(crate) struct ReplayGates {
    shards: Vec<tokio::sync::Mutex<()>>,
}

impl Default for ReplayGates {
    fn default() -> Self {
        Self { shards: (0..256).map(|_| tokio::sync::Mutex::new(())).collect() }
    }
}

impl Store {
    fn replay_gate(&self, root: &NodeId) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        root.hash(&mut hasher);
        let gates = &self.gates().shards;
        &gates[hasher.finish() as usize % gates.len()]
    }
}
