//! `dialtone metrics FILE`: reads a JSON-lines milestone log (`docs/milestones.md`) and
//! prints the table an app team reads (event, count, avg, p50, p95, p99, max), then every
//! bad line and out-of-order timestamp with its line number. Bad lines are reported, not
//! fatal: the exit code is 0 unless the file cannot be read (2).

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use dialtone_milestones::{DurationTable, Ingest, format_ts, ingest_jsonl};

/// Bad lines and out-of-order records listed in the text report; the rest are counted
/// (and all are in `--json`), so a log of garbage does not scroll the table away.
const SHOW_MAX: usize = 20;

/// Options of `dialtone metrics`.
#[derive(Debug, Args)]
pub(crate) struct MetricsOpts {
    /// JSON-lines milestone log; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `dialtone metrics`.
pub(crate) fn run(opts: MetricsOpts) -> anyhow::Result<ExitCode> {
    let text = read(&opts.file)?;
    let ingest = ingest_jsonl(&text);
    let mut table = DurationTable::new();
    for m in &ingest.records {
        table.record(m);
    }
    let name = opts.file.display().to_string();
    match print(opts.json, &name, &ingest, &table) {
        // `dialtone metrics log | head` closing the pipe early is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write the report"),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn print(json: bool, name: &str, ingest: &Ingest, table: &DurationTable) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report_json(name, ingest, table))?;
        writeln!(out)?;
    } else {
        render_text(&mut out, name, ingest, table)?;
    }
    out.flush()
}

/// The whole file (`-`: standard input) as text, under [`crate::input::MAX_LOG_BYTES`].
fn read(file: &std::path::Path) -> anyhow::Result<String> {
    crate::input::read_text_limited(file, crate::input::MAX_LOG_BYTES, "metrics input")
}

/// Number of distinct call SIDs among the records.
fn calls(ingest: &Ingest) -> usize {
    ingest
        .records
        .iter()
        .filter(|m| !m.call_sid.is_empty())
        .map(|m| m.call_sid.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

fn report_json(name: &str, ingest: &Ingest, table: &DurationTable) -> serde_json::Value {
    let t = table.to_json();
    serde_json::json!({
        "file": name,
        "records": ingest.records.len(),
        "calls": calls(ingest),
        "events": t["events"],
        "without_duration": t["without_duration"],
        "bad_lines": ingest.bad.len(),
        "bad": ingest.bad,
        "out_of_order": ingest.out_of_order,
        "out_of_order_lines": ingest.out_of_order_lines,
    })
}

fn render_text(
    out: &mut dyn Write,
    name: &str,
    ingest: &Ingest,
    table: &DurationTable,
) -> io::Result<()> {
    writeln!(
        out,
        "{name}: {} from {}; {}; {} out of order",
        count(ingest.records.len(), "record"),
        count(calls(ingest), "call"),
        count(ingest.bad.len(), "bad line"),
        ingest.out_of_order
    )?;
    if table.is_empty() {
        writeln!(out, "no milestone records")?;
    } else {
        writeln!(out)?;
        table.render_text(out)?;
    }
    if !ingest.bad.is_empty() {
        writeln!(out, "\nbad lines ({}):", ingest.bad.len())?;
        for b in ingest.bad.iter().take(SHOW_MAX) {
            writeln!(out, "  line {}: {}", b.line_no, b.reason)?;
            writeln!(out, "    {}", b.raw)?;
        }
        more(out, ingest.bad.len())?;
    }
    if ingest.out_of_order > 0 {
        writeln!(out, "\nout-of-order timestamps ({}):", ingest.out_of_order)?;
        for o in ingest.out_of_order_lines.iter().take(SHOW_MAX) {
            writeln!(
                out,
                "  line {}: {} {} at {}, {} ms before the call's latest ({})",
                o.line_no,
                o.call_sid,
                o.name,
                format_ts(o.ts_ms),
                o.previous_ms - o.ts_ms,
                format_ts(o.previous_ms)
            )?;
        }
        more(out, ingest.out_of_order_lines.len())?;
    }
    Ok(())
}

/// `1 call`, `2 calls`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn more(out: &mut dyn Write, total: usize) -> io::Result<()> {
    if total > SHOW_MAX {
        writeln!(out, "  … and {} more (all are in --json)", total - SHOW_MAX)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_report_lists_table_bad_lines_and_order() {
        let log = concat!(
            r#"{"name":"transcription_job","duration_ms":1250}"#,
            "\n",
            r#"{"call_sid":"CA1","name":"vad.speech_end","ts":1732460001000}"#,
            "\n",
            "garbage\n",
            r#"{"call_sid":"CA1","name":"vad.speech_end","ts":1732460000500}"#,
            "\n",
        );
        let ingest = ingest_jsonl(log);
        let mut table = DurationTable::new();
        for m in &ingest.records {
            table.record(m);
        }
        let mut out = Vec::new();
        render_text(&mut out, "log.jsonl", &ingest, &table).expect("render");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("log.jsonl: 3 records from 1 call; 1 bad line; 1 out of order\n"));
        let row = text.lines().find(|l| l.starts_with("transcription_job"));
        let cells: Vec<&str> = row.expect("a row").split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "transcription_job",
                "1",
                "1250.0",
                "1250.0",
                "1250.0",
                "1250.0",
                "1250.0"
            ]
        );
        assert!(
            text.contains("without a duration: vad.speech_end ×2"),
            "{text}"
        );
        assert!(text.contains("  line 3: not JSON"), "{text}");
        assert!(text.contains("    garbage\n"), "{text}");
        assert!(
            text.contains("  line 4: CA1 vad.speech_end at 2024-11-24T14:53:20.5Z, 500 ms before"),
            "{text}"
        );
        let json = report_json("log.jsonl", &ingest, &table);
        assert_eq!(json["bad"][0]["line_no"], 3);
        assert_eq!(json["events"][0]["p99_ms"], 1250.0);
        assert_eq!(json["out_of_order_lines"][0]["line_no"], 4);
    }
}
