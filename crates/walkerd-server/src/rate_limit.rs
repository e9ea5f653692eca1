//! Rate limits of the login and register routes, and who the client is.
//!
//! Password guessing is slowed twice: per client address (every login and register request) and
//! per username (failed logins and every registration attempt, so a user who types the right
//! password is never held back by someone else's guesses at a slower pace). Each key has a token
//! bucket refilled at the limit per minute, holding at most one minute's worth, so short bursts
//! of a load test pass and a steady stream above the limit gets 429 with `Retry-After`.
//!
//! The buckets live in each replica's memory: with N replicas behind a load balancer the
//! effective limit is up to N times the setting. That is the price of replicas that share no
//! state; argon2's cost per guess stays the real brake.
//!
//! The client address is the TCP peer, unless the peer is one of `WALKERD_TRUSTED_PROXIES`: then
//! it is the right-most `X-Forwarded-For` entry that is not a trusted proxy. A client can put
//! anything in that header, so it is believed only from proxies we know append to it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use ipnet::IpNet;

/// Beyond this many tracked keys, full buckets (idle clients) are dropped.
const MAX_KEYS: usize = 100_000;

/// Token buckets, one per key, all with the same rate.
pub struct RateLimiter {
    per_minute: Option<u32>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A limiter of `per_minute` requests per key; `None` lets everything through.
    pub fn new(per_minute: Option<u32>) -> RateLimiter {
        RateLimiter { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.update(key, true)
    }

    /// Says whether `key` has a token left, without taking it.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.update(key, false)
    }

    fn update(&self, key: &str, take: bool) -> Result<(), Duration> {
        let Some(per_minute) = self.per_minute else { return Ok(()) };
        let capacity = f64::from(per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();

        let mut buckets = self.buckets.lock().expect("the rate limiter lock is never poisoned");
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| refilled(*b, now, per_second, capacity) < capacity);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let bucket =
            buckets.entry(key.to_owned()).or_insert(Bucket { tokens: capacity, updated: now });
        bucket.tokens = refilled(*bucket, now, per_second, capacity);
        bucket.updated = now;
        if bucket.tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second));
        }
        if take {
            bucket.tokens -= 1.0;
        }
        Ok(())
    }
}

fn refilled(bucket: Bucket, now: Instant, per_second: f64, capacity: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(capacity)
}

/// The client's address, as described in the module documentation.
pub fn client_address(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        // An unparsable entry ends the chain we can believe.
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_bucket_lets_its_capacity_through_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(Some(3));
        for _ in 0..3 {
            limiter.take("a").unwrap();
        }
        let wait = limiter.take("a").unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        limiter.take("b").expect("other keys have their own bucket");
    }

    #[test]
    fn checking_takes_nothing() {
        let limiter = RateLimiter::new(Some(1));
        limiter.check("a").unwrap();
        limiter.check("a").unwrap();
        limiter.take("a").unwrap();
        assert!(limiter.check("a").is_err());
    }

    #[test]
    fn no_limit_lets_everything_through() {
        let limiter = RateLimiter::new(None);
        for _ in 0..10_000 {
            limiter.take("a").unwrap();
        }
    }

    fn request(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(value) = forwarded {
            req = req.insert_header(("x-forwarded-for", value));
        }
        req.to_http_request()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = request("203.0.113.9:4000", Some("198.51.100.1"));
        assert_eq!(client_address(&spoofed, &trusted).unwrap().to_string(), "203.0.113.9");

        let proxied = request("10.1.2.3:4000", Some("198.51.100.1, 192.0.2.7, 10.0.0.5"));
        assert_eq!(client_address(&proxied, &trusted).unwrap().to_string(), "192.0.2.7");

        let untrusted_config = request("10.1.2.3:4000", Some("198.51.100.1"));
        assert_eq!(client_address(&untrusted_config, &[]).unwrap().to_string(), "10.1.2.3");
    }
}
