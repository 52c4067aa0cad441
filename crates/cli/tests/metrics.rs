//! `dialtone metrics FILE` as a user runs it: the table, bad lines with their numbers,
//! out-of-order counts, `--json`, standard input, and the exit codes (0 even with bad
//! lines, 2 when the file cannot be read).

use std::io::Write;
use std::process::{Command, Stdio};

fn dialtone() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialtone"))
}

const LOG: &str = r#"{"call_sid":"CA01","name":"vad.speech_end","ts":"2024-11-24T14:53:22.500Z"}
{"name":"transcription_job","duration_ms":1250}
{"name":"transcription_job","duration_ms":950}
{"call_sid":"CA01","name":"transcript.final","ts":1732460002900,"text":"hello"}
{"call_sid":"CA01","name":"tts.first_audio","ts":1732460003100,"duration_ms":210.5
{"call_sid":"CA01","name":"vad.speech_start","ts":1732460000100}
{"call_sid":"CA02","event":"transcription_job","ts":1732460004000,"duration_ms":1100}
"#;

#[test]
fn table_bad_lines_and_order_exit_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.jsonl");
    std::fs::write(&path, LOG).expect("write");
    let out = dialtone().arg("metrics").arg(&path).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("6 records from 2 calls; 1 bad line; 1 out of order"),
        "{text}"
    );
    let header = text
        .lines()
        .find(|l| l.starts_with("event"))
        .expect("a table header");
    for column in ["count", "avg ms", "p50 ms", "p95 ms", "p99 ms", "max ms"] {
        assert!(header.contains(column), "{header}");
    }
    let row = text
        .lines()
        .find(|l| l.starts_with("transcription_job"))
        .expect("a transcription_job row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    // count, avg, p50, …, max: three jobs of 1250, 950 and 1100 ms.
    assert_eq!(cells[1..3], ["3", "1100.0"], "{row}");
    assert_eq!(cells[6], "1250.0", "{row}");
    assert!(text.contains("line 5: not JSON"), "{text}");
    assert!(text.contains("line 6: CA01 vad.speech_start"), "{text}");
}

#[test]
fn json_output_and_stdin() {
    let mut child = dialtone()
        .args(["metrics", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(LOG.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["records"], 6);
    assert_eq!(json["calls"], 2);
    assert_eq!(json["bad_lines"], 1);
    assert_eq!(json["bad"][0]["line_no"], 5);
    assert_eq!(json["out_of_order"], 1);
    assert_eq!(json["out_of_order_lines"][0]["line_no"], 6);
    let events = json["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "transcription_job");
    assert_eq!(events[0]["count"], 3);
    assert_eq!(json["without_duration"]["vad.speech_end"], 1);
}

#[test]
fn unreadable_file_is_exit_2() {
    let out = dialtone()
        .args(["metrics", "/nonexistent/app.jsonl"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read metrics input /nonexistent/app.jsonl"),
        "{err}"
    );
}
