//! walkerd-load: measures a walkerd deployment and checks that it lost nothing.
//!
//! It registers users, drives a weighted walker mix against one or more base URLs
//! (round-robin, like a balancer without sticky sessions), then reads every user's graph back
//! and checks it against what each client was told ([`walkerd_check`]). The same run yields the
//! figures users want from a load tool: throughput, latency percentiles per walker from HDR
//! histograms ([`report`]), status codes, and the servers' own conflict, replay and database
//! command counts read from `/metrics` ([`metrics`]).
//!
//! Requests are paced closed-loop (a number of clients) or open-loop (a rate, with latency
//! measured from when each request was due, so a stall is not hidden by the client waiting for
//! it). The binary shows progress while it runs ([`progress`]), prints the report, and can write
//! it as JSON and as an SVG plot over time ([`plot`]). It exits non-zero when the checker finds
//! a violation, so docker-compose and CI can use a load run as a test.

pub mod metrics;
pub mod mix;
pub mod plot;
pub mod progress;
pub mod report;
