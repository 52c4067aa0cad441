//! Reading a `--capture` JSON-lines file (format: `docs/capture.md`) into the one call to
//! replay: its voice webhook exchange, its first stream and its first relay session, with every message's position
//! relative to the other direction's (file order is causal order, `t_ms` is pacing).
//!
//! The schema is `dialtone_protocol::capture`, the one the call engine writes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use dialtone_protocol::capture::{CaptureLine, CaptureRecord};

use crate::ReplayError;

type Line = CaptureLine<String>;
type Record = CaptureRecord<String>;

/// The captured voice webhook request.
#[derive(Debug, Clone)]
pub struct CapturedRequest {
    /// `POST` or `GET`.
    pub method: String,
    /// URL as sent (query included for GET).
    pub url: String,
    /// Form body (empty for GET).
    pub body: String,
}

/// The app's captured answer to it.
#[derive(Debug, Clone)]
pub struct CapturedResponse {
    /// HTTP status.
    pub status: u16,
    /// Declared Content-Type.
    pub content_type: String,
    /// Body text (the TwiML).
    pub body: String,
}

/// A message dialtone sent on the stream.
#[derive(Debug, Clone)]
pub struct Out {
    /// Milliseconds after the capture's `ws_open`.
    pub offset_ms: f64,
    /// The exact text.
    pub text: String,
    /// App messages captured before this one (for `--fast`'s causal waits).
    pub ins_before: usize,
}

/// A message the app sent on the stream.
#[derive(Debug, Clone)]
pub struct In {
    /// Milliseconds after the capture's `ws_open`.
    pub offset_ms: f64,
    /// The exact text.
    pub text: String,
    /// `ws_out` messages captured before it.
    pub after_out: usize,
}

/// How the captured stream closed.
#[derive(Debug, Clone)]
pub struct Close {
    /// `app`, `dialtone`, `dropped`, `stalled`.
    pub by: String,
    /// Close code, if any.
    pub code: Option<u16>,
    /// Milliseconds after the capture's `ws_open`.
    pub offset_ms: f64,
    /// `ws_out` messages captured before it.
    pub after_out: usize,
    /// App messages captured before it.
    pub ins_before: usize,
}

/// The captured stream to replay.
#[derive(Debug, Clone)]
pub struct CapturedStream {
    /// `MZ…`.
    pub stream_sid: String,
    /// URL it connected to.
    pub url: String,
    /// What dialtone sent, in order.
    pub outs: Vec<Out>,
    /// What the app sent, in order.
    pub ins: Vec<In>,
    /// Its close; `None` when the capture is incomplete.
    pub close: Option<Close>,
}

/// The captured ConversationRelay session to replay: its socket as a stream (`stream_sid`
/// is the session's `VX…`, `outs` the `relay_out` messages, `ins` the `relay_in` ones), and
/// its upgrade's outcome.
#[derive(Debug, Clone)]
pub struct CapturedRelay {
    /// The socket: URL, messages both ways, close.
    pub socket: CapturedStream,
    /// The upgrade's `X-Twilio-Signature` in the capture.
    pub signature: String,
    /// 101, the status the app refused the upgrade with, or `None` (no answer).
    pub status: Option<u16>,
    /// Why the upgrade failed, when it did.
    pub error: Option<String>,
    /// The close's reason (empty when none).
    pub close_reason: String,
}

/// One call of a capture file.
#[derive(Debug, Clone)]
pub struct CapturedCall {
    /// `CA…`.
    pub call_sid: String,
    /// The voice webhook request.
    pub request: CapturedRequest,
    /// The app's answer, if captured.
    pub response: Option<CapturedResponse>,
    /// The first stream of the call.
    pub stream: Option<CapturedStream>,
    /// Streams after the first (not replayed).
    pub other_streams: usize,
    /// The first ConversationRelay session of the call.
    pub relay: Option<CapturedRelay>,
    /// Relay sessions after the first (not replayed).
    pub other_relays: usize,
    /// Calls in the file (all of them, the chosen one included).
    pub calls_in_file: usize,
}

/// Largest `t_ms` accepted (about 31 years): any offset between two lines then converts to a
/// `Duration` and can be added to an `Instant` (a 1e300 used to panic the real-time replay).
const MAX_T_MS: f64 = 1e12;

/// Longest capture line read: the largest message a stream carries (1 MiB, the WebSocket
/// message limit) with every byte JSON-escaped (`\u00XX`, six bytes), and then some.
const MAX_LINE: usize = 8 << 20;

/// Reads `path` and picks the call `call_sid` (default: the first call in the file).
pub fn read(path: &Path, call_sid: Option<&str>) -> Result<CapturedCall, ReplayError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ReplayError::Io {
        path: shown.clone(),
        cause: e.to_string(),
    })?;
    read_from(BufReader::new(file), &shown, call_sid)
}

/// [`read`] from any reader (a file, or `&[u8]` for capture text already in memory);
/// `shown` names the source in errors.
pub fn read_from(
    reader: impl BufRead,
    shown: &str,
    call_sid: Option<&str>,
) -> Result<CapturedCall, ReplayError> {
    let shown = shown.to_string();
    let mut builder = Builder::default();
    let mut calls: Vec<String> = Vec::new();
    let mut reader = reader;
    let mut buf = Vec::new();
    for number in 1.. {
        let invalid = |cause: String| ReplayError::InvalidLine {
            path: shown.clone(),
            line: number,
            cause,
        };
        // Each line is read under a bound, so a file with no line breaks (`/dev/zero`)
        // costs at most MAX_LINE of memory, not all of it.
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| invalid(e.to_string()))?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE {
            return Err(invalid(format!(
                "longer than {} MiB (the longest a capture line can be)",
                MAX_LINE >> 20
            )));
        }
        let line = std::str::from_utf8(&buf).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line).map_err(|e| invalid(e.to_string()))?;
        if !(-MAX_T_MS..=MAX_T_MS).contains(&parsed.t_ms) {
            return Err(invalid(format!(
                "t_ms {} is out of range (at most {MAX_T_MS:e} ms)",
                parsed.t_ms
            )));
        }
        if !calls.contains(&parsed.call_sid) {
            calls.push(parsed.call_sid.clone());
        }
        let wanted = call_sid.unwrap_or(&calls[0]);
        if parsed.call_sid == wanted {
            builder.push(parsed);
        }
    }
    let Some(first) = calls.first() else {
        return Err(ReplayError::EmptyCapture { path: shown });
    };
    let sid = call_sid.unwrap_or(first).to_string();
    if !calls.contains(&sid) {
        let mut listed: Vec<&str> = calls.iter().take(5).map(String::as_str).collect();
        if calls.len() > 5 {
            listed.push("…");
        }
        return Err(ReplayError::NoSuchCall {
            path: shown,
            call_sid: sid,
            calls: listed.join(", "),
        });
    }
    builder.finish(shown, sid, calls.len())
}

#[derive(Default)]
struct Builder {
    request: Option<CapturedRequest>,
    response: Option<CapturedResponse>,
    /// The voice request's URL, to pair it with its response.
    awaiting_response: bool,
    stream: Option<CapturedStream>,
    /// `t_ms` of the replayed stream's `ws_open`.
    open_t: f64,
    other_streams: usize,
    relay: Option<CapturedRelay>,
    /// `t_ms` of the replayed relay session's `relay_open`.
    relay_open_t: f64,
    other_relays: usize,
}

impl Builder {
    fn push(&mut self, line: Line) {
        match line.record {
            Record::HttpRequest {
                purpose,
                method,
                url,
                body,
                ..
            } if purpose == "voice" && self.request.is_none() => {
                self.request = Some(CapturedRequest { method, url, body });
                self.awaiting_response = true;
            }
            Record::HttpRequest { .. } => self.awaiting_response = false,
            Record::HttpResponse {
                status,
                content_type,
                body,
                ..
            } if self.awaiting_response => {
                self.response = Some(CapturedResponse {
                    status,
                    content_type,
                    body,
                });
                self.awaiting_response = false;
            }
            Record::HttpResponse { .. } => {}
            Record::WsOpen { stream_sid, url } => {
                if self.stream.is_some() {
                    self.other_streams += 1;
                    return;
                }
                self.open_t = line.t_ms;
                self.stream = Some(CapturedStream {
                    stream_sid,
                    url,
                    outs: Vec::new(),
                    ins: Vec::new(),
                    close: None,
                });
            }
            Record::WsOut { stream_sid, text } => {
                let open_t = self.open_t;
                if let Some(s) = self.stream_mut(&stream_sid) {
                    s.outs.push(Out {
                        offset_ms: line.t_ms - open_t,
                        text,
                        ins_before: s.ins.len(),
                    });
                }
            }
            Record::WsIn { stream_sid, text } => {
                let open_t = self.open_t;
                if let Some(s) = self.stream_mut(&stream_sid) {
                    s.ins.push(In {
                        offset_ms: line.t_ms - open_t,
                        text,
                        after_out: s.outs.len(),
                    });
                }
            }
            Record::WsClose {
                stream_sid,
                by,
                code,
            } => {
                let open_t = self.open_t;
                if let Some(s) = self.stream_mut(&stream_sid) {
                    s.close = Some(Close {
                        by,
                        code,
                        offset_ms: line.t_ms - open_t,
                        after_out: s.outs.len(),
                        ins_before: s.ins.len(),
                    });
                }
            }
            relay @ (Record::RelayOpen { .. }
            | Record::RelayOut { .. }
            | Record::RelayIn { .. }
            | Record::RelayClose { .. }) => self.push_relay(line.t_ms, relay),
        }
    }

    /// The replayed relay session's socket, if `sid` is it and it has not closed yet.
    fn relay_mut(&mut self, sid: &str) -> Option<&mut CapturedRelay> {
        self.relay
            .as_mut()
            .filter(|r| r.socket.stream_sid == sid && r.socket.close.is_none())
    }

    /// One `relay_*` record: the first session's, with offsets from its `relay_open`.
    fn push_relay(&mut self, t_ms: f64, record: Record) {
        let offset_ms = t_ms - self.relay_open_t;
        match record {
            Record::RelayOpen {
                session_id,
                url,
                signature,
                status,
                error,
            } => {
                if self.relay.is_some() {
                    self.other_relays += 1;
                    return;
                }
                self.relay_open_t = t_ms;
                self.relay = Some(CapturedRelay {
                    socket: CapturedStream {
                        stream_sid: session_id,
                        url,
                        outs: Vec::new(),
                        ins: Vec::new(),
                        close: None,
                    },
                    signature,
                    status,
                    error,
                    close_reason: String::new(),
                });
            }
            Record::RelayOut { session_id, text } => {
                if let Some(r) = self.relay_mut(&session_id) {
                    let s = &mut r.socket;
                    s.outs.push(Out {
                        offset_ms,
                        text,
                        ins_before: s.ins.len(),
                    });
                }
            }
            Record::RelayIn { session_id, text } => {
                if let Some(r) = self.relay_mut(&session_id) {
                    let s = &mut r.socket;
                    s.ins.push(In {
                        offset_ms,
                        text,
                        after_out: s.outs.len(),
                    });
                }
            }
            Record::RelayClose {
                session_id,
                by,
                code,
                reason,
            } => {
                if let Some(r) = self.relay_mut(&session_id) {
                    r.close_reason = reason;
                    let s = &mut r.socket;
                    s.close = Some(Close {
                        by,
                        code,
                        offset_ms,
                        after_out: s.outs.len(),
                        ins_before: s.ins.len(),
                    });
                }
            }
            _ => {}
        }
    }

    /// The replayed stream, if `sid` is it and it has not closed yet.
    fn stream_mut(&mut self, sid: &str) -> Option<&mut CapturedStream> {
        self.stream
            .as_mut()
            .filter(|s| s.stream_sid == sid && s.close.is_none())
    }

    fn finish(
        self,
        path: String,
        call_sid: String,
        calls_in_file: usize,
    ) -> Result<CapturedCall, ReplayError> {
        let Some(request) = self.request else {
            return Err(ReplayError::NoVoiceRequest { path, call_sid });
        };
        Ok(CapturedCall {
            call_sid,
            request,
            response: self.response,
            stream: self.stream,
            other_streams: self.other_streams,
            relay: self.relay,
            other_relays: self.other_relays,
            calls_in_file,
        })
    }
}
