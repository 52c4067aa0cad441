//! Comparing the replay with the capture: the webhook answer, the app's messages index by
//! index, the stream's end and where it happened, timing drift; and the verdict.

use crate::ReplayOptions;
use crate::capture::{CapturedCall, CapturedStream};
use crate::report::{CloseReport, Divergence, Report, Side, StreamSummary, Timing, WebhookReport};
use crate::stream::{End, Run, WRITE_STALL};
use crate::timing::{timing, timing_divergence};
use crate::webhook::{Answer, normalize_authority};

/// Payloads longer than this are shown truncated.
const SHOW_MAX: usize = 240;

/// Builds the report.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
pub(crate) fn build(
    opts: &ReplayOptions,
    path: &str,
    cap: &CapturedCall,
    cs: &CapturedStream,
    answer: &Answer,
    webhook_url: &url::Url,
    stream_url: String,
    url_source: &'static str,
    run: Result<Run, u16>,
) -> Report {
    // Step 1: the webhook.
    let mut divergences = webhook_divergences(cap, answer, webhook_url);
    let mut notes = capture_notes(cap, webhook_url, url_source);
    let captured_side = captured_side(cs);

    let run = match run {
        Ok(run) => run,
        Err(status) => {
            let (divergence, replayed) = refused(status);
            divergences.push(divergence);
            return finish(
                opts,
                path,
                cap,
                cs,
                answer,
                (stream_url, url_source),
                None,
                CloseReport {
                    captured: captured_side,
                    replayed,
                    matches: false,
                },
                divergences,
                notes,
                Timing::default(),
            );
        }
    };

    // Steps 3–4: app messages index by index, then the end.
    let (matching, drift, message_div) = compare_messages(cs, &run, opts.ignore_payloads);
    // With --fast, sends wait for the app's captured messages, so where an identical message
    // lands among the caller's frames is causal, not jitter: a shift is a divergence of its
    // own, in timing rather than content. (In real time it shows as drift.)
    let (timing_div, timing_note) = if opts.fast {
        timing_divergence(cs, &run, message_div.as_ref().map(|(_, d)| d))
    } else {
        (None, None)
    };
    notes.extend(timing_note);
    let replayed = replayed_side(cs, &run, opts);
    let close_matches = close_matches(cs, &run);
    let close_div =
        (!close_matches).then(|| close_divergence(cs, &run, captured_side.as_ref(), &replayed));
    divergences.extend(stream_divergences(message_div, close_div, timing_div));

    if run.received_not_kept > 0 {
        notes.push(format!(
            "{} app messages past the captured count were counted but not kept",
            run.received_not_kept
        ));
    }
    let timing = timing(&drift, !opts.fast);
    let summary = StreamSummaryParts {
        sent: run.sent,
        received: run.received.len() + run.received_not_kept as usize,
        matching,
        binary: run.binary_frames,
    };
    finish(
        opts,
        path,
        cap,
        cs,
        answer,
        (stream_url, url_source),
        Some(summary),
        CloseReport {
            captured: captured_side,
            replayed,
            matches: close_matches,
        },
        divergences,
        notes,
        timing,
    )
}

/// The webhook's answer against the capture's: its HTTP status, then its TwiML (with the
/// capture's host:port read as the replay's).
pub(crate) fn webhook_divergences(
    cap: &CapturedCall,
    answer: &Answer,
    webhook_url: &url::Url,
) -> Vec<Divergence> {
    let mut divergences = Vec::new();
    let captured_status = cap.response.as_ref().map(|r| r.status);
    if captured_status != Some(answer.status) {
        divergences.push(Divergence {
            kind: "webhook_status",
            app_message: None,
            after_ws_out: None,
            captured: captured_status.map(|s| s.to_string()),
            replayed: Some(answer.status.to_string()),
            description: format!(
                "the webhook answered HTTP {} (capture: {})",
                answer.status,
                captured_status.map_or("no answer".to_string(), |s| s.to_string())
            ),
        });
    }
    let captured_twiml = captured_twiml(cap, webhook_url);
    if captured_twiml.as_deref() != Some(answer.body.as_str()) {
        divergences.push(Divergence {
            kind: "twiml",
            app_message: None,
            after_ws_out: None,
            captured: captured_twiml.as_deref().map(show),
            replayed: Some(show(&answer.body)),
            description: "the webhook's TwiML differs from the capture's".into(),
        });
    }
    divergences
}

/// The captured TwiML as the replay's webhook would write it: the capture's host:port
/// replaced by the replay's.
fn captured_twiml(cap: &CapturedCall, webhook_url: &url::Url) -> Option<String> {
    cap.response
        .as_ref()
        .map(|r| normalize_authority(&r.body, &cap.request.url, webhook_url))
}

/// What the reader should know about how the capture was replayed: a rewritten host:port,
/// a stream URL taken from the capture, and the calls and streams left out.
pub(crate) fn capture_notes(
    cap: &CapturedCall,
    webhook_url: &url::Url,
    url_source: &'static str,
) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(r) = &cap.response
        && captured_twiml(cap, webhook_url).as_deref() != Some(r.body.as_str())
    {
        notes.push(format!(
            "the captured TwiML was compared with {} in place of the capture's host:port",
            authority(webhook_url)
        ));
    }
    if url_source == "capture" {
        notes.push(if cap.stream.is_some() {
            "the new TwiML has no <Stream>; connected to the captured stream URL".to_string()
        } else {
            "the new TwiML has no <ConversationRelay>; connected to the captured relay URL"
                .to_string()
        });
    }
    if cap.calls_in_file > 1 {
        notes.push(format!(
            "the file holds {} calls; this is {} (pick another with --call-sid)",
            cap.calls_in_file, cap.call_sid
        ));
    }
    if cap.other_streams > 0 {
        notes.push(format!(
            "the call had {} more stream(s); only the first is replayed",
            cap.other_streams
        ));
    }
    if cap.stream.is_some() && cap.relay.is_some() {
        notes.push(
            "the call also had a ConversationRelay session; only the stream is replayed"
                .to_string(),
        );
    }
    if cap.other_relays > 0 {
        notes.push(format!(
            "the call had {} more ConversationRelay session(s); only the first is replayed",
            cap.other_relays
        ));
    }
    notes
}

/// How the captured stream ended, in words; `None` for a capture without its `ws_close`.
fn captured_side(cs: &CapturedStream) -> Option<Side> {
    cs.close.as_ref().map(|c| {
        let text = match c.by.as_str() {
            "app" => format!(
                "the app closed the socket ({}) after {}",
                code_words(c.code),
                out_words(cs, c.after_out)
            ),
            "dropped" => format!(
                "the app dropped the socket (no close frame) after {}",
                out_words(cs, c.after_out)
            ),
            "stalled" => format!(
                "the app stopped reading (a write blocked {} s) at {}",
                WRITE_STALL.as_secs(),
                out_words(cs, c.after_out)
            ),
            _ if c.code.is_none() => format!(
                "the app kept the socket open; dialtone dropped the connection (no close \
                 frame) after {}",
                out_words(cs, c.after_out)
            ),
            _ => format!(
                "the app kept the socket open; dialtone closed it ({}) after {}",
                code_words(c.code),
                out_words(cs, c.after_out)
            ),
        };
        Side {
            by: c.by.clone(),
            code: c.code,
            after_ws_out: c.after_out,
            text,
        }
    })
}

/// The divergence and the replayed end when the app refused the stream's upgrade with
/// HTTP `status`.
fn refused(status: u16) -> (Divergence, Side) {
    let divergence = Divergence {
        kind: "upgrade",
        app_message: None,
        after_ws_out: Some(0),
        captured: Some("101".into()),
        replayed: Some(status.to_string()),
        description: format!(
            "the app refused the stream's WebSocket upgrade with HTTP {status} \
             (capture: connected)"
        ),
    };
    let replayed = Side {
        by: "refused".into(),
        code: None,
        after_ws_out: 0,
        text: format!("the app refused the upgrade (HTTP {status})"),
    };
    (divergence, replayed)
}

/// Whether the replay ended as the capture did: the same side, code and (for an end the
/// app caused) the same `ws_out` position.
fn close_matches(cs: &CapturedStream, run: &Run) -> bool {
    match (&cs.close, run.end) {
        (None, End::DialtoneClosed(_)) => true,
        (None, _) => false,
        (Some(c), end) => {
            let at = c.after_out == run.end_after_out;
            match (c.by.as_str(), end) {
                ("dialtone", End::DialtoneClosed(code)) => c.code == code,
                ("app", End::AppClosed(code)) => at && c.code == code,
                ("dropped", End::Dropped) | ("stalled", End::Stalled) => at,
                _ => false,
            }
        }
    }
}

/// The divergence of an end that differs, at the earlier of the two ends' `ws_out`
/// positions.
fn close_divergence(
    cs: &CapturedStream,
    run: &Run,
    captured_side: Option<&Side>,
    replayed: &Side,
) -> (usize, Divergence) {
    let captured = captured_side.map_or("no ws_close (incomplete capture)".to_string(), |c| {
        c.text.clone()
    });
    (
        run.end_after_out
            .min(cs.close.as_ref().map_or(usize::MAX, |c| c.after_out)),
        Divergence {
            kind: "close",
            app_message: None,
            after_ws_out: Some(run.end_after_out),
            captured: None,
            replayed: None,
            description: format!("{} (capture: {captured})", replayed.text),
        },
    )
}

/// The stream's divergences in the order they happened: a missing or extra message caused
/// by an earlier close is reported after that close.
fn stream_divergences(
    message_div: Option<(usize, Divergence)>,
    close_div: Option<(usize, Divergence)>,
    timing_div: Option<(usize, Divergence)>,
) -> impl Iterator<Item = Divergence> {
    let mut stream_divs: Vec<(usize, u8, Divergence)> = Vec::new();
    if let Some((at, d)) = message_div {
        let tie = if d.captured.is_some() && d.replayed.is_some() {
            0
        } else {
            2
        };
        stream_divs.push((at, tie, d));
    }
    if let Some((at, d)) = close_div {
        stream_divs.push((at, 1, d));
    }
    if let Some((at, d)) = timing_div {
        stream_divs.push((at, 0, d));
    }
    stream_divs.sort_by_key(|(at, tie, _)| (*at, *tie));
    stream_divs.into_iter().map(|(_, _, d)| d)
}

/// App messages compared index by index: how many are identical, the drift of those, and
/// the first difference with the `ws_out` position it happened at.
fn compare_messages(
    cs: &CapturedStream,
    run: &Run,
    ignore_payloads: bool,
) -> (usize, Vec<f64>, Option<(usize, Divergence)>) {
    let same = |a: &str, b: &str| {
        if ignore_payloads {
            a == b || shape(a) == shape(b)
        } else {
            a == b
        }
    };
    let mut matching = 0;
    let mut drift = Vec::new();
    let mut message_div: Option<(usize, Divergence)> = None;
    for i in 0..cs.ins.len().max(run.received.len()) {
        let (c, r) = (cs.ins.get(i), run.received.get(i));
        let div = match (c, r) {
            (Some(c), Some(r)) if same(&c.text, &r.text) => {
                matching += 1;
                drift.push(r.offset_ms - c.offset_ms);
                continue;
            }
            (Some(c), Some(r)) => (
                c.after_out.min(r.after_out),
                Divergence {
                    kind: "app_message",
                    app_message: Some(i + 1),
                    after_ws_out: Some(r.after_out),
                    captured: Some(show(&c.text)),
                    replayed: Some(show(&r.text)),
                    description: format!(
                        "app message #{} differs (received after ws_out #{}; capture: after #{})",
                        i + 1,
                        r.after_out,
                        c.after_out
                    ),
                },
            ),
            (Some(c), None) => (
                c.after_out,
                Divergence {
                    kind: "app_message",
                    app_message: Some(i + 1),
                    after_ws_out: Some(c.after_out),
                    captured: Some(show(&c.text)),
                    replayed: None,
                    description: format!(
                        "app message #{} never came (capture: after ws_out #{}); the app sent {} \
                         messages, the capture holds {}",
                        i + 1,
                        c.after_out,
                        run.received.len(),
                        cs.ins.len()
                    ),
                },
            ),
            (None, Some(r)) => (
                r.after_out,
                Divergence {
                    kind: "app_message",
                    app_message: Some(i + 1),
                    after_ws_out: Some(r.after_out),
                    captured: None,
                    replayed: Some(show(&r.text)),
                    description: format!(
                        "extra app message #{} after ws_out #{} (the capture holds {} app messages)",
                        i + 1,
                        r.after_out,
                        cs.ins.len()
                    ),
                },
            ),
            (None, None) => unreachable!("i is below the longer length"),
        };
        if message_div.is_none() {
            message_div = Some(div);
        }
    }

    (matching, drift, message_div)
}

pub(crate) struct StreamSummaryParts {
    pub(crate) sent: usize,
    pub(crate) received: usize,
    pub(crate) matching: usize,
    pub(crate) binary: u64,
}

#[allow(clippy::too_many_arguments)] // the report's parts, gathered by `build`
pub(crate) fn finish(
    opts: &ReplayOptions,
    path: &str,
    cap: &CapturedCall,
    cs: &CapturedStream,
    answer: &Answer,
    (stream_url, url_source): (String, &'static str),
    parts: Option<StreamSummaryParts>,
    close: CloseReport,
    divergences: Vec<Divergence>,
    notes: Vec<String>,
    timing: Timing,
) -> Report {
    let matches = divergences.is_empty();
    let reproduced = close.matches;
    let captured_text = close
        .captured
        .as_ref()
        .map_or("the capture has no ws_close", |c| c.text.as_str());
    let verdict = match (reproduced, divergences.first()) {
        (true, None) => format!("REPRODUCED: {captured_text}, as in the capture"),
        (true, Some(d)) if divergences.iter().all(|d| d.kind == "timing") => format!(
            "OUTCOME REPRODUCED ({captured_text}); the app's answers match in content but not \
             in timing: {}",
            d.description
        ),
        (true, Some(d)) => format!(
            "OUTCOME REPRODUCED ({captured_text}), but the app's answers diverged: {}",
            d.description
        ),
        (false, _) => format!(
            "NOT REPRODUCED: in the capture {captured_text}; in the replay {}",
            close.replayed.text
        ),
    };
    Report {
        capture: path.to_string(),
        call_sid: cap.call_sid.clone(),
        pacing: if opts.fast { "fast" } else { "real-time" },
        ignore_payloads: opts.ignore_payloads,
        webhook: WebhookReport {
            method: cap.request.method.to_uppercase(),
            url: answer.url.clone(),
            captured_status: cap.response.as_ref().map(|r| r.status),
            status: answer.status,
            content_type: answer.content_type.clone(),
            twiml_matches: !divergences.iter().any(|d| d.kind == "twiml"),
        },
        stream: StreamSummary {
            url: stream_url,
            url_source,
            stream_sid: cs.stream_sid.clone(),
            upgrade_refused: close
                .replayed
                .by
                .eq("refused")
                .then(|| divergences.iter().find(|d| d.kind == "upgrade"))
                .flatten()
                .and_then(|d| d.replayed.as_deref()?.parse().ok()),
            ws_out_captured: cs.outs.len(),
            ws_out_sent: parts.as_ref().map_or(0, |p| p.sent),
            app_messages_captured: cs.ins.len(),
            app_messages_received: parts.as_ref().map_or(0, |p| p.received),
            app_messages_matching: parts.as_ref().map_or(0, |p| p.matching),
            binary_frames: parts.as_ref().map_or(0, |p| p.binary),
        },
        close,
        divergences,
        timing,
        matches,
        reproduced,
        verdict,
        notes,
        relay: None,
    }
}

fn replayed_side(cs: &CapturedStream, run: &Run, opts: &ReplayOptions) -> Side {
    let at = run.end_after_out;
    let (by, code, text) = match run.end {
        End::AppClosed(code) => (
            "app",
            code,
            format!(
                "the app closed the socket ({}) after {}",
                code_words(code),
                out_words(cs, at)
            ),
        ),
        End::Dropped => (
            "dropped",
            None,
            format!(
                "the app dropped the socket (no close frame) after {}",
                out_words(cs, at)
            ),
        ),
        End::Stalled => (
            "stalled",
            None,
            format!(
                "the app stopped reading (a write blocked {} s) at {}",
                WRITE_STALL.as_secs(),
                out_words(cs, at)
            ),
        ),
        End::DialtoneClosed(Some(code)) => (
            "dialtone",
            Some(code),
            format!(
                "the app kept the socket open; dialtone closed it ({}) after {}",
                code_words(Some(code)),
                out_words(cs, at)
            ),
        ),
        End::DialtoneClosed(None) => (
            "dialtone",
            None,
            format!(
                "the app kept the socket open; dialtone dropped the connection (no close \
                 frame) after {}",
                out_words(cs, at)
            ),
        ),
        End::KeptOpen => (
            "kept_open",
            None,
            format!(
                "the app kept the socket open (through {} and a {} ms grace)",
                out_words(cs, at),
                opts.grace.as_millis()
            ),
        ),
    };
    Side {
        by: by.to_string(),
        code,
        after_ws_out: at,
        text,
    }
}

/// "ws_out #58 (media, sequenceNumber 57)": the position and what the message was.
fn out_words(cs: &CapturedStream, n: usize) -> String {
    let Some(out) = n.checked_sub(1).and_then(|i| cs.outs.get(i)) else {
        return format!("ws_out #{n} (none sent)");
    };
    let v: Option<serde_json::Value> = serde_json::from_str(&out.text).ok();
    let event = v
        .as_ref()
        .and_then(|v| v["event"].as_str().map(str::to_string));
    let seq = v
        .as_ref()
        .and_then(|v| v["sequenceNumber"].as_str().map(str::to_string));
    match (event, seq) {
        (Some(e), Some(s)) => format!("ws_out #{n} ({e}, sequenceNumber {s})"),
        (Some(e), None) => format!("ws_out #{n} ({e})"),
        _ => format!("ws_out #{n}"),
    }
}

pub(crate) fn code_words(code: Option<u16>) -> String {
    code.map_or("no code".to_string(), |c| format!("code {c}"))
}

fn authority(u: &url::Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_string(),
    }
}

/// A message with its `media.payload` blanked, for `--ignore-payloads`: apps' audio is often
/// not deterministic, their framing is. Non-JSON text compares as itself.
fn shape(text: &str) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["event"] == "media"
        && let Some(p) = v.get_mut("media").and_then(|m| m.get_mut("payload"))
    {
        *p = serde_json::Value::String(String::new());
    }
    Some(v)
}

/// Long payloads cut to [`SHOW_MAX`] characters, with the full length.
pub(crate) fn show(text: &str) -> String {
    if text.chars().count() <= SHOW_MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(SHOW_MAX).collect();
    format!("{cut}… ({} bytes)", text.len())
}
