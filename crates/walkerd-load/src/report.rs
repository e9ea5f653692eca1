//! The end-of-run report: throughput, latency percentiles per walker, status codes, the server's
//! own conflict and replay counts, and the checker's verdict, as text and as JSON.
//!
//! Latencies go into HDR histograms (microseconds, 3 significant digits), so p99.9 and max are
//! exact to 0.1% however many requests a run makes, and the report costs the same memory for a
//! thousand requests as for ten million.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use walkerd_check::{Event, History, Op, Violation};

use crate::metrics::ServerCounters;

/// Microseconds up to an hour: anything slower is clamped to it.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    histogram.saturating_record(latency.as_micros().clamp(1, u64::MAX as u128) as u64);
}

/// Latency percentiles of one group of requests, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub requests: u64,
    pub ok: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>, ok: u64) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            requests: histogram.len(),
            ok,
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p90_ms: ms(histogram.value_at_quantile(0.9)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }

    /// Percentiles of `events` (all of them, answered or not: a timeout is a slow request).
    pub fn of_events<'e>(events: impl IntoIterator<Item = &'e Event>) -> Latency {
        let mut all = histogram();
        let mut ok = 0;
        for event in events {
            record(&mut all, event.latency());
            ok += u64::from(event.outcome.is_ok());
        }
        Latency::of(&all, ok)
    }
}

/// One second of the run, by completion time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Second {
    pub second: u64,
    pub completed: u64,
    pub not_ok: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

/// What the checker concluded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// False when the check itself could not run (the reason is in `error`).
    pub checked: bool,
    pub violations: Vec<String>,
    pub error: Option<String>,
}

impl Verdict {
    pub fn of(result: Result<Vec<Violation>, String>) -> Verdict {
        match result {
            Ok(violations) => Verdict {
                checked: true,
                violations: violations.iter().map(ToString::to_string).collect(),
                error: None,
            },
            Err(error) => Verdict { checked: false, violations: Vec::new(), error: Some(error) },
        }
    }

    pub fn passed(&self) -> bool {
        self.checked && self.violations.is_empty()
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How requests were paced, in words.
    pub pacing: String,
    pub targets: Vec<String>,
    pub users: usize,
    /// From the first request due to the last answer.
    pub seconds: f64,
    pub requests: u64,
    /// Answers per second over the whole run.
    pub throughput: f64,
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Per walker, and `all`.
    pub latency: BTreeMap<String, Latency>,
    /// HTTP status of each request's last attempt; `none` when it got no answer.
    pub statuses: BTreeMap<String, u64>,
    /// Requests retried with their Idempotency-Key after an unknown outcome.
    pub client_retries: u64,
    /// The servers' own counts over the run, when their `/metrics` could be read.
    pub server: Option<ServerCounters>,
    pub server_error: Option<String>,
    pub timeline: Vec<Second>,
    pub checker: Verdict,
}

/// What the report needs besides the history.
pub struct Context {
    pub pacing: String,
    pub targets: Vec<String>,
    pub users: usize,
    pub elapsed: Duration,
    pub server: Result<ServerCounters, String>,
    pub checker: Verdict,
}

impl Report {
    pub fn new(history: &History, context: Context) -> Report {
        let events = &history.events;
        let (ok, failed, unknown) = history.tally();
        let mut latency = BTreeMap::new();
        for op in Op::ALL {
            let of_op: Vec<&Event> = events.iter().filter(|e| e.op == op).collect();
            if !of_op.is_empty() {
                latency.insert(op.walker().to_owned(), Latency::of_events(of_op));
            }
        }
        latency.insert("all".to_owned(), Latency::of_events(events));

        let mut statuses = BTreeMap::new();
        for event in events {
            let status = event.status.map_or("none".to_owned(), |s| s.to_string());
            *statuses.entry(status).or_insert(0) += 1;
        }
        let seconds = context.elapsed.as_secs_f64();
        let (server, server_error) = match context.server {
            Ok(counters) => (Some(counters), None),
            Err(error) => (None, Some(error)),
        };
        Report {
            pacing: context.pacing,
            targets: context.targets,
            users: context.users,
            seconds,
            requests: events.len() as u64,
            throughput: events.len() as f64 / seconds.max(1e-9),
            ok: ok as u64,
            failed: failed as u64,
            unknown: unknown as u64,
            latency,
            statuses,
            client_retries: events.iter().filter(|e| e.attempts > 1).count() as u64,
            server,
            server_error,
            timeline: timeline(events),
            checker: context.checker,
        }
    }

    /// The report as a terminal shows it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let (n, s) = (self.requests, self.seconds);
        let _ = writeln!(out, "walkerd-load: {} against {}", self.pacing, self.targets.join(", "));
        let _ = writeln!(out, "{n} requests in {s:.1} s: {:.0} req/s", self.throughput);
        let (ok, failed, unknown) = (self.ok, self.failed, self.unknown);
        let _ = writeln!(out, "outcomes: {ok} ok, {failed} refused, {unknown} unknown");
        let statuses: Vec<String> =
            self.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(out, "status codes: {}", statuses.join(", "));
        if self.client_retries > 0 {
            let _ = writeln!(out, "retried with their key: {}", self.client_retries);
        }

        let _ = writeln!(
            out,
            "\n{:<11} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency ms", "requests", "ok", "p50", "p90", "p99", "p99.9", "max"
        );
        for (walker, l) in &self.latency {
            let _ = writeln!(
                out,
                "{walker:<11} {:>8} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                l.requests, l.ok, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            );
        }

        out.push('\n');
        match (&self.server, &self.server_error) {
            (Some(c), _) => {
                let per = |x: f64| x / (self.requests.max(1) as f64);
                let _ = writeln!(
                    out,
                    "server: {} commit attempts, {} conflicts, {} replays ({:.3} per request), \
                     {} requests out of replays, {} database commands ({:.2} per request)",
                    c.commit_attempts,
                    c.conflicts,
                    c.replays,
                    per(c.replays),
                    c.replay_budget_exhausted,
                    c.database_commands,
                    per(c.database_commands),
                );
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "server counters: unavailable ({e})");
            }
            (None, None) => {}
        }

        match (&self.checker.error, self.checker.violations.len()) {
            (Some(e), _) => {
                let _ = writeln!(out, "checker: could not check ({e})");
            }
            (None, 0) => {
                let _ = writeln!(out, "checker: no violation");
            }
            (None, n) => {
                let _ = writeln!(out, "checker: {n} violation(s)");
                for v in self.checker.violations.iter().take(20) {
                    let _ = writeln!(out, "  {v}");
                }
            }
        }
        out
    }
}

/// Per-second completions and latency percentiles, by completion time.
fn timeline(events: &[Event]) -> Vec<Second> {
    let last = events.iter().map(|e| e.completed.as_secs()).max();
    let Some(last) = last else { return Vec::new() };
    let mut seconds: Vec<(Histogram<u64>, u64)> = (0..=last).map(|_| (histogram(), 0)).collect();
    for event in events {
        let (histogram, not_ok) = &mut seconds[event.completed.as_secs() as usize];
        record(histogram, event.latency());
        *not_ok += u64::from(!event.outcome.is_ok());
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    seconds
        .iter()
        .enumerate()
        .map(|(second, (h, not_ok))| Second {
            second: second as u64,
            completed: h.len(),
            not_ok: *not_ok,
            p50_ms: ms(h, 0.5),
            p90_ms: ms(h, 0.9),
            p99_ms: ms(h, 0.99),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use walkerd_check::Outcome;

    fn event(id: u64, op: Op, invoked_ms: u64, latency_ms: u64, status: Option<u16>) -> Event {
        let invoked = Duration::from_millis(invoked_ms);
        let outcome = match status {
            Some(200) => Outcome::Ok(serde_json::Value::Null),
            Some(s) => Outcome::Fail { status: s, code: "X".into() },
            None => Outcome::Info("timeout".into()),
        };
        Event {
            id,
            user: 0,
            op,
            key: None,
            invoked,
            completed: invoked + Duration::from_millis(latency_ms),
            attempts: 1,
            status,
            outcome,
        }
    }

    fn context() -> Context {
        Context {
            pacing: "closed loop, 1 client".into(),
            targets: vec!["http://a".into()],
            users: 1,
            elapsed: Duration::from_secs(2),
            server: Err("not asked".into()),
            checker: Verdict::of(Ok(Vec::new())),
        }
    }

    #[test]
    fn percentiles_come_from_every_request_of_the_walker() {
        // 99 fast touches and one slow one: p50 is fast, max is the slow one.
        let mut events: Vec<Event> =
            (0..99).map(|i| event(i, Op::Touch, i, 2, Some(200))).collect();
        events.push(event(99, Op::Touch, 100, 900, Some(200)));
        events.push(event(100, Op::AddItem, 0, 7, Some(409)));
        let report = Report::new(&History { events }, context());

        let touch = &report.latency["touch"];
        assert_eq!((touch.requests, touch.ok), (100, 100));
        assert!((touch.p50_ms - 2.0).abs() < 0.01, "{touch:?}");
        assert!((touch.max_ms - 900.0).abs() < 1.0, "{touch:?}");
        assert_eq!(report.latency["add_item"].ok, 0);
        assert_eq!(report.latency["all"].requests, 101);
        assert_eq!(report.statuses["200"], 100);
        assert_eq!(report.statuses["409"], 1);
        assert_eq!((report.ok, report.failed, report.unknown), (100, 1, 0));
    }

    #[test]
    fn the_timeline_counts_each_request_in_the_second_it_completed() {
        let events = vec![
            event(0, Op::Touch, 100, 100, Some(200)),
            event(1, Op::Touch, 900, 200, None),
            event(2, Op::Touch, 2500, 10, Some(200)),
        ];
        let timeline = timeline(&events);
        let counts: Vec<(u64, u64)> = timeline.iter().map(|s| (s.completed, s.not_ok)).collect();
        assert_eq!(counts, vec![(1, 0), (1, 1), (1, 0)]);
    }

    #[test]
    fn a_failed_check_or_a_violation_is_not_a_pass() {
        assert!(Verdict::of(Ok(Vec::new())).passed());
        assert!(!Verdict::of(Err("no database".into())).passed());
    }
}
