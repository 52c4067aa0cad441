//! The load engine: places many calls against a voice app on a deterministic schedule, either
//! as full Twilio-exact calls (webhook, TwiML, Media Streams, marks) through the call engine,
//! or as bare Media Streams on a lean hot path, and turns what it measures into HDR
//! histograms, per-second series, a JSON summary, `.hlog` interval logs and an HTML report.
//!
//! # Layout
//! - [`plan`]: the workload as a schedule (count or duration, arrival rate and ramp, seed,
//!   shards).
//! - [`scenario`]: what callers do (weighted profiles from flags or a TOML file).
//! - [`metrics`]: the metric set and per-worker HDR recorders.
//! - [`sample`]: a finished call reduced to its outcome class and measurements.
//! - [`tally`]: the single place results flow to (totals, series, `.hlog`).
//! - [`calls`]: the full-call runner (one shared engine, a semaphore, a task per call).
//! - [`stream`]: the lean `--stream` runner (a few paced worker threads, one timer wheel
//!   each, pre-built frames, one write per frame).
//! - [`summary`]: the report DTOs (`summary.json`, contract in `schema.json`).
//! - [`threshold`]: `--threshold` expressions and their verdicts.
//! - [`verdict`]: whether dialtone, a busy machine or the app limited a run.
//! - [`output`]: terminal summary, `--out DIR` files, the HTML report, `report merge`.

pub mod calls;
pub mod inflight;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod proc_stats;
pub mod sample;
pub mod scenario;
pub mod stream;
pub mod summary;
pub mod tally;
pub mod threshold;
pub mod verdict;

pub use metrics::{Metric, Recorder, Stats};
pub use plan::{Arrival, Extent, Shard, Workload};
pub use summary::Summary;
pub use tally::{Finished, Progress, RunInfo, RunTally};

/// Why a load run could not be set up or its results read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A flag or scenario value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// An input (audio, scenario, shard output) could not be read.
    #[error("{0}")]
    Input(String),
    /// Writing results failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The stream target could not be used.
    #[error("stream target: {0}")]
    Target(String),
}

/// The bytes of the file at `path`, or `None` when it holds more than `max`: never reads
/// past `max + 1`, so `/dev/zero` or a wrong file costs that much at most.
pub(crate) fn read_bounded(path: &std::path::Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}
