//! The replay report: what was sent and received, every divergence from the capture (first
//! one first), the close on both sides, timing drift, and whether the capture's outcome was
//! reproduced. Rendered as terminal text or serialized as JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// The whole replay report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The capture file.
    pub capture: String,
    /// The replayed call.
    pub call_sid: String,
    /// `real-time` or `fast`.
    pub pacing: &'static str,
    /// `--ignore-payloads` was given.
    pub ignore_payloads: bool,
    /// Step 1.
    pub webhook: WebhookReport,
    /// Steps 2–4.
    pub stream: StreamSummary,
    /// How the stream ended, captured vs replayed.
    pub close: CloseReport,
    /// Every divergence found, in the order they happened (at most one per kind).
    pub divergences: Vec<Divergence>,
    /// Drift of the matched app messages.
    pub timing: Timing,
    /// The app's answers match the capture (exit code 0).
    pub matches: bool,
    /// The capture's outcome (how and where the stream ended) happened again.
    pub reproduced: bool,
    /// One sentence: reproduced or not, and how.
    pub verdict: String,
    /// Things the reader should know (calls/streams not replayed, URL fallbacks…).
    pub notes: Vec<String>,
}

/// The voice webhook, captured vs replayed.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookReport {
    /// `POST` or `GET`.
    pub method: String,
    /// URL requested.
    pub url: String,
    /// The captured status (`None` when the capture has no answer).
    pub captured_status: Option<u16>,
    /// The app's status now.
    pub status: u16,
    /// The app's Content-Type now.
    pub content_type: String,
    /// The TwiML is the captured one (after swapping the webhook's host:port).
    pub twiml_matches: bool,
}

/// The replayed stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// URL connected to.
    pub url: String,
    /// `twiml` (the new answer) or `capture` (fallback to the captured `ws_open`).
    pub url_source: &'static str,
    /// The captured `MZ…` (the replayed messages carry it).
    pub stream_sid: String,
    /// The app refused the upgrade with this HTTP status.
    pub upgrade_refused: Option<u16>,
    /// `ws_out` messages in the capture.
    pub ws_out_captured: usize,
    /// `ws_out` messages sent.
    pub ws_out_sent: usize,
    /// App messages in the capture.
    pub app_messages_captured: usize,
    /// App text messages received.
    pub app_messages_received: usize,
    /// Received messages equal to the captured one at the same index.
    pub app_messages_matching: usize,
    /// Binary frames received (Twilio ignores them; captures do not hold them).
    pub binary_frames: u64,
}

/// One side of a stream's end.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// `app`, `dropped`, `stalled`, `dialtone`, `kept_open`, `refused`.
    pub by: String,
    /// Close code, if any.
    pub code: Option<u16>,
    /// `ws_out` messages sent before it.
    pub after_ws_out: usize,
    /// In words.
    pub text: String,
}

/// The stream's end, captured vs replayed.
#[derive(Debug, Clone, Serialize)]
pub struct CloseReport {
    /// `None` when the capture is incomplete (no `ws_close`).
    pub captured: Option<Side>,
    /// What happened now.
    pub replayed: Side,
    /// Same end, same point.
    pub matches: bool,
}

/// One divergence.
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    /// `webhook_status`, `twiml`, `upgrade`, `app_message`, `close`, or `timing` (`--fast`:
    /// identical app messages that landed among other caller frames than in the capture).
    pub kind: &'static str,
    /// 1-based index of the app message, for `app_message`.
    pub app_message: Option<usize>,
    /// `ws_out` messages sent before it.
    pub after_ws_out: Option<usize>,
    /// The captured text (truncated).
    pub captured: Option<String>,
    /// The replayed text (truncated).
    pub replayed: Option<String>,
    /// In words.
    pub description: String,
}

/// Replay offset minus capture offset of matched app messages, from each side's `ws_open`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Timing {
    /// Matched messages measured.
    pub matched: usize,
    /// Signed mean (positive: the app answered later than in the capture).
    pub mean_ms: Option<f64>,
    /// Median of the absolute drift.
    pub p50_ms: Option<f64>,
    /// 95th percentile of the absolute drift.
    pub p95_ms: Option<f64>,
    /// Largest absolute drift.
    pub max_ms: Option<f64>,
    /// False with `--fast`: the pacing differs by design.
    pub meaningful: bool,
}

impl Report {
    /// 0 when the app's answers match the capture, 1 when they diverge.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.matches)
    }

    /// The first divergence, if any.
    pub fn first_divergence(&self) -> Option<&Divergence> {
        self.divergences.first()
    }

    /// The report as terminal text.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let w = &self.webhook;
        let s = &self.stream;
        let _ = writeln!(
            o,
            "replay of {}, call {} ({} pacing{})",
            self.capture,
            self.call_sid,
            self.pacing,
            if self.ignore_payloads {
                ", media payloads ignored"
            } else {
                ""
            }
        );
        let status = match w.captured_status {
            Some(c) if c == w.status => format!("{} as captured", w.status),
            Some(c) => format!("{} (capture: {c})", w.status),
            None => format!("{} (capture: no answer)", w.status),
        };
        let _ = writeln!(
            o,
            "webhook  {} {} -> {status}; TwiML {}",
            w.method,
            w.url,
            if w.twiml_matches {
                "as captured"
            } else {
                "DIFFERS"
            }
        );
        let source = if s.url_source == "twiml" {
            "from the new TwiML"
        } else {
            "captured URL"
        };
        let _ = writeln!(o, "stream   {} ({source}), {}", s.url, s.stream_sid);
        let _ = writeln!(
            o,
            "sent     {} of {} captured ws_out messages",
            s.ws_out_sent, s.ws_out_captured
        );
        let _ = writeln!(
            o,
            "app      {} messages received, {} captured, {} identical{}",
            s.app_messages_received,
            s.app_messages_captured,
            s.app_messages_matching,
            if s.binary_frames > 0 {
                format!(" (+{} binary frames)", s.binary_frames)
            } else {
                String::new()
            }
        );
        let captured = self
            .close
            .captured
            .as_ref()
            .map_or("no ws_close (incomplete capture)", |c| c.text.as_str());
        let _ = writeln!(o, "close    capture: {captured}");
        let _ = writeln!(o, "         replay:  {}", self.close.replayed.text);
        let t = &self.timing;
        match (t.mean_ms, t.p50_ms, t.p95_ms, t.max_ms) {
            (Some(mean), Some(p50), Some(p95), Some(max)) => {
                let _ = writeln!(
                    o,
                    "timing   drift of {} matched app messages: mean {mean:+.1} ms, p50 {p50:.1} ms, \
                     p95 {p95:.1} ms, max {max:.1} ms{}",
                    t.matched,
                    if t.meaningful {
                        ""
                    } else {
                        " (--fast: not meaningful, pacing differs by design)"
                    }
                );
            }
            _ => {
                let _ = writeln!(o, "timing   no matched app messages to measure");
            }
        }
        match self.divergences.first() {
            None => {
                let _ = writeln!(o, "first divergence: none");
            }
            Some(d) => {
                let _ = writeln!(o, "first divergence: {}", d.description);
                if let Some(c) = &d.captured {
                    let _ = writeln!(o, "  captured: {c}");
                }
                if let Some(r) = &d.replayed {
                    let _ = writeln!(o, "  replayed: {r}");
                }
                for later in &self.divergences[1..] {
                    let _ = writeln!(o, "also: {}", later.description);
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(o, "note: {note}");
        }
        let _ = writeln!(o, "{}", self.verdict);
        o
    }
}
