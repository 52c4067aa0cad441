//! `--capture FILE`: every exchange of a call written as JSON lines — the TwiML requests and
//! responses, and every WebSocket message in both directions with its time — so a session
//! can be read, diffed, and replayed. The format is documented in `docs/capture.md`.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dialtone_protocol::capture::{CaptureLine, CaptureRecord};

/// One captured exchange, borrowed from the call (the schema: `dialtone_protocol::capture`).
pub type Captured<'a> = CaptureRecord<&'a str>;

/// A capture file shared by every call of a run.
pub struct Capture {
    out: Mutex<Box<dyn Write + Send>>,
    records: AtomicU64,
    failed: AtomicBool,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("records", &self.records())
            .finish()
    }
}

impl Capture {
    /// Captures into a new file at `path` (buffered).
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        Ok(Self::new(Box::new(std::io::BufWriter::new(file))))
    }

    /// Captures into `out` (a buffered file, usually).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            records: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// Writes one record. A write error is remembered (see [`Capture::finish`]) rather than
    /// failing the call being captured.
    pub(crate) fn record(&self, t_ms: f64, call_sid: &str, what: &Captured<'_>) {
        let line = CaptureLine {
            t_ms: (t_ms * 1e3).round() / 1e3,
            call_sid,
            record: what.clone(),
        };
        let mut out = self.out.lock().expect("capture lock");
        let ok = serde_json::to_writer(&mut *out, &line).is_ok() && out.write_all(b"\n").is_ok();
        if ok {
            self.records.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Flushes; an error if any record could not be written.
    pub fn finish(&self) -> std::io::Result<()> {
        self.out.lock().expect("capture lock").flush()?;
        if self.failed.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(
                "some capture records could not be written",
            ));
        }
        Ok(())
    }
}
