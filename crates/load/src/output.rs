//! Results out: the terminal summary, the `--out DIR` files (`summary.json`,
//! `histograms.hlog`, `report.html`) and `report merge`, which adds shard outputs up
//! (histograms merged from their `.hlog`s, never averaged).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::LoadError;
use crate::metrics::{Metric, Recorder, Stats, round3};
use crate::summary::{EXAMPLES_PER_OUTCOME, SeriesPoint, Summary};
use crate::tally::{CallRecords, read_hlog};
use crate::verdict::Cause;

mod html;

pub use html::render_html;

/// File names inside an output directory.
pub const SUMMARY_FILE: &str = "summary.json";
/// The interval log.
pub const HLOG_FILE: &str = "histograms.hlog";
/// Every call's outcome class, one JSON line per call (`--out DIR`).
pub const CALLS_FILE: &str = "calls.jsonl";
/// The HTML report.
pub const HTML_FILE: &str = "report.html";

/// Output formats of the terminal report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Human-readable summary.
    Text,
    /// `summary.json` on stdout.
    Json,
    /// Nothing.
    Quiet,
}

/// Prints the report in `format`.
pub fn print_report(out: &mut dyn Write, s: &Summary, format: OutputFormat) -> std::io::Result<()> {
    match format {
        OutputFormat::Quiet => Ok(()),
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, s)?;
            writeln!(out)
        }
        OutputFormat::Text => print_text(out, s),
    }
}

fn print_text(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    let c = &s.calls;
    writeln!(out)?;
    writeln!(
        out,
        "dialtone load ({} mode) → {}{}",
        s.mode,
        s.target,
        if s.interrupted { "  [interrupted]" } else { "" }
    )?;
    if s.shards.len() > 1 || s.shards.first().is_some_and(|sh| sh.count > 1) {
        let list: Vec<String> = s
            .shards
            .iter()
            .map(|sh| format!("{}/{}", sh.index, sh.count))
            .collect();
        writeln!(out, "  shards      {}", list.join(" "))?;
    }
    writeln!(
        out,
        "  calls       {} started, {} finished: {} ok, {} failed{}   in {:.1} s",
        c.started,
        c.finished,
        c.succeeded,
        c.failed,
        if c.not_started > 0 {
            format!(", {} not started", c.not_started)
        } else {
            String::new()
        },
        s.elapsed_s
    )?;
    if s.frames.sent > 0 {
        write!(out, "  frames      {} media sent", s.frames.sent)?;
        if s.frames.app_media_received > 0 {
            write!(out, ", {} app media received", s.frames.app_media_received)?;
        }
        if s.frames.backpressured > 0 {
            write!(out, ", {} waited on a full socket", s.frames.backpressured)?;
        }
        writeln!(out)?;
    }
    writeln!(out, "  outcomes")?;
    for (k, n) in &s.outcomes {
        writeln!(out, "    {k:<28} {n}")?;
        if *k == dialtone_call::Outcome::Ok.text() && c.rest_hangups > 0 {
            writeln!(
                out,
                "      of which {} hung up by the app through the REST API",
                c.rest_hangups
            )?;
        }
        if let Some(e) = s.examples.get(k).and_then(|l| l.first()) {
            let error: String = e.error.chars().take(100).collect();
            writeln!(out, "      e.g. {} {error}", e.call_sid)?;
        }
    }
    if !s.faults.is_empty() {
        writeln!(out, "  faults injected")?;
        for (k, n) in &s.faults {
            writeln!(out, "    {k:<28} {n}")?;
        }
    }
    writeln!(
        out,
        "  {:<18} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "metric (ms)", "count", "p50", "p90", "p95", "p99", "p99.9", "max"
    )?;
    for m in Metric::ALL.iter().filter(|m| !m.is_count()) {
        if let Some(st) = s.metrics.get(m.name()) {
            writeln!(
                out,
                "  {:<18} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                m.name(),
                st.count,
                st.p50_ms,
                st.p90_ms,
                st.p95_ms,
                st.p99_ms,
                st.p99_9_ms,
                st.max_ms
            )?;
        }
    }
    print_conversation(out, s)?;
    print_relay(out, s)?;
    print_dials(out, s)?;
    let g = &s.generator;
    let cpu = match (g.cpu_user_s, g.cpu_sys_s) {
        (Some(u), Some(sy)) => format!(
            "cpu user {u:.2} s + sys {sy:.2} s{}",
            match (g.user_us_per_frame, g.sys_us_per_frame) {
                (Some(a), Some(b)) => format!(" ({a:.2} + {b:.2} µs/frame)"),
                _ => String::new(),
            }
        ),
        _ => String::new(),
    };
    writeln!(
        out,
        "  generator   {}{}  {}{}",
        verdict_words(g),
        cpu_figures(g),
        cpu,
        g.max_rss_kib
            .map(|k| format!(", peak RSS {:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_default()
    )?;
    for r in &g.reasons {
        writeln!(out, "    ! {r}")?;
    }
    for t in &s.thresholds {
        if t.passed {
            writeln!(out, "  threshold   ok      {}", t.expr)?;
        } else {
            writeln!(out, "  threshold   FAILED  {}: {}", t.expr, t.detail)?;
        }
    }
    Ok(())
}

/// The verdict in words: `ok`, `bottleneck (dialtone saturated)`, `machine busy`, …
pub(crate) fn verdict_words(g: &crate::summary::Generator) -> String {
    let cause = Cause::from_names(&g.verdict, &g.cause);
    match cause {
        Cause::None => "ok".into(),
        Cause::DialtoneSaturated => "bottleneck (dialtone saturated)".into(),
        Cause::DialtoneLate => "bottleneck (dialtone late)".into(),
        Cause::MachineBusy => "machine busy (not dialtone)".into(),
        Cause::AppBackpressure => "app backpressure (the app read slowly)".into(),
    }
}

/// dialtone's and the machine's CPU, for the verdict line.
pub(crate) fn cpu_figures(g: &crate::summary::Generator) -> String {
    let mut parts = Vec::new();
    if let Some(c) = g.cpu_mean_pct {
        parts.push(format!(
            "dialtone cpu {c:.1}% of one core (mean, {} cores)",
            g.cores
        ));
    }
    if let Some(m) = g.machine_cpu_mean_pct {
        parts.push(format!(
            "machine {m:.1}% busy (mean{}{})",
            g.machine_cpu_peak_pct
                .map(|p| format!(", peak {p:.1}%"))
                .unwrap_or_default(),
            g.machine_cores
                .map(|c| format!(", {c} cores"))
                .unwrap_or_default()
        ));
    }
    if let Some(l) = g.load_avg_peak {
        parts.push(format!("load avg ≤ {l:.2}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

/// `<Dial>`s, when calls dialed: transfers by outcome and conferences joined.
fn print_dials(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    let d = &s.dials;
    if d.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "  dials               {} <Dial>s: {} completed ({} to hosted apps), {} busy, {} no-answer, \
         {} failed, {} canceled; {} conferences joined",
        d.dials, d.completed, d.to_apps, d.busy, d.no_answer, d.failed, d.canceled, d.conferences
    )
}

/// ConversationRelay sessions, when calls ran any: how they ended, turns, tokens,
/// interrupts, errors (their latencies are in the table above).
fn print_relay(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    let r = &s.relay;
    if r.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "  conversation relay  {} sessions: {} ended by the app, {} completed, {} failed",
        r.sessions, r.ended, r.completed, r.failed
    )?;
    writeln!(
        out,
        "    turns                      {} prompted, {} answered, {} never finished (no last: true)",
        r.prompts, r.answered, r.unfinished
    )?;
    let per_turn = s
        .metrics
        .get(Metric::RelayTokens.name())
        .map(|t| {
            format!(
                " (per answered turn: p50 {:.0}, p99 {:.0}, max {:.0})",
                t.p50_ms, t.p99_ms, t.max_ms
            )
        })
        .unwrap_or_default();
    writeln!(out, "    tokens                     {}{per_turn}", r.tokens)?;
    writeln!(
        out,
        "    interrupts                 {} ({} not stopped: tokens of the cut answer kept coming)",
        r.interrupts, r.interrupts_not_stopped
    )?;
    writeln!(
        out,
        "    errors sent                {} (app messages Twilio could not use)",
        r.errors_sent
    )
}

/// Clears, split turns and talk-over, in call mode when there were turns or clears.
fn print_conversation(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    let c = &s.conversation;
    if c.turns == 0 && c.clears == 0 {
        return Ok(());
    }
    let calls = s.calls.finished;
    writeln!(
        out,
        "  conversation  {} caller turns in {calls} calls",
        c.turns
    )?;
    writeln!(
        out,
        "    clears                     {} (calls with clears: {} of {calls})",
        c.clears, c.calls_with_clears
    )?;
    writeln!(
        out,
        "    split turns                {} ({} VAD re-onsets; calls with split turns: {} of {calls})",
        c.split_turns, c.vad_splits, c.calls_with_split_turns
    )?;
    writeln!(
        out,
        "    talk-over                  {:.0} ms in {} turns (calls with talk-over: {} of {calls})",
        c.talk_over_ms, c.talk_over_turns, c.calls_with_talk_over
    )
}

/// Writes `summary.json`, `histograms.hlog` and `report.html` into `dir`.
pub fn write_dir(dir: &Path, s: &Summary, totals: &Recorder, hlog: &[u8]) -> Result<(), LoadError> {
    let w = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| LoadError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|source| LoadError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let json = serde_json::to_vec_pretty(s).expect("the summary always serialises");
    w(SUMMARY_FILE, &json)?;
    w(HLOG_FILE, hlog)?;
    w(HTML_FILE, render_html(s, totals).as_bytes())
}

/// Writes `calls.jsonl` into `dir`: one line per call, by index,
/// `{"index":0,"call_sid":"CA…","class":"ok"}`, and a last `{"omitted":N}` line when calls
/// past [`crate::tally::CALL_RECORDS`] were left out.
pub fn write_calls(dir: &Path, calls: &CallRecords) -> Result<(), LoadError> {
    let path = dir.join(CALLS_FILE);
    let err = |source| LoadError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).map_err(err)?);
    /// One line, fields in this order.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        index: u64,
        call_sid: &'a str,
        class: &'a str,
    }
    for c in &calls.calls {
        let line = Line {
            index: c.index,
            call_sid: &c.call_sid,
            class: &c.outcome.text(),
        };
        let json = serde_json::to_string(&line).expect("plain fields always serialise");
        writeln!(w, "{json}").map_err(err)?;
    }
    if calls.omitted > 0 {
        writeln!(w, "{}", serde_json::json!({ "omitted": calls.omitted })).map_err(err)?;
    }
    w.flush().map_err(err)
}

/// Largest `summary.json` `report merge` reads from one shard (a day-long shard's is under
/// 1 MB: its per-second series).
pub const MAX_MERGE_SUMMARY_BYTES: u64 = 64 << 20;
/// Largest `.hlog` `report merge` reads from one shard (a day-long shard's is tens of MB).
pub const MAX_MERGE_HLOG_BYTES: u64 = 1 << 30;

/// Reads shard output directories and adds them up: counts and outcomes summed, series
/// aligned by second and summed, every metric's histogram merged from the `.hlog`s and its
/// percentiles recomputed; each file is read under its bound ([`MAX_MERGE_SUMMARY_BYTES`],
/// [`MAX_MERGE_HLOG_BYTES`]). Returns the
/// merged summary, histograms and concatenated `.hlog`.
pub fn merge_dirs(dirs: &[&Path]) -> Result<(Summary, Recorder, Vec<u8>), LoadError> {
    let mut merged: Option<Summary> = None;
    let mut totals = Recorder::new();
    let mut lateness: BTreeMap<u32, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    let mut hlog = Vec::new();
    for dir in dirs {
        let read = |name: &str, max: u64| {
            let p = dir.join(name);
            crate::read_bounded(&p, max)
                .map_err(|e| LoadError::Input(format!("cannot read {}: {e}", p.display())))?
                .ok_or_else(|| {
                    LoadError::Input(format!(
                        "{} is over {max} bytes: not a file dialtone load wrote",
                        p.display()
                    ))
                })
        };
        let s: Summary = serde_json::from_slice(&read(SUMMARY_FILE, MAX_MERGE_SUMMARY_BYTES)?)
            .map_err(|e| {
                LoadError::Input(format!(
                    "{}: not a dialtone summary: {e}",
                    dir.join(SUMMARY_FILE).display()
                ))
            })?;
        if s.schema != crate::summary::SCHEMA {
            return Err(LoadError::Input(format!(
                "{}: schema {:?}, this dialtone reads {:?}",
                dir.display(),
                s.schema,
                crate::summary::SCHEMA
            )));
        }
        let text = read(HLOG_FILE, MAX_MERGE_HLOG_BYTES)?;
        let h = read_hlog(&text)?;
        totals.merge(&h.totals);
        for (sec, hist) in h.lateness_by_second {
            lateness
                .entry(sec)
                .or_insert_with(crate::metrics::new_histogram)
                .add(&hist)
                .ok();
        }
        hlog.extend_from_slice(format!("#[dialtone shard {}]\n", dir.display()).as_bytes());
        hlog.extend_from_slice(&text);
        merged = Some(match merged {
            None => s,
            Some(m) => add(m, s),
        });
    }
    let mut m = merged
        .ok_or_else(|| LoadError::Invalid("report merge needs at least one directory".into()))?;
    m.shards.sort_by_key(|s| (s.count, s.index));
    m.metrics = Metric::ALL
        .iter()
        .filter(|x| !totals.get(**x).is_empty())
        .map(|x| (x.name().to_string(), Stats::of(totals.get(*x))))
        .collect();
    for p in &mut m.series {
        if let Some(h) = lateness.get(&p.t_s).filter(|h| !h.is_empty()) {
            p.lateness_p50_ms = round3(h.value_at_quantile(0.5) as f64 / 1000.0);
            p.lateness_p99_ms = round3(h.value_at_quantile(0.99) as f64 / 1000.0);
        }
    }
    let mut generator = m.generator.clone();
    generator.reasons.clear();
    crate::verdict::judge_generator(&mut generator, &totals, &m.series, &m.mode.clone());
    // A shard's own verdict (its CPU, its machine) still counts in the merged one: the worst
    // cause wins, with the shards' reasons kept.
    let merged = Cause::from_names(&generator.verdict, &generator.cause);
    let shards = Cause::from_names(&m.generator.verdict, &m.generator.cause);
    let worst = merged.worst(shards);
    if worst != merged {
        generator
            .reasons
            .extend(m.generator.reasons.iter().cloned());
        generator.reasons.dedup();
        generator.verdict = worst.verdict().into();
        generator.cause = worst.name().into();
    }
    m.generator = generator;
    m.thresholds.clear();
    Ok((m, totals, hlog))
}

fn add(mut a: Summary, b: Summary) -> Summary {
    a.elapsed_s = a.elapsed_s.max(b.elapsed_s);
    a.started_at_unix_ms = a.started_at_unix_ms.min(b.started_at_unix_ms);
    a.interrupted |= b.interrupted;
    a.shards.extend(b.shards);
    let (x, y) = (&mut a.calls, &b.calls);
    x.scheduled += y.scheduled;
    x.started += y.started;
    x.finished += y.finished;
    x.succeeded += y.succeeded;
    x.failed += y.failed;
    x.not_started += y.not_started;
    x.rest_hangups += y.rest_hangups;
    let (x, y) = (&mut a.frames, &b.frames);
    x.sent += y.sent;
    x.expected += y.expected;
    x.app_media_received += y.app_media_received;
    x.backpressured += y.backpressured;
    a.conversation.add(&b.conversation);
    a.relay.add(&b.relay);
    a.dials.add(&b.dials);
    for (k, n) in b.faults {
        *a.faults.entry(k).or_default() += n;
    }
    for (k, list) in b.examples {
        let mine = a.examples.entry(k).or_default();
        let room = EXAMPLES_PER_OUTCOME.saturating_sub(mine.len());
        mine.extend(list.into_iter().take(room));
    }
    for (k, n) in b.outcomes {
        *a.outcomes.entry(k).or_default() += n;
    }
    // Seconds add up across shards (processes): counters, active calls and CPU alike.
    let mut by_t = per_second(a.series);
    for (t, p) in per_second(b.series) {
        let e = by_t.entry(t).or_insert_with(|| SeriesPoint {
            t_s: t,
            ..SeriesPoint::default()
        });
        e.active_calls += p.active_calls;
        e.started += p.started;
        e.finished += p.finished;
        e.errors += p.errors;
        e.frames += p.frames;
        e.cpu_pct = match (e.cpu_pct, p.cpu_pct) {
            (Some(x), Some(y)) => Some(round3(x + y)),
            (x, y) => x.or(y),
        };
        // Shards on one machine see the same figure; on several, the busiest counts.
        e.machine_cpu_pct = max_opt(e.machine_cpu_pct, p.machine_cpu_pct);
    }
    a.series = by_t.into_values().collect();
    let (g, h) = (&mut a.generator, &b.generator);
    g.cores += h.cores;
    g.cpu_user_s = sum_opt(g.cpu_user_s, h.cpu_user_s);
    g.cpu_sys_s = sum_opt(g.cpu_sys_s, h.cpu_sys_s);
    g.cpu_peak_pct = match (g.cpu_peak_pct, h.cpu_peak_pct) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    g.max_rss_kib = g.max_rss_kib.max(h.max_rss_kib);
    g.machine_cores = g.machine_cores.max(h.machine_cores);
    g.load_avg_peak = max_opt(g.load_avg_peak, h.load_avg_peak);
    let worst =
        Cause::from_names(&g.verdict, &g.cause).worst(Cause::from_names(&h.verdict, &h.cause));
    g.verdict = worst.verdict().into();
    g.cause = worst.name().into();
    g.reasons.extend(h.reasons.iter().cloned());
    let frames = a.frames.sent as f64;
    g.user_us_per_frame = g
        .cpu_user_s
        .filter(|_| frames > 0.0)
        .map(|s| round3(s * 1e6 / frames));
    g.sys_us_per_frame = g
        .cpu_sys_s
        .filter(|_| frames > 0.0)
        .map(|s| round3(s * 1e6 / frames));
    a
}

/// One shard's series by second. Its last, partial second can carry the same `t_s` as the
/// one before: those points are added up (counters summed; active calls and CPU, measured
/// twice in one process, take the larger), never overwritten.
fn per_second(series: Vec<SeriesPoint>) -> BTreeMap<u32, SeriesPoint> {
    let mut by_t: BTreeMap<u32, SeriesPoint> = BTreeMap::new();
    for p in series {
        match by_t.get_mut(&p.t_s) {
            None => {
                by_t.insert(p.t_s, p);
            }
            Some(e) => {
                e.active_calls = e.active_calls.max(p.active_calls);
                e.started += p.started;
                e.finished += p.finished;
                e.errors += p.errors;
                e.frames += p.frames;
                e.cpu_pct = match (e.cpu_pct, p.cpu_pct) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    (x, y) => x.or(y),
                };
                e.machine_cpu_pct = max_opt(e.machine_cpu_pct, p.machine_cpu_pct);
            }
        }
    }
    by_t
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn sum_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(round3(x + y)),
        (x, y) => x.or(y),
    }
}
