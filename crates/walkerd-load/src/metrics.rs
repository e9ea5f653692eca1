//! The servers' own view of a run, read from their `/metrics` before and after it.
//!
//! The load generator sees answers; only the servers see the conflicts and replays behind them,
//! and the database commands each request cost. Each target's counters are read before and after
//! the run and the differences summed. Behind a load balancer, `/metrics` answers from whichever
//! replica the balancer picks, so name every replica with `--metrics-url` to count them all.

use serde::Serialize;
use walkerd_check::Workload;

/// Counter differences over a run, summed over the replicas read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerCounters {
    pub commit_attempts: f64,
    pub conflicts: f64,
    /// Attempts after the first, over all requests.
    pub replays: f64,
    /// Requests answered 409 because their replays ran out.
    pub replay_budget_exhausted: f64,
    /// Commands sent to the database, by every route.
    pub database_commands: f64,
}

impl ServerCounters {
    /// The counters in one Prometheus text exposition, summed over their labels.
    pub fn parse(text: &str) -> ServerCounters {
        ServerCounters {
            commit_attempts: sum(text, "walkerd_commit_attempts_total"),
            conflicts: sum(text, "walkerd_commit_conflicts_total"),
            replays: sum(text, "walkerd_replays_per_request_sum"),
            replay_budget_exhausted: sum(text, "walkerd_replay_budget_exhausted_total"),
            database_commands: sum(text, "walkerd_database_commands_total"),
        }
    }

    fn combine(&self, other: &ServerCounters, sign: f64) -> ServerCounters {
        ServerCounters {
            commit_attempts: self.commit_attempts + sign * other.commit_attempts,
            conflicts: self.conflicts + sign * other.conflicts,
            replays: self.replays + sign * other.replays,
            replay_budget_exhausted: self.replay_budget_exhausted
                + sign * other.replay_budget_exhausted,
            database_commands: self.database_commands + sign * other.database_commands,
        }
    }

    /// `self - before`.
    pub fn since(&self, before: &ServerCounters) -> ServerCounters {
        self.combine(before, -1.0)
    }
}

/// The sum of every sample of `metric`, whatever its labels.
fn sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            // The name must end here: `foo_total` is not a sample of `foo`.
            let rest = match rest.chars().next()? {
                '{' => &rest[rest.find('}')? + 1..],
                ' ' => rest,
                _ => return None,
            };
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Reads and sums the counters of every URL in `urls` (each a `/metrics` address).
pub async fn read(workload: &Workload, urls: &[String]) -> Result<ServerCounters, String> {
    let mut total = ServerCounters::default();
    for url in urls {
        let text = workload.get_text(url).await?;
        total = total.combine(&ServerCounters::parse(&text), 1.0);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
# HELP walkerd_commit_attempts_total Commit attempts
# TYPE walkerd_commit_attempts_total counter
walkerd_commit_attempts_total 10
walkerd_commit_conflicts_total{kind=\"stale_node\"} 2
walkerd_commit_conflicts_total{kind=\"transaction\"} 1
walkerd_replays_per_request_bucket{walker=\"touch\",le=\"1\"} 4
walkerd_replays_per_request_sum{walker=\"touch\"} 3
walkerd_replays_per_request_sum{walker=\"add_item\"} 0
walkerd_replays_per_request_count{walker=\"touch\"} 7
walkerd_database_commands_total 40
";

    #[test]
    fn samples_are_summed_over_labels_and_other_names_ignored() {
        let counters = ServerCounters::parse(BEFORE);
        assert_eq!(counters.commit_attempts, 10.0);
        assert_eq!(counters.conflicts, 3.0);
        assert_eq!(counters.replays, 3.0);
        assert_eq!(counters.replay_budget_exhausted, 0.0);
        assert_eq!(counters.database_commands, 40.0);
    }

    #[test]
    fn a_run_is_the_difference_of_two_readings() {
        let after = BEFORE.replace("attempts_total 10", "attempts_total 25");
        let run = ServerCounters::parse(&after).since(&ServerCounters::parse(BEFORE));
        assert_eq!(run.commit_attempts, 15.0);
        assert_eq!(run.conflicts, 0.0);
    }
}
