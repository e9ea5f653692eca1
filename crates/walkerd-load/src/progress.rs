//! Progress while a run goes: a bar with live req/s and errors on a terminal, a plain line every
//! few seconds otherwise (compose logs, CI), both on stderr so stdout keeps only the report.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;
use walkerd_check::Live;

/// How long a run is: a request count, a duration, or the first of both.
#[derive(Debug, Clone, Copy)]
pub struct Length {
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
}

/// A running progress display; [`Progress::finish`] stops it.
pub struct Progress {
    task: JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts showing `live` on stderr.
    pub fn start(live: Arc<Live>, length: Length) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| bar(length));
        let tick = if bar.is_some() { Duration::from_millis(250) } else { Duration::from_secs(5) };
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut last = (Instant::now(), 0);
            loop {
                tokio::time::sleep(tick).await;
                let (done, errors) = counts(&live);
                let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
                last = (Instant::now(), done);
                let Some(bar) = &shown else {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "walkerd-load: {secs:.0} s, {done} done, {rate:.0} req/s, {errors} not ok"
                    );
                    continue;
                };
                // The bar counts requests when only a count bounds the run, else seconds.
                match length.duration {
                    None => bar.set_position(done),
                    Some(_) => bar.set_position(started.elapsed().as_secs()),
                }
                bar.set_message(format!("{done} done, {rate:.0} req/s, {errors} not ok"));
            }
        });
        Progress { task, bar }
    }

    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn counts(live: &Live) -> (u64, u64) {
    (live.completed.load(Ordering::Relaxed), live.not_ok.load(Ordering::Relaxed))
}

/// A bar over requests when only a count bounds the run, otherwise over seconds.
fn bar(length: Length) -> ProgressBar {
    let (total, unit) = match (length.requests, length.duration) {
        (Some(requests), None) => (requests, "req"),
        (_, Some(duration)) => (duration.as_secs().max(1), "s"),
        (None, None) => (0, "req"),
    };
    let template = format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}");
    let style = ProgressStyle::with_template(&template).expect("a valid template");
    ProgressBar::new(total).with_style(style.progress_chars("=> "))
}
