//! The workload client: users, a walker mix, many concurrent clients, and a recorded history.
//!
//! Requests go to the targets round-robin, as a load balancer without sticky sessions would
//! send them. Each add_item names its item after its request id, so the checker can tell which
//! request each item came from.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use crate::history::{Event, History, Op, Outcome};

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub token: String,
    pub user_id: String,
    pub root_id: String,
}

/// How to drive the targets.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Concurrent clients (closed loop: each waits for its answer before the next request).
    pub clients: usize,
    /// Requests in all.
    pub requests: u64,
    /// Relative weights of the ops.
    pub mix: Vec<(Op, u32)>,
    /// Send an Idempotency-Key with every request that changes the graph, and retry `Info`
    /// answers (with the same key; reads as they are) until a definite answer or `retry_for`
    /// runs out.
    pub idempotent_retries: bool,
    pub retry_for: Duration,
    /// Per-request timeout; a timeout is an `Info` outcome.
    pub timeout: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            clients: 64,
            requests: 2000,
            mix: vec![(Op::AddItem, 1), (Op::Touch, 2), (Op::CountUp, 1), (Op::ListItems, 1)],
            idempotent_retries: false,
            retry_for: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Sends requests to a set of walkerd replicas.
#[derive(Clone)]
pub struct Workload {
    targets: Arc<Vec<String>>,
    next_target: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl Workload {
    pub fn new(targets: Vec<String>) -> Workload {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        Workload { targets: Arc::new(targets), next_target: Arc::default(), http }
    }

    /// The next target, round-robin.
    pub fn target(&self) -> &str {
        let i = self.next_target.fetch_add(1, Ordering::Relaxed);
        &self.targets[i % self.targets.len()]
    }

    /// POSTs `body` to `path` on the next target; the status and body, or why there is none.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
        timeout: Duration,
    ) -> Result<(u16, Value), String> {
        let mut request = self.http.post(format!("{}{path}", self.target())).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.timeout(timeout).send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Registers and logs in `count` users named `<prefix><n>`, retrying through transient
    /// failures (a target restarting).
    pub async fn register_users(&self, prefix: &str, count: usize) -> Result<Vec<User>, String> {
        let mut users = Vec::with_capacity(count);
        for n in 0..count {
            let name = format!("{prefix}{n}");
            let credentials = json!({ "username": name, "password": "workload password" });
            let timeout = Duration::from_secs(15);
            self.until_answered(|| self.post("/user/register", None, None, &credentials, timeout))
                .await?;
            let (status, login) = self
                .until_answered(|| self.post("/user/login", None, None, &credentials, timeout))
                .await?;
            if status != 200 {
                return Err(format!("login of {name} answered {status}: {login}"));
            }
            let text = |k: &str| login["data"][k].as_str().unwrap_or_default().to_owned();
            let (token, user_id, root_id) = (text("token"), text("user_id"), text("root_id"));
            users.push(User { name, token, user_id, root_id });
        }
        Ok(users)
    }

    async fn until_answered<F, Fut>(&self, mut call: F) -> Result<(u16, Value), String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, Value), String>>,
    {
        let started = Instant::now();
        loop {
            match call().await {
                Ok((status, body)) if status < 500 => return Ok((status, body)),
                outcome if started.elapsed() > Duration::from_secs(60) => {
                    return Err(format!("no answer within 60 s: {outcome:?}"))
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Runs the workload over `users`; returns every request's history.
    pub async fn run(&self, users: &[User], config: &RunConfig) -> History {
        let started = Instant::now();
        let next_id = Arc::new(AtomicU64::new(0));
        let users = Arc::new(users.to_vec());
        let tasks: Vec<_> = (0..config.clients)
            .map(|_| {
                let (workload, config, users) = (self.clone(), config.clone(), users.clone());
                let next_id = next_id.clone();
                tokio::spawn(async move {
                    let mut events = Vec::new();
                    loop {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        if id >= config.requests {
                            break events;
                        }
                        let (user, op) = {
                            let mut rng = rand::rng();
                            (rng.random_range(0..users.len()), pick(&config.mix, &mut rng))
                        };
                        let event =
                            workload.request(id, user, &users[user], op, &config, started).await;
                        events.push(event);
                    }
                })
            })
            .collect();
        let mut history = History::default();
        for task in tasks {
            history.events.extend(task.await.expect("a workload client panicked"));
        }
        history.events.sort_by_key(|e| e.id);
        history
    }

    /// One request, retried with its key while the answer is `Info` when so configured.
    async fn request(
        &self,
        id: u64,
        user: usize,
        who: &User,
        op: Op,
        config: &RunConfig,
        started: Instant,
    ) -> Event {
        let body = match op {
            Op::AddItem => json!({ "name": format!("r{id}") }),
            _ => json!({}),
        };
        let key = (config.idempotent_retries && op != Op::ListItems).then(|| format!("k{id}"));
        let path = format!("/walker/{}", op.walker());
        let invoked = started.elapsed();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let answer =
                self.post(&path, Some(&who.token), key.as_deref(), &body, config.timeout).await;
            let outcome = match answer {
                Ok((status, body)) => Outcome::from_answer(status, &body),
                Err(reason) => Outcome::Info(reason),
            };
            // Keyed requests are safe to retry, and so are reads.
            let retry = (key.is_some() || op == Op::ListItems) && outcome.is_info();
            if !retry || started.elapsed() > invoked + config.retry_for {
                break outcome;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Event { id, user, op, key, invoked, completed: started.elapsed(), attempts, outcome }
    }
}

fn pick(mix: &[(Op, u32)], rng: &mut impl Rng) -> Op {
    let total: u32 = mix.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (op, weight) in mix {
        if roll < *weight {
            return *op;
        }
        roll -= weight;
    }
    mix[0].0
}
