//! The milestone events endpoint. Apps report what they noticed (`vad.speech_end`,
//! `transcript.final`, …) by POSTing JSON records to `/events` while calls run; dialtone
//! keeps them per call SID until the call's report is built.
//!
//! The store is bounded: past [`MAX_RECORDS`] records new ones are counted as dropped, so a
//! chatty app cannot grow dialtone's memory.

mod attach;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use dialtone_milestones::milestone::{Milestone, parse_body};

pub use attach::attach;

/// Records kept at most across all calls.
pub const MAX_RECORDS: usize = 1_000_000;

/// What the endpoint has received, by call SID.
#[derive(Debug, Default)]
struct Store {
    by_call: HashMap<String, Vec<Milestone>>,
    kept: usize,
    bad: u64,
    dropped: u64,
}

/// The milestones received so far, by call SID: a shared handle (clones see the same
/// records) the endpoint fills and each call takes its own from.
#[derive(Debug, Clone, Default)]
pub struct MilestoneInbox {
    store: Arc<Mutex<Store>>,
}

/// Counters of what could not be kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records that did not parse (reported to the app with a 400).
    pub bad: u64,
    /// Records dropped because the store was full.
    pub dropped: u64,
}

impl MilestoneInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds parsed records.
    pub fn add(&self, records: Vec<Milestone>) {
        let mut s = self.store.lock().expect("events lock");
        for m in records {
            if s.kept >= MAX_RECORDS {
                s.dropped += 1;
                continue;
            }
            s.kept += 1;
            s.by_call.entry(m.call_sid.clone()).or_default().push(m);
        }
    }

    /// Removes and returns one call's records.
    pub fn take(&self, call_sid: &str) -> Vec<Milestone> {
        let mut s = self.store.lock().expect("events lock");
        let v = s.by_call.remove(call_sid).unwrap_or_default();
        s.kept -= v.len();
        v
    }

    /// Removes and returns every record left (e.g. for unknown call SIDs).
    pub fn drain(&self) -> HashMap<String, Vec<Milestone>> {
        let mut s = self.store.lock().expect("events lock");
        s.kept = 0;
        std::mem::take(&mut s.by_call)
    }

    /// What could not be kept so far.
    pub fn counts(&self) -> Counts {
        let s = self.store.lock().expect("events lock");
        Counts {
            bad: s.bad,
            dropped: s.dropped,
        }
    }
}

/// `POST /events`: a JSON object, a JSON array or JSON lines of milestone records.
pub fn router(inbox: MilestoneInbox) -> Router {
    Router::new()
        .route("/events", post(receive))
        .with_state(inbox)
}

async fn receive(State(c): State<MilestoneInbox>, body: String) -> (StatusCode, String) {
    let (records, bad) = parse_body(&body);
    let n = records.len();
    c.add(records);
    if bad.is_empty() {
        return (StatusCode::ACCEPTED, format!("{{\"accepted\":{n}}}"));
    }
    c.store.lock().expect("events lock").bad += bad.len() as u64;
    let reasons: Vec<String> = bad.iter().map(|b| format!("{b:?}")).collect();
    tracing::debug!("bad milestone records: {reasons:?}");
    (
        StatusCode::BAD_REQUEST,
        format!(
            "{{\"accepted\":{n},\"rejected\":{},\"first_error\":{:?}}}",
            bad.len(),
            reasons.first().cloned().unwrap_or_default()
        ),
    )
}

/// Serves the endpoint on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    inbox: MilestoneInbox,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(inbox))
        .with_graceful_shutdown(shutdown)
        .await
}
