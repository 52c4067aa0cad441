//! A malformed, out-of-order JSON-lines log: every good record kept, every bad line
//! reported with its number and reason, backwards timestamps counted per call, and the
//! duration table built from what was good.

use dialtone_milestones::{DurationTable, ingest_jsonl};

const LOG: &str = r#"{"call_sid":"CA01","name":"vad.speech_start","ts":"2024-11-24T14:53:20.120Z"}
{"call_sid":"CA01","name":"vad.speech_end","ts":1732460002500}

{"call_sid":"CA01","name":"transcript.final","ts":1732460002900,"text":"hello there"}
this is not json
{"call_sid":"CA02","event":"vad.speech_end","ts":1732460001000}
{"callSid":"CA01","name":"vad.speech_start","ts":1732460002000}
{"name":"transcription_job","duration_ms":1250}
{"name":"transcription_job","duration_ms":950.5,"call_sid":"CA01"}
{"call_sid":"CA01","name":"llm.first_token","ts":1732460003}
["an","array"]
{"name":"transcription_job","duration_ms":-3}
{"call_sid":"CA02","name":"vad.speech_end","ts":1732460000999}
{"CallSid":"CA02","name":"tts.first_audio","ts":"2024-11-24T14:53:21.500+00:00","duration_ms":80}
"#;

#[test]
fn malformed_log_reports_bad_lines_with_numbers() {
    let ingest = ingest_jsonl(LOG);
    let bad: Vec<(usize, &str)> = ingest
        .bad
        .iter()
        .map(|b| (b.line_no, b.reason.as_str()))
        .collect();
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert_eq!(bad[0].0, 5);
    assert!(bad[0].1.starts_with("not JSON"), "{}", bad[0].1);
    assert_eq!(bad[1].0, 10);
    assert!(bad[1].1.contains("looks like seconds"), "{}", bad[1].1);
    assert_eq!(bad[2], (11, "not a JSON object"));
    assert_eq!(bad[3].0, 12);
    assert!(bad[3].1.starts_with("duration_ms:"), "{}", bad[3].1);
    assert_eq!(ingest.bad[0].raw, "this is not json");

    // 14 lines, one blank, four bad: nine records.
    assert_eq!(ingest.records.len(), 9);
    // Line 7 goes back before line 4 for CA01; line 13 before line 6 for CA02. The
    // duration-only lines have no timestamp and are never out of order.
    assert_eq!(ingest.out_of_order, 2);
    let ooo: Vec<(usize, &str, i64)> = ingest
        .out_of_order_lines
        .iter()
        .map(|o| (o.line_no, o.call_sid.as_str(), o.previous_ms - o.ts_ms))
        .collect();
    assert_eq!(ooo, [(7, "CA01", 900), (13, "CA02", 1)]);

    let mut table = DurationTable::new();
    for m in &ingest.records {
        table.record(m);
    }
    let rows = table.rows();
    let summary: Vec<(&str, u64, f64)> = rows
        .iter()
        .map(|r| (r.event.as_str(), r.count, r.max_ms))
        .collect();
    assert_eq!(
        summary,
        [
            ("transcription_job", 2, 1250.0),
            ("tts.first_audio", 1, 80.0)
        ]
    );
    assert_eq!(table.without_duration()["vad.speech_end"], 3);
    assert_eq!(table.without_duration()["vad.speech_start"], 2);
}

#[test]
fn crlf_and_empty_logs() {
    let ingest = ingest_jsonl("{\"name\":\"job\",\"duration_ms\":5}\r\n\r\n");
    assert_eq!((ingest.records.len(), ingest.bad.len()), (1, 0));
    let empty = ingest_jsonl("");
    assert!(empty.records.is_empty() && empty.bad.is_empty());
}
