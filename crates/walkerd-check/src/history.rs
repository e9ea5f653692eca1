//! What every client asked and what it was told.
//!
//! Each request ends in one of three outcomes, as in Jepsen-style histories:
//!
//! - `Ok`: a 200 answer; the request applied, exactly once;
//! - `Fail`: a definite refusal (a 4xx such as 400 or 409 `WRITE_CONFLICT`); it did not apply;
//! - `Info`: the outcome is unknown (timeout, dropped connection, 5xx, 409
//!   `REQUEST_IN_PROGRESS`); it may or may not have applied, at most once.

use std::time::Duration;

use serde_json::Value;

/// The walkers a workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    AddItem,
    Touch,
    CountUp,
    ListItems,
}

impl Op {
    /// Every op, in a fixed order.
    pub const ALL: [Op; 4] = [Op::AddItem, Op::Touch, Op::CountUp, Op::ListItems];

    /// The op that runs the walker `name`.
    pub fn from_walker(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.walker() == name)
    }

    pub fn walker(self) -> &'static str {
        match self {
            Op::AddItem => "add_item",
            Op::Touch => "touch",
            Op::CountUp => "count_up",
            Op::ListItems => "list_items",
        }
    }

    /// Whether the op bumps the counter.
    pub fn counts(self) -> bool {
        matches!(self, Op::Touch | Op::CountUp)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok(Value),
    Fail { status: u16, code: String },
    Info(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    pub fn is_info(&self) -> bool {
        matches!(self, Outcome::Info(_))
    }

    /// Sorts an HTTP answer into an outcome.
    pub fn from_answer(status: u16, body: &Value) -> Outcome {
        let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
        match status {
            200 => Outcome::Ok(body.clone()),
            409 if code == "REQUEST_IN_PROGRESS" => Outcome::Info(code),
            400..=499 => Outcome::Fail { status, code },
            _ => Outcome::Info(format!("HTTP {status} {code}")),
        }
    }
}

/// One request, from invocation to completion.
#[derive(Debug, Clone)]
pub struct Event {
    /// Unique in the history; add_item names its item after it (`r<id>`).
    pub id: u64,
    /// Index of the user in the workload's user list.
    pub user: usize,
    pub op: Op,
    /// The Idempotency-Key sent, if any.
    pub key: Option<String>,
    /// Times since the workload started.
    pub invoked: Duration,
    pub completed: Duration,
    /// Attempts made: more than one when `Info` answers were retried with the same key.
    pub attempts: u32,
    /// The HTTP status of the last attempt; `None` when it got no answer.
    pub status: Option<u16>,
    pub outcome: Outcome,
}

impl Event {
    /// From invocation (or, in an open loop, from when the request was due) to completion.
    pub fn latency(&self) -> Duration {
        self.completed.saturating_sub(self.invoked)
    }

    /// The name add_item gives its item.
    pub fn item_name(&self) -> String {
        format!("r{}", self.id)
    }
}

/// Everything a workload did.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub events: Vec<Event>,
}

impl History {
    pub fn of_user(&self, user: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.user == user)
    }

    /// Counts per outcome: (ok, fail, info).
    pub fn tally(&self) -> (usize, usize, usize) {
        let ok = self.events.iter().filter(|e| e.outcome.is_ok()).count();
        let info = self.events.iter().filter(|e| e.outcome.is_info()).count();
        (ok, self.events.len() - ok - info, info)
    }

    /// Definite failures with a given error code.
    pub fn failures_with(&self, code: &str) -> usize {
        let matches = |e: &&Event| matches!(&e.outcome, Outcome::Fail { code: c, .. } if c == code);
        self.events.iter().filter(matches).count()
    }
}
