//! The checker: the final graph of every user against what the clients were told.
//!
//! Over HTTP, per user:
//! - every add_item answered `Ok` left exactly one item named after it; every one answered
//!   `Fail` left none; every `Info` one left at most one; no item comes from nowhere;
//! - there is at most one Counter, and one exists if any touch or count_up was `Ok`; its value
//!   lies between the number of `Ok` touch/count_up and that plus the number of `Info` ones.
//!
//! From the database, when given one:
//! - no edge leaves or points at a node that does not exist;
//! - every node is reachable from its root, except items of `Info` add_items and counters of
//!   users with `Info` touches (a request cut off mid-commit may leave those unlinked);
//! - versions agree with history: items and roots were written once (`_v` = 1), and the
//!   counter's `_v` equals its value, since every committed touch or count_up bumps both by one
//!   (a lost or doubled write would set them apart).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use serde_json::json;

use crate::history::{History, Op, Outcome};
use crate::workload::{User, Workload};

/// One broken promise, with the requests it involves.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub user: String,
    pub what: String,
    pub requests: Vec<u64>,
}

impl std::fmt::Display for Violation {
    /// The user, what broke, and the first ten requests involved.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<u64> = self.requests.iter().take(10).copied().collect();
        let more = self.requests.len().saturating_sub(shown.len());
        write!(f, "{}: {} (requests {shown:?}", self.user, self.what)?;
        if more > 0 {
            write!(f, " and {more} more")?;
        }
        write!(f, ")")
    }
}

/// Where to read the database from, for the checks that need it.
#[derive(Debug, Clone)]
pub struct Database {
    pub uri: String,
    pub name: String,
}

/// Checks every user of `history`; returns all violations found (none means the history is
/// consistent).
pub async fn check(
    workload: &Workload,
    users: &[User],
    history: &History,
    database: Option<&Database>,
) -> Result<Vec<Violation>, String> {
    let db = match database {
        Some(d) => {
            let client = mongodb::Client::with_uri_str(&d.uri).await.map_err(|e| e.to_string())?;
            Some(client.database(&d.name))
        }
        None => None,
    };
    let mut violations = Vec::new();
    for (index, user) in users.iter().enumerate() {
        let seen = read_user(workload, user).await?;
        violations.extend(check_items(user, index, history, &seen.items));
        violations.extend(check_counter(user, index, history, seen.counters, seen.value));
        if let Some(db) = &db {
            let found =
                check_database(db, user, index, history).await.map_err(|e| e.to_string())?;
            violations.extend(found);
        }
    }
    Ok(violations)
}

/// What HTTP shows of one user's graph.
struct Seen {
    items: Vec<String>,
    counters: u64,
    value: i64,
}

async fn read_user(workload: &Workload, user: &User) -> Result<Seen, String> {
    let ask = |walker: &'static str| async move {
        for _ in 0..100 {
            let path = format!("/walker/{walker}");
            let timeout = Duration::from_secs(15);
            if let Ok((200, body)) =
                workload.post(&path, Some(&user.token), None, &json!({}), timeout).await
            {
                return Ok(body["data"]["reports"][0].clone());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{walker} for {} never answered 200", user.name))
    };
    let listed = ask("list_items").await?;
    let counter = ask("read_counter").await?;
    let items = listed["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    Ok(Seen {
        items,
        counters: counter["counters"].as_u64().unwrap_or(0),
        value: counter["value"].as_i64().unwrap_or(0),
    })
}

fn check_items(user: &User, index: usize, history: &History, items: &[String]) -> Vec<Violation> {
    let mut found: HashMap<&str, usize> = HashMap::new();
    for name in items {
        *found.entry(name.as_str()).or_default() += 1;
    }
    let mut violations = Vec::new();
    let mut flag = |what: String, requests: Vec<u64>| {
        violations.push(Violation { user: user.name.clone(), what, requests });
    };
    let mut expected = HashSet::new();
    for event in history.of_user(index).filter(|e| e.op == Op::AddItem) {
        let name = event.item_name();
        let copies = found.get(name.as_str()).copied().unwrap_or(0);
        match (&event.outcome, copies) {
            (Outcome::Ok(_), 1) | (Outcome::Fail { .. }, 0) | (Outcome::Info(_), 0 | 1) => {}
            (Outcome::Ok(_), 0) => {
                flag(format!("acknowledged item {name} is missing"), vec![event.id])
            }
            (Outcome::Fail { .. }, _) => {
                flag(format!("refused item {name} was applied"), vec![event.id])
            }
            (_, n) => flag(format!("item {name} was applied {n} times"), vec![event.id]),
        }
        expected.insert(name);
    }
    for name in found.keys().filter(|n| !expected.contains(**n)) {
        flag(format!("item {name} comes from no request"), Vec::new());
    }
    violations
}

fn check_counter(
    user: &User,
    index: usize,
    history: &History,
    counters: u64,
    value: i64,
) -> Vec<Violation> {
    let counting: Vec<_> = history.of_user(index).filter(|e| e.op.counts()).collect();
    let ok: Vec<u64> = counting.iter().filter(|e| e.outcome.is_ok()).map(|e| e.id).collect();
    let info: Vec<u64> = counting.iter().filter(|e| e.outcome.is_info()).map(|e| e.id).collect();
    let mut violations = Vec::new();
    let mut flag = |what: String, requests: Vec<u64>| {
        violations.push(Violation { user: user.name.clone(), what, requests });
    };
    if counters > 1 {
        flag(format!("{counters} counters exist"), Vec::new());
    }
    if !ok.is_empty() && counters == 0 {
        flag("no counter, though touches were acknowledged".into(), ok.clone());
    }
    let (low, high) = (ok.len() as i64, (ok.len() + info.len()) as i64);
    if value < low {
        flag(format!("counter is {value}, below the {low} acknowledged increments"), ok);
    } else if value > high {
        let requests = ok.into_iter().chain(info).collect();
        flag(format!("counter is {value}, above the {high} possible increments"), requests);
    }
    violations
}

async fn check_database(
    db: &mongodb::Database,
    user: &User,
    index: usize,
    history: &History,
) -> mongodb::error::Result<Vec<Violation>> {
    let nodes: Vec<Document> = db
        .collection::<Document>("nodes")
        .find(doc! { "root": &user.root_id })
        .await?
        .try_collect()
        .await?;
    let buckets: Vec<Document> = db
        .collection::<Document>("edges")
        .find(doc! { "root": &user.root_id })
        .await?
        .try_collect()
        .await?;
    let mut violations = Vec::new();
    let mut flag = |what: String| {
        violations.push(Violation { user: user.name.clone(), what, requests: Vec::new() });
    };

    let live: HashMap<&str, &Document> =
        nodes.iter().filter_map(|n| Some((n.get_str("_id").ok()?, n))).collect();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for bucket in &buckets {
        let source = bucket.get_str("node").unwrap_or_default();
        if !live.contains_key(source) {
            flag(format!("an edge bucket leaves the missing node {source}"));
        }
        for entry in bucket.get_array("entries").map(|a| a.as_slice()).unwrap_or_default() {
            let target = entry.as_document().and_then(|e| e.get_str("t").ok()).unwrap_or_default();
            if !live.contains_key(target) {
                flag(format!("an edge from {source} points at the missing node {target}"));
            }
            children.entry(source).or_default().push(target);
        }
    }

    let mut reachable = HashSet::from([user.root_id.as_str()]);
    let mut queue = VecDeque::from([user.root_id.as_str()]);
    while let Some(node) = queue.pop_front() {
        for child in children.get(node).into_iter().flatten() {
            if reachable.insert(child) {
                queue.push_back(child);
            }
        }
    }
    let info_items: HashSet<String> = history
        .of_user(index)
        .filter(|e| e.op == Op::AddItem && e.outcome.is_info())
        .map(|e| e.item_name())
        .collect();
    let info_counts = history.of_user(index).any(|e| e.op.counts() && e.outcome.is_info());

    for (id, node) in &live {
        let kind = node.get_str("kind").unwrap_or_default();
        let fields = node.get_document("fields").ok();
        let version = node.get_i64("_v").unwrap_or(-1);
        if node.contains_key("_deleted") {
            flag(format!("node {id} is a tombstone, though nothing deletes"));
        }
        if !reachable.contains(id) {
            let name = fields.and_then(|f| f.get_str("name").ok()).unwrap_or_default();
            let excused =
                (kind == "Item" && info_items.contains(name)) || (kind == "Counter" && info_counts);
            if !excused {
                flag(format!("{kind} node {id} is unreachable from its root"));
            }
            continue;
        }
        let value = match fields.and_then(|f| f.get("value")) {
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Int32(v)) => i64::from(*v),
            _ => 0,
        };
        match kind {
            "Counter" if version != value => {
                flag(format!("counter {id} has _v {version} but value {value}"));
            }
            "Item" | "Root" if version != 1 => {
                flag(format!("{kind} {id} was written {version} times, not once"));
            }
            _ => {}
        }
    }
    Ok(violations)
}

/// A one-paragraph summary of a history and its violations, for test failures and reports.
pub fn summary(history: &History, violations: &[Violation]) -> String {
    let (ok, fail, info) = history.tally();
    let mut text = format!(
        "{} requests: {ok} ok, {fail} failed, {info} unknown; {} violations",
        history.events.len(),
        violations.len()
    );
    for v in violations.iter().take(20) {
        text.push_str(&format!("\n  {v}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use serde_json::Value;

    fn event(id: u64, op: Op, outcome: Outcome) -> Event {
        let zero = Duration::ZERO;
        let (key, invoked, completed, attempts, status) = (None, zero, zero, 1, None);
        Event { id, user: 0, op, key, invoked, completed, attempts, status, outcome }
    }

    fn user() -> User {
        User {
            name: "u".into(),
            token: String::new(),
            user_id: String::new(),
            root_id: String::new(),
        }
    }

    fn ok() -> Outcome {
        Outcome::Ok(Value::Null)
    }

    #[test]
    fn a_lost_acknowledged_item_and_a_doubled_one_are_violations() {
        let history = History {
            events: vec![
                event(1, Op::AddItem, ok()),
                event(2, Op::AddItem, Outcome::Info("timeout".into())),
                event(3, Op::AddItem, Outcome::Fail { status: 409, code: "WRITE_CONFLICT".into() }),
            ],
        };
        let items = vec!["r2".to_owned(), "r2".to_owned(), "r3".to_owned(), "r9".to_owned()];
        let found = check_items(&user(), 0, &history, &items);
        let whats: Vec<&str> = found.iter().map(|v| v.what.as_str()).collect();
        assert_eq!(found.len(), 4, "{whats:?}");
        assert!(whats.iter().any(|w| w.contains("r1 is missing")));
        assert!(whats.iter().any(|w| w.contains("r2 was applied 2 times")));
        assert!(whats.iter().any(|w| w.contains("r3 was applied")));
        assert!(whats.iter().any(|w| w.contains("r9 comes from no request")));
    }

    #[test]
    fn the_counter_must_lie_between_acknowledged_and_possible_increments() {
        let history = History {
            events: vec![
                event(1, Op::Touch, ok()),
                event(2, Op::CountUp, ok()),
                event(3, Op::Touch, Outcome::Info("reset".into())),
            ],
        };
        assert!(check_counter(&user(), 0, &history, 1, 2).is_empty());
        assert!(check_counter(&user(), 0, &history, 1, 3).is_empty());
        assert_eq!(check_counter(&user(), 0, &history, 1, 1).len(), 1, "a lost increment");
        assert_eq!(check_counter(&user(), 0, &history, 1, 4).len(), 1, "a doubled increment");
        assert_eq!(check_counter(&user(), 0, &history, 2, 2).len(), 1, "two counters");
    }
}
