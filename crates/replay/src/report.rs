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
    /// A ConversationRelay session, turn by turn (then `stream` and `close` describe its
    /// socket: `ws_out` counts are `relay_out` messages, `stream_sid` its `VX…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelaySummary>,
}

/// A replayed ConversationRelay session compared with the capture's.
#[derive(Debug, Clone, Serialize)]
pub struct RelaySummary {
    /// The captured `VX…` (the replayed `setup` carries it).
    pub session_id: String,
    /// The app's message types in order (`text`, `end`…; `(not JSON)`, `(no type)`), captured.
    pub captured_types: Vec<String>,
    /// The same, replayed.
    pub replayed_types: Vec<String>,
    /// Each caller turn (0: before the first prompt, when the app spoke first).
    pub turns: Vec<RelayTurnReport>,
    /// The app's `end`, captured vs replayed.
    pub end: RelayEndReport,
    /// A first-token latency further than this from the captured one is a timing divergence.
    pub latency_tolerance_ms: f64,
}

/// One caller turn: the prompt and the app's answer (its `text` tokens joined).
#[derive(Debug, Clone, Serialize)]
pub struct RelayTurnReport {
    /// 1-based (the n-th final prompt); 0 before any prompt.
    pub turn: usize,
    /// The prompt's `voicePrompt`.
    pub prompt: Option<String>,
    /// The captured answer (`None`: no `text` token in this turn).
    pub captured_answer: Option<String>,
    /// The replayed answer.
    pub replayed_answer: Option<String>,
    /// Same tokens' text.
    pub answer_matches: bool,
    /// Captured: the app's first `text` after the prompt, in ms from the prompt.
    pub captured_first_token_ms: Option<f64>,
    /// Replayed: the same, from when the replay sent the prompt.
    pub replayed_first_token_ms: Option<f64>,
    /// Within the tolerance (or not measurable on both sides).
    pub latency_matches: bool,
}

/// The app's `end`, captured vs replayed.
#[derive(Debug, Clone, Serialize)]
pub struct RelayEndReport {
    /// The captured `end` (`None`: the app sent none).
    pub captured: Option<RelayEnd>,
    /// The replayed one.
    pub replayed: Option<RelayEnd>,
    /// Both absent, or both present with the same `handoffData`.
    pub matches: bool,
}

/// An `end` message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayEnd {
    /// Its `handoffData`, as written (`None`: absent).
    pub handoff_data: Option<String>,
    /// `relay_out` messages sent before it.
    pub after_relay_out: usize,
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
        let (socket, out) = if self.relay.is_some() {
            ("relay ", "relay_out")
        } else {
            ("stream", "ws_out")
        };
        let _ = writeln!(o, "{socket}   {} ({source}), {}", s.url, s.stream_sid);
        let _ = writeln!(
            o,
            "sent     {} of {} captured {out} messages",
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
        if let Some(r) = &self.relay {
            relay_lines(&mut o, r);
        }
        let captured = self.close.captured.as_ref().map_or(
            if self.relay.is_some() {
                "no relay_close (incomplete capture)"
            } else {
                "no ws_close (incomplete capture)"
            },
            |c| c.text.as_str(),
        );
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

/// A relay session's turns and `end`, one line each.
fn relay_lines(o: &mut String, r: &RelaySummary) {
    let quoted = |a: &Option<String>| {
        a.as_deref().map_or("no answer".to_string(), |a| {
            let cut: String = a.chars().take(80).collect();
            if cut.len() < a.len() {
                format!("\"{cut}…\"")
            } else {
                format!("\"{cut}\"")
            }
        })
    };
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    for t in &r.turns {
        let name = match &t.prompt {
            Some(p) => format!("turn {} \"{p}\"", t.turn),
            None if t.turn == 0 => "before the first prompt".to_string(),
            None => format!("turn {}", t.turn),
        };
        let answer = if t.answer_matches {
            format!("answer as captured ({})", quoted(&t.replayed_answer))
        } else {
            format!(
                "answer DIFFERS: {} (capture: {})",
                quoted(&t.replayed_answer),
                quoted(&t.captured_answer)
            )
        };
        let _ = writeln!(
            o,
            "{:<9}{name}: {answer}; first token {} (capture: {}){}",
            "turn",
            ms(t.replayed_first_token_ms),
            ms(t.captured_first_token_ms),
            if t.latency_matches {
                String::new()
            } else {
                format!(", off by more than {:.0} ms", r.latency_tolerance_ms)
            }
        );
    }
    let end = |e: &Option<RelayEnd>| match e {
        None => "no end".to_string(),
        Some(e) => match &e.handoff_data {
            Some(d) => format!("end with handoffData {d}"),
            None => "end without handoffData".to_string(),
        },
    };
    if r.end.matches {
        let _ = writeln!(o, "end      {} as captured", end(&r.end.replayed));
    } else {
        let _ = writeln!(
            o,
            "end      {} (capture: {})",
            end(&r.end.replayed),
            end(&r.end.captured)
        );
    }
}
