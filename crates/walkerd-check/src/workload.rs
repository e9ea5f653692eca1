//! The workload client: users, a walker mix, many concurrent clients, and a recorded history.
//!
//! Requests go to the targets round-robin, as a load balancer without sticky sessions would
//! send them. Each add_item names its item after its request id, so the checker can tell which
//! request each item came from.
//!
//! Two ways to pace requests:
//!
//! - *closed loop* (the default): `clients` tasks, each sending its next request when the last
//!   one is answered. Throughput adapts to the server, so a stall shows as fewer requests;
//! - *open loop* (`rate` set): requests are due at a fixed rate whatever the answers, and each
//!   request's latency is measured from the time it was due, not from when it was sent. A
//!   server that stalls therefore shows the stall in every request that queued behind it, which
//!   a closed loop hides (coordinated omission). `clients` then bounds requests in flight.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

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
    /// Concurrent clients (closed loop: each waits for its answer before the next request);
    /// with `rate`, the most requests in flight at once.
    pub clients: usize,
    /// Requests in all (the most, when `duration` ends the run first).
    pub requests: u64,
    /// Open loop: requests due per second, latency measured from when each was due.
    pub rate: Option<f64>,
    /// Stop starting requests after this long.
    pub duration: Option<Duration>,
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
            rate: None,
            duration: None,
            mix: vec![(Op::AddItem, 1), (Op::Touch, 2), (Op::CountUp, 1), (Op::ListItems, 1)],
            idempotent_retries: false,
            retry_for: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Counts that a run keeps up to date while it goes, for progress displays.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests answered (or given up on).
    pub completed: AtomicU64,
    /// Of those, the ones whose outcome was not `Ok`.
    pub not_ok: AtomicU64,
}

impl Live {
    fn record(&self, event: &Event) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        if !event.outcome.is_ok() {
            self.not_ok.fetch_add(1, Ordering::Relaxed);
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

    /// The targets, in round-robin order.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// GETs `url` and returns the body as text, for scraping `/metrics`.
    pub async fn get_text(&self, url: &str) -> Result<String, String> {
        let response = self.http.get(url).timeout(Duration::from_secs(10)).send().await;
        let response = response.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        response.text().await.map_err(|e| e.to_string())
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
        self.run_live(users, config, &Arc::default()).await
    }

    /// [`Workload::run`], counting answers into `live` as they come.
    pub async fn run_live(&self, users: &[User], config: &RunConfig, live: &Arc<Live>) -> History {
        let users = Arc::new(users.to_vec());
        let mut events = match config.rate {
            None => self.closed_loop(users, config, live).await,
            Some(rate) => self.open_loop(users, config, rate, live).await,
        };
        events.sort_by_key(|e| e.id);
        History { events }
    }

    /// `clients` tasks, each sending its next request when the last is answered.
    async fn closed_loop(
        &self,
        users: Arc<Vec<User>>,
        config: &RunConfig,
        live: &Arc<Live>,
    ) -> Vec<Event> {
        let started = Instant::now();
        let next_id = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..config.clients {
            let (workload, config, users) = (self.clone(), config.clone(), users.clone());
            let (next_id, live) = (next_id.clone(), live.clone());
            tasks.spawn(async move {
                let mut events = Vec::new();
                loop {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    let out_of_time = config.duration.is_some_and(|d| started.elapsed() >= d);
                    if id >= config.requests || out_of_time {
                        break events;
                    }
                    let invoked = started.elapsed();
                    let event = workload.random_request(id, &users, &config, started, invoked);
                    let event = event.await;
                    live.record(&event);
                    events.push(event);
                }
            });
        }
        let mut events = Vec::new();
        while let Some(done) = tasks.join_next().await {
            events.extend(done.expect("a workload client panicked"));
        }
        events
    }

    /// Requests due every `1 / rate` seconds, at most `clients` in flight; each one's latency
    /// counts from when it was due, so time spent waiting for a free slot is counted too.
    async fn open_loop(
        &self,
        users: Arc<Vec<User>>,
        config: &RunConfig,
        rate: f64,
        live: &Arc<Live>,
    ) -> Vec<Event> {
        let started = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
        let slots = Arc::new(Semaphore::new(config.clients.max(1)));
        let mut tasks = JoinSet::new();
        let mut events = Vec::new();
        for id in 0..config.requests {
            let due = interval.mul_f64(id as f64);
            if config.duration.is_some_and(|d| due >= d) {
                break;
            }
            tokio::time::sleep_until((started + due).into()).await;
            let slot = slots.clone().acquire_owned().await.expect("the semaphore stays open");
            let (workload, config, users) = (self.clone(), config.clone(), users.clone());
            let live = live.clone();
            tasks.spawn(async move {
                let event = workload.random_request(id, &users, &config, started, due).await;
                live.record(&event);
                drop(slot);
                event
            });
            // Collect finished requests as we go, so a long run holds no finished tasks.
            while let Some(done) = tasks.try_join_next() {
                events.push(done.expect("a workload request panicked"));
            }
        }
        while let Some(done) = tasks.join_next().await {
            events.push(done.expect("a workload request panicked"));
        }
        events
    }

    /// A request of a random op for a random user.
    async fn random_request(
        &self,
        id: u64,
        users: &[User],
        config: &RunConfig,
        started: Instant,
        invoked: Duration,
    ) -> Event {
        let (user, op) = {
            let mut rng = rand::rng();
            (rng.random_range(0..users.len()), pick(&config.mix, &mut rng))
        };
        self.request(id, user, &users[user], op, config, started, invoked).await
    }

    /// One request, retried with its key while the answer is `Info` when so configured.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        id: u64,
        user: usize,
        who: &User,
        op: Op,
        config: &RunConfig,
        started: Instant,
        invoked: Duration,
    ) -> Event {
        let body = match op {
            Op::AddItem => json!({ "name": format!("r{id}") }),
            _ => json!({}),
        };
        let key = (config.idempotent_retries && op != Op::ListItems).then(|| format!("k{id}"));
        let path = format!("/walker/{}", op.walker());
        let mut attempts = 0;
        let (status, outcome) = loop {
            attempts += 1;
            let answer =
                self.post(&path, Some(&who.token), key.as_deref(), &body, config.timeout).await;
            let (status, outcome) = match answer {
                Ok((status, body)) => (Some(status), Outcome::from_answer(status, &body)),
                Err(reason) => (None, Outcome::Info(reason)),
            };
            // Keyed requests are safe to retry, and so are reads.
            let retry = (key.is_some() || op == Op::ListItems) && outcome.is_info();
            if !retry || started.elapsed() > invoked + config.retry_for {
                break (status, outcome);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let completed = started.elapsed();
        Event { id, user, op, key, invoked, completed, attempts, status, outcome }
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
