//! App milestones: what a voice app reports about each call (`vad.speech_end`,
//! `transcript.final`, a worker's `transcription_job` duration …), parsed, summarised,
//! and matched against the caller's ground truth. Pure: no IO beyond reading the text
//! it is handed.
//!
//! # Layout
//! - [`milestone`]: the record schema ([`Milestone`]) and its parsers, [`parse_line`]
//!   and [`parse_body`] (object, array or JSON lines). The schema is documented for
//!   users in `docs/milestones.md`.
//! - [`ingest`]: [`ingest_jsonl`] for a log file; bad lines and out-of-order timestamps
//!   are reported with line numbers, never fatal.
//! - [`durations`]: [`DurationTable`], HDR histograms per event and the event / count /
//!   avg / p50 / p95 / p99 / max table.
//! - [`matching`]: [`match_turns`] assigns milestones to ground-truth turns
//!   ([`TurnClock`]) and measures their latency; [`partition_known`] sorts records by
//!   call.
//! - [`wer`](mod@wer): word error rate of a transcript.

pub mod durations;
pub mod ingest;
pub mod matching;
pub mod milestone;
pub mod wer;

pub use durations::{DurationTable, Row};
pub use ingest::{BadLine, Ingest, OrderCheck, OutOfOrder, ingest_jsonl};
pub use matching::{
    Anchor, Matched, Partition, TurnClock, TurnEvent, TurnMilestones, match_turns, partition_known,
};
pub use milestone::{
    BadRecord, Milestone, MilestoneError, RAW_KEEP, format_ts, parse_body, parse_line,
};
pub use wer::wer;
