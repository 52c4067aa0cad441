//! The self-contained HTML report: one file, inline SVG plots (no script, no network), so it
//! opens anywhere and can be attached to a CI run. Plots: frame lateness per second (p50,
//! p99), load per second (active calls, frames/s), each metric's latency distribution as an
//! HDR percentile spectrum, and outcomes.

use std::fmt::Write;

use crate::metrics::{Metric, Recorder};
use crate::summary::Summary;

const W: f64 = 560.0;
const H: f64 = 220.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 28.0;
const PAD_B: f64 = 34.0;
const COLORS: [&str; 4] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];

/// A named line of (x, y) points.
struct Line<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
}

/// Renders the report.
pub fn render_html(s: &Summary, totals: &Recorder) -> String {
    let mut h = String::with_capacity(64 << 10);
    header(&mut h, s);
    verdicts(&mut h, s);
    over_time(&mut h, s);
    spectra(&mut h, totals);
    metrics_table(&mut h, s);
    h.push_str(&conversation(s));
    h.push_str(&relay(s));
    h.push_str("<h2>Outcomes</h2>");
    h.push_str(&outcomes(s));
    generator(&mut h, &s.generator);
    h.push_str("</body></html>\n");
    h
}

/// The page's head (title and style) and the run's one-line summary.
fn header(h: &mut String, s: &Summary) {
    let title = format!("dialtone load — {}", esc(&s.target));
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111;max-width:1200px}}\
         h1{{font-size:20px}}h2{{font-size:16px;margin-top:28px}}table{{border-collapse:collapse}}\
         td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.bad{{color:#b91c1c;font-weight:600}}\
         .ok{{color:#15803d;font-weight:600}}.grid{{display:flex;flex-wrap:wrap;gap:12px}}\
         svg{{background:#fafafa;border:1px solid #e5e5e5}}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>{title}</h1><p>{} mode · {} calls started, {} ok, {} failed · {:.1} s{} · seed {} · dialtone {}</p>",
        esc(&s.mode),
        s.calls.started,
        s.calls.succeeded,
        s.calls.failed,
        s.elapsed_s,
        if s.interrupted {
            " · <b>interrupted</b>"
        } else {
            ""
        },
        s.workload.seed,
        esc(&s.dialtone_version)
    );
}

/// Whether the generator kept up (and why not), then each threshold's pass or fail.
fn verdicts(h: &mut String, s: &Summary) {
    let g = &s.generator;
    if g.verdict == "ok" {
        let _ = write!(
            h,
            "<p class=ok>Generator kept up: the figures are the app's.</p>"
        );
    } else {
        let _ = write!(
            h,
            "<p class=bad>Generator verdict: {}{}</p><ul>",
            esc(&super::verdict_words(g)),
            esc(&super::cpu_figures(g))
        );
        for r in &g.reasons {
            let _ = write!(h, "<li>{}</li>", esc(r));
        }
        h.push_str("</ul>");
    }
    for t in &s.thresholds {
        let (class, word) = if t.passed {
            ("ok", "pass")
        } else {
            ("bad", "FAIL")
        };
        let _ = write!(
            h,
            "<p class={class}>threshold {word}: {} {}</p>",
            esc(&t.expr),
            esc(&t.detail)
        );
    }
}

/// The per-second charts: lateness, active calls, frames, calls started and failed.
fn over_time(h: &mut String, s: &Summary) {
    h.push_str("<h2>Over time</h2><div class=grid>");
    let t = |f: fn(&crate::summary::SeriesPoint) -> f64| -> Vec<(f64, f64)> {
        s.series.iter().map(|p| (f64::from(p.t_s), f(p))).collect()
    };
    let lateness_title = if s.mode == "call" {
        "Frame lateness per second (ms; a call's frames count when it ends)"
    } else {
        "Frame lateness per second (ms)"
    };
    h.push_str(&chart(
        lateness_title,
        &[
            Line {
                name: "p50",
                points: t(|p| p.lateness_p50_ms),
            },
            Line {
                name: "p99",
                points: t(|p| p.lateness_p99_ms),
            },
        ],
        "seconds",
        false,
    ));
    h.push_str(&chart(
        "Active calls",
        &[Line {
            name: "active",
            points: t(|p| p.active_calls as f64),
        }],
        "seconds",
        false,
    ));
    h.push_str(&chart(
        "Media frames per second",
        &[Line {
            name: "frames/s",
            points: t(|p| p.frames as f64),
        }],
        "seconds",
        false,
    ));
    h.push_str(&chart(
        "Calls started / failed per second",
        &[
            Line {
                name: "started",
                points: t(|p| p.started as f64),
            },
            Line {
                name: "failed",
                points: t(|p| p.errors as f64),
            },
        ],
        "seconds",
        false,
    ));
}

/// Each metric's HDR percentile spectrum, from the run's whole histograms.
fn spectra(h: &mut String, totals: &Recorder) {
    h.push_str("</div><h2>Latency distributions (HDR percentile spectrum)</h2><div class=grid>");
    for m in Metric::ALL {
        let hist = totals.get(*m);
        if hist.is_empty() {
            continue;
        }
        let max_nines = (hist.len() as f64).log10().clamp(1.0, 5.0);
        let points: Vec<(f64, f64)> = (0..=(max_nines * 20.0) as u32)
            .map(|i| {
                let x = f64::from(i) / 20.0;
                let q = 1.0 - 10f64.powf(-x);
                (x, hist.value_at_quantile(q) as f64 / 1000.0)
            })
            .collect();
        h.push_str(&chart(
            &format!(
                "{} ({})",
                m.name(),
                if m.is_count() { "count" } else { "ms" }
            ),
            &[Line {
                name: m.name(),
                points,
            }],
            "percentile",
            true,
        ));
    }
}

/// The metrics table: count and percentiles of each metric, with what it measures.
fn metrics_table(h: &mut String, s: &Summary) {
    h.push_str("</div><h2>Metrics</h2><table><tr><th>metric</th><th>count</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max (ms)</th><th>what</th></tr>");
    for m in Metric::ALL {
        if let Some(st) = s.metrics.get(m.name()) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td style=\"text-align:left\">{}</td></tr>",
                m.name(),
                st.count,
                st.p50_ms,
                st.p90_ms,
                st.p95_ms,
                st.p99_ms,
                st.p99_9_ms,
                st.max_ms,
                esc(m.about())
            );
        }
    }
    h.push_str("</table>");
}

/// The generator's verdict and its CPU and memory figures.
fn generator(h: &mut String, g: &crate::summary::Generator) {
    let _ = write!(
        h,
        "<h2>Generator</h2><p>{}{}</p><p>{} cores · peak CPU {} · user {} µs/frame · sys {} µs/frame · peak RSS {}</p>",
        esc(&super::verdict_words(g)),
        esc(&super::cpu_figures(g)),
        g.cores,
        opt(g.cpu_peak_pct, "%"),
        opt(g.user_us_per_frame, ""),
        opt(g.sys_us_per_frame, ""),
        g.max_rss_kib
            .map_or("–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );
}

/// Clears, split turns and talk-over as a table (call mode, when there was a conversation).
fn conversation(s: &Summary) -> String {
    let c = &s.conversation;
    if c.turns == 0 && c.clears == 0 {
        return String::new();
    }
    let calls = s.calls.finished;
    format!(
        "<h2>Conversation</h2><table><tr><th>what</th><th>count</th><th>calls with it</th></tr>\
         <tr><td>caller turns</td><td>{}</td><td>{calls}</td></tr>\
         <tr><td>app clears</td><td>{}</td><td>{} of {calls}</td></tr>\
         <tr><td>turns split by the app's VAD (re-onsets)</td><td>{} ({})</td><td>{} of {calls}</td></tr>\
         <tr><td>talk-over: app audio over the caller (ms; turns)</td><td>{:.0} ms; {}</td><td>{} of {calls}</td></tr></table>",
        c.turns,
        c.clears,
        c.calls_with_clears,
        c.split_turns,
        c.vad_splits,
        c.calls_with_split_turns,
        c.talk_over_ms,
        c.talk_over_turns,
        c.calls_with_talk_over
    )
}

/// ConversationRelay sessions as a table, when calls ran any.
fn relay(s: &Summary) -> String {
    let r = &s.relay;
    if r.is_empty() {
        return String::new();
    }
    let rows = [
        ("sessions", r.sessions),
        ("ended by the app (end)", r.ended),
        ("completed (the caller hung up)", r.completed),
        ("failed", r.failed),
        ("turns prompted", r.prompts),
        ("turns answered", r.answered),
        ("answers never finished (no last: true)", r.unfinished),
        ("tokens", r.tokens),
        ("interrupts", r.interrupts),
        (
            "interrupts the app did not stop at",
            r.interrupts_not_stopped,
        ),
        ("errors sent for app messages", r.errors_sent),
    ];
    let mut h =
        String::from("<h2>ConversationRelay</h2><table><tr><th>what</th><th>count</th></tr>");
    for (what, n) in rows {
        let _ = write!(h, "<tr><td>{what}</td><td>{n}</td></tr>");
    }
    h.push_str("</table>");
    h
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}{unit}"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar per outcome class.
fn outcomes(s: &Summary) -> String {
    let max = s.outcomes.values().copied().max().unwrap_or(1).max(1) as f64;
    let row = 24.0;
    let height = row * s.outcomes.len().max(1) as f64 + 10.0;
    let mut svg =
        format!("<svg width=\"{W}\" height=\"{height}\" role=\"img\" aria-label=\"outcomes\">");
    for (i, (k, n)) in s.outcomes.iter().enumerate() {
        let y = 6.0 + i as f64 * row;
        let w = (W - 260.0) * (*n as f64) / max;
        let color = if k == "ok" { "#16a34a" } else { "#dc2626" };
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{:.1}\" font-size=\"12\">{}</text><rect x=\"190\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{n}</text>",
            y + 12.0,
            esc(k),
            196.0 + w,
            y + 12.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A line chart with axes, ticks and a legend. `nines` labels x as percentiles
/// (x = number of nines: 1 → 90%, 2 → 99%).
fn chart(title: &str, lines: &[Line<'_>], x_label: &str, nines: bool) -> String {
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let y1 = nice(if y1 <= 0.0 { 1.0 } else { y1 * 1.05 });
    let px = |x: f64| PAD_L + (x - x0) / (x1 - x0) * (W - PAD_L - PAD_R);
    let py = |y: f64| H - PAD_B - y / y1 * (H - PAD_T - PAD_B);
    let mut svg = format!(
        "<svg width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{t}\"><text x=\"{PAD_L}\" y=\"18\" font-size=\"13\" font-weight=\"600\">{t}</text>",
        t = esc(title)
    );
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e5e5e5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            W - PAD_R,
            py(y),
            py(y),
            PAD_L - 4.0,
            py(y) + 4.0,
            fmt_num(y)
        );
    }
    let xticks: Vec<(f64, String)> = if nines {
        (0..=x1.floor() as u32)
            .map(|n| {
                let label = match n {
                    0 => "0%".to_string(),
                    _ => format!("{}%", 100.0 - 100.0 * 10f64.powi(-(n as i32))),
                };
                (f64::from(n), label)
            })
            .collect()
    } else {
        (0..=5)
            .map(|i| {
                let x = x0 + (x1 - x0) * f64::from(i) / 5.0;
                (x, fmt_num(x))
            })
            .collect()
    };
    for (x, label) in xticks {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{label}</text>",
            px(x),
            H - PAD_B + 14.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
        (PAD_L + W - PAD_R) / 2.0,
        H - 4.0,
        esc(x_label)
    );
    for (i, l) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = l
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{}\"/><text x=\"{:.1}\" y=\"18\" font-size=\"12\" fill=\"{color}\">{}</text>",
            path.join(" "),
            W - PAD_R - 70.0 * (lines.len() - i) as f64,
            esc(l.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Rounds an axis top up to 1, 2 or 5 × 10ⁿ.
fn nice(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    let m = v / p;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
