//! The run over time as an SVG: latency percentiles above, throughput below, one point a second.
//!
//! Written by hand rather than with a plotting crate: two panels of polylines need a few dozen
//! lines of SVG, and the file opens in any browser.

use std::fmt::Write as _;

use crate::report::{Report, Second};

const WIDTH: f64 = 900.0;
const PANEL: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 60.0;

/// One line of a panel: its name, colour, and value per second.
struct Series<'a> {
    name: &'a str,
    colour: &'a str,
    value: fn(&Second) -> f64,
}

/// The SVG document for `report`.
pub fn svg(report: &Report) -> String {
    let height = TOP + 2.0 * PANEL + GAP + 50.0;
    let mut out = String::new();
    let font = r#"font-family="sans-serif" font-size="12""#;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" {font}>"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "walkerd-load: {}, {} requests, {:.0} req/s",
        report.pacing, report.requests, report.throughput
    );
    let _ = writeln!(out, r#"<text x="{LEFT}" y="20" font-size="14">{}</text>"#, escape(&title));

    let latency = [
        Series { name: "p50", colour: "#1f77b4", value: |s| s.p50_ms },
        Series { name: "p90", colour: "#ff7f0e", value: |s| s.p90_ms },
        Series { name: "p99", colour: "#d62728", value: |s| s.p99_ms },
    ];
    panel(&mut out, &report.timeline, TOP, "latency (ms)", &latency);
    let throughput = [
        Series { name: "answers/s", colour: "#2ca02c", value: |s| s.completed as f64 },
        Series { name: "not ok/s", colour: "#9467bd", value: |s| s.not_ok as f64 },
    ];
    panel(&mut out, &report.timeline, TOP + PANEL + GAP, "throughput (1/s)", &throughput);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since start</text>"#,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        height - 10.0
    );
    out.push_str("</svg>\n");
    out
}

/// Axes, grid, labels and one polyline per series, in the band starting at `top`.
fn panel(out: &mut String, seconds: &[Second], top: f64, label: &str, series: &[Series]) {
    let plot_width = WIDTH - LEFT - RIGHT;
    let max =
        series.iter().flat_map(|s| seconds.iter().map(s.value)).fold(0.0_f64, f64::max).max(1e-9);
    let top_value = nice_ceiling(max);
    let last = seconds.len().saturating_sub(1).max(1) as f64;
    let x = |i: usize| LEFT + plot_width * i as f64 / last;
    let y = |v: f64| top + PANEL - PANEL * (v / top_value).min(1.0);

    let _ = writeln!(out, r#"<text x="{LEFT}" y="{}">{}</text>"#, top - 8.0, escape(label));
    for step in 0..=4 {
        let value = top_value * f64::from(step) / 4.0;
        let (right, at, label_x) = (LEFT + plot_width, y(value), LEFT - 6.0);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{right}" y1="{at}" y2="{at}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{label_x}" y="{}" text-anchor="end">{}</text>"#,
            at + 4.0,
            short(value)
        );
    }
    for i in tick_seconds(seconds.len()) {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{i}</text>"#,
            x(i),
            top + PANEL + 16.0
        );
    }
    for (n, s) in series.iter().enumerate() {
        let points: Vec<String> = seconds
            .iter()
            .enumerate()
            .map(|(i, second)| format!("{:.1},{:.1}", x(i), y((s.value)(second))))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            s.colour,
            points.join(" ")
        );
        let legend_x = LEFT + 10.0 + 90.0 * n as f64;
        let (colour, name) = (s.colour, escape(s.name));
        let _ = writeln!(
            out,
            r#"<rect x="{legend_x}" y="{}" width="12" height="3" fill="{colour}"/>"#,
            top + 8.0
        );
        let _ = writeln!(out, r#"<text x="{}" y="{}">{name}</text>"#, legend_x + 16.0, top + 13.0);
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|v| *v >= value).unwrap_or(value)
}

/// About ten evenly spaced seconds to label.
fn tick_seconds(count: usize) -> impl Iterator<Item = usize> {
    let step = (count / 10).max(1);
    (0..count).step_by(step)
}

fn short(value: f64) -> String {
    if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_numbers_at_or_above_the_maximum() {
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
    }
}
