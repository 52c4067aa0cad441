//! Ingest of a JSON-lines milestone log: every good record kept, every bad line and
//! every timestamp that goes backwards within a call reported with its line number.

use std::collections::HashMap;

use serde::Serialize;

use crate::milestone::{Milestone, parse_line, truncate};

/// A line of a log that could not be used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadLine {
    /// 1-based line number in the file.
    pub line_no: usize,
    /// Why it was refused.
    pub reason: String,
    /// The line as written, cut to [`crate::RAW_KEEP`] characters.
    pub raw: String,
}

/// A record whose timestamp is earlier than an earlier record of the same call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutOfOrder {
    /// 1-based line number in the file.
    pub line_no: usize,
    /// The call.
    pub call_sid: String,
    /// The record's name.
    pub name: String,
    /// Its timestamp (epoch ms).
    pub ts_ms: i64,
    /// The latest timestamp seen for the call before it (epoch ms).
    pub previous_ms: i64,
}

/// What a log held.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ingest {
    /// Every good record, in file order (out-of-order ones included: they are real).
    pub records: Vec<Milestone>,
    /// Every line that is not a valid record, in file order.
    pub bad: Vec<BadLine>,
    /// How many records went back in time within their call.
    pub out_of_order: u64,
    /// Those records, in file order.
    pub out_of_order_lines: Vec<OutOfOrder>,
}

/// Tracks the latest timestamp per call, to spot records that go backwards. Shared by
/// the log ingest and by live ingestion of POSTed records.
#[derive(Debug, Clone, Default)]
pub struct OrderCheck {
    latest: HashMap<String, i64>,
}

impl OrderCheck {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes `m`'s timestamp. Returns the call's previous latest timestamp when `m` is
    /// earlier than it (out of order); records without a timestamp are never out of order.
    pub fn observe(&mut self, m: &Milestone) -> Option<i64> {
        let ts = m.ts_ms?;
        match self.latest.get_mut(&m.call_sid) {
            Some(latest) if ts < *latest => Some(*latest),
            Some(latest) => {
                *latest = ts;
                None
            }
            None => {
                self.latest.insert(m.call_sid.clone(), ts);
                None
            }
        }
    }
}

/// Reads a JSON-lines log: one record per line, blank lines skipped. Nothing is fatal.
pub fn ingest_jsonl(text: &str) -> Ingest {
    let mut ingest = Ingest::default();
    let mut order = OrderCheck::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(m) => {
                if let (Some(previous_ms), Some(ts_ms)) = (order.observe(&m), m.ts_ms) {
                    ingest.out_of_order += 1;
                    ingest.out_of_order_lines.push(OutOfOrder {
                        line_no,
                        call_sid: m.call_sid.clone(),
                        name: m.name.clone(),
                        ts_ms,
                        previous_ms,
                    });
                }
                ingest.records.push(m);
            }
            Err(e) => ingest.bad.push(BadLine {
                line_no,
                reason: e.to_string(),
                raw: truncate(line),
            }),
        }
    }
    ingest
}
