//! `--capture FILE`: every exchange of a call written as JSON lines — the TwiML requests and
//! responses, and every WebSocket message in both directions with its time — so a session
//! can be read, diffed, and replayed. The format is documented in `docs/capture.md`.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// One captured exchange.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Captured<'a> {
    /// A TwiML request as sent.
    HttpRequest {
        /// `voice`, `action`, `redirect`, `fallback`.
        purpose: &'a str,
        /// `POST` or `GET`.
        method: &'a str,
        /// The URL on the wire.
        url: &'a str,
        /// `X-Twilio-Signature`.
        signature: &'a str,
        /// Form body (empty for GET).
        body: &'a str,
    },
    /// The app's answer.
    HttpResponse {
        /// URL it answered.
        url: &'a str,
        /// HTTP status.
        status: u16,
        /// Declared Content-Type.
        content_type: &'a str,
        /// Body, as text.
        body: &'a str,
    },
    /// A stream's WebSocket opened.
    WsOpen {
        /// Stream SID.
        stream_sid: &'a str,
        /// URL connected to.
        url: &'a str,
    },
    /// A text message dialtone sent (Twilio → app).
    WsOut {
        /// Stream SID.
        stream_sid: &'a str,
        /// The message.
        text: &'a str,
    },
    /// A message the app sent (app → Twilio).
    WsIn {
        /// Stream SID.
        stream_sid: &'a str,
        /// The message.
        text: &'a str,
    },
    /// A stream's WebSocket closed.
    WsClose {
        /// Stream SID.
        stream_sid: &'a str,
        /// `app`, `dialtone`, `dropped`, `stalled`.
        by: &'a str,
        /// Close code, if any.
        code: Option<u16>,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    /// Milliseconds since the call was placed.
    t_ms: f64,
    call_sid: &'a str,
    #[serde(flatten)]
    what: &'a Captured<'a>,
}

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
        let line = Line {
            t_ms: (t_ms * 1e3).round() / 1e3,
            call_sid,
            what,
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
