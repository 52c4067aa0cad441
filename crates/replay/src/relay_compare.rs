//! Comparing a replayed ConversationRelay session with the capture's: the sequence of the
//! app's message types, its answer (the `text` tokens joined) to each caller turn, its `end`
//! and `handoffData`, the first-token latency after each prompt (against a tolerance), and
//! how the socket ended.

use crate::ReplayOptions;
use crate::capture::{CapturedCall, CapturedRelay, Out};
use crate::compare::{
    StreamSummaryParts, capture_notes, code_words, finish, show, webhook_divergences,
};
use crate::relay::{RelayRun, captured_end};
use crate::report::{
    CloseReport, Divergence, RelayEnd, RelayEndReport, RelaySummary, RelayTurnReport, Report, Side,
    Timing,
};
use crate::stream::{End, WRITE_STALL};
use crate::timing::timing;
use crate::webhook::Answer;

/// A relay message's `type`: `text`, `end`…, or `(not JSON)` / `(no type)`.
pub(crate) fn message_type(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Err(_) => "(not JSON)".into(),
        Ok(v) => v["type"]
            .as_str()
            .map_or("(no type)".into(), str::to_string),
    }
}

/// One app message as the comparison sees it.
struct Msg<'a> {
    text: &'a str,
    kind: String,
    /// `relay_out` messages before it.
    after_out: usize,
    /// Its time: from the socket's opening.
    offset_ms: f64,
}

/// One side's answers: per turn, the joined tokens and the first token's time.
#[derive(Default, Clone)]
struct TurnAnswer {
    text: Option<String>,
    first_ms: Option<f64>,
}

/// Builds the report of a relay replay.
#[allow(clippy::too_many_arguments)] // one call site, as `compare::build`
pub(crate) fn build(
    opts: &ReplayOptions,
    path: &str,
    cap: &CapturedCall,
    cr: &CapturedRelay,
    answer: &Answer,
    webhook_url: &url::Url,
    relay_url: String,
    url_source: &'static str,
    run: Result<RelayRun, u16>,
) -> Report {
    let cs = &cr.socket;
    let mut divergences: Vec<(usize, u8, Divergence)> =
        webhook_divergences(cap, answer, webhook_url)
            .into_iter()
            .map(|d| (0, 0, d))
            .collect();
    let mut notes = capture_notes(cap, webhook_url, url_source);
    let captured_side = captured_side(cr);
    let tolerance_ms = opts.latency_tolerance.as_secs_f64() * 1e3;
    let prompts = final_prompts(&cs.outs);
    let captured: Vec<Msg<'_>> = cs
        .ins
        .iter()
        .map(|i| Msg {
            text: &i.text,
            kind: message_type(&i.text),
            after_out: i.after_out,
            offset_ms: i.offset_ms,
        })
        .collect();
    let captured_end = end_of(&captured);

    let run = match run {
        Ok(run) => run,
        Err(status) => {
            let refused_in_capture = cr.status.is_some_and(|s| s != 101);
            let replayed = Side {
                by: "refused".into(),
                code: None,
                after_ws_out: 0,
                text: format!("the app refused the relay upgrade (HTTP {status})"),
            };
            let matches = refused_in_capture && cr.status == Some(status);
            if !matches {
                divergences.push((
                    0,
                    0,
                    Divergence {
                        kind: "upgrade",
                        app_message: None,
                        after_ws_out: Some(0),
                        captured: Some(cr.status.map_or("no answer".into(), |s| s.to_string())),
                        replayed: Some(status.to_string()),
                        description: format!(
                            "the app refused the relay socket's upgrade with HTTP {status} \
                             (capture: {})",
                            captured_side
                                .as_ref()
                                .map_or("connected", |s| s.text.as_str())
                        ),
                    },
                ));
            }
            let summary = RelaySummary {
                session_id: cs.stream_sid.clone(),
                captured_types: captured.iter().map(|m| m.kind.clone()).collect(),
                replayed_types: Vec::new(),
                turns: Vec::new(),
                end: RelayEndReport {
                    matches: captured_end.is_none(),
                    captured: captured_end,
                    replayed: None,
                },
                latency_tolerance_ms: tolerance_ms,
            };
            let close = CloseReport {
                captured: captured_side,
                replayed,
                matches,
            };
            return done(
                opts,
                path,
                cap,
                cr,
                answer,
                (relay_url, url_source),
                None,
                close,
                divergences,
                notes,
                Timing::default(),
                summary,
            );
        }
    };

    let replayed: Vec<Msg<'_>> = run
        .received
        .iter()
        .map(|r| Msg {
            text: &r.text,
            kind: message_type(&r.text),
            after_out: r.after_out,
            offset_ms: r.offset_ms,
        })
        .collect();
    let turn_words = |after_out: usize| turn_words(cs, &prompts, after_out);

    // Identical messages, index by index, give the drift.
    let mut matching = 0;
    let mut drift = Vec::new();
    for (c, r) in captured.iter().zip(&replayed) {
        if c.text == r.text {
            matching += 1;
            drift.push(r.offset_ms - c.offset_ms);
        }
    }
    // The sequence of message types, a run of `text` tokens counting as one (how an answer is
    // cut into tokens is the answers' comparison, below).
    let (cap_runs, rep_runs) = (type_runs(&captured), type_runs(&replayed));
    let mut type_div = None;
    for k in 0..cap_runs.len().max(rep_runs.len()) {
        let c = cap_runs.get(k).map(|&i| &captured[i]);
        let r = rep_runs.get(k).map(|&i| &replayed[i]);
        // The app message's number: the replay's, or the capture's when the replay has none.
        let i = rep_runs.get(k).or(cap_runs.get(k)).copied().unwrap_or(0);
        type_div = match (c, r) {
            (Some(c), Some(r)) if c.kind == r.kind => None,
            (Some(c), Some(r)) => Some((
                c.after_out.min(r.after_out),
                Divergence {
                    kind: "app_message",
                    app_message: Some(i + 1),
                    after_ws_out: Some(r.after_out),
                    captured: Some(show(c.text)),
                    replayed: Some(show(r.text)),
                    description: format!(
                        "app message #{} is `{}` (capture: `{}`), {}",
                        i + 1,
                        r.kind,
                        c.kind,
                        turn_words(r.after_out)
                    ),
                },
            )),
            (Some(c), None) => Some((
                c.after_out,
                Divergence {
                    kind: "app_message",
                    app_message: Some(i + 1),
                    after_ws_out: Some(c.after_out),
                    captured: Some(show(c.text)),
                    replayed: None,
                    description: format!(
                        "app message #{} (`{}`, {}) never came; the app sent {} messages, the \
                         capture holds {}",
                        i + 1,
                        c.kind,
                        turn_words(c.after_out),
                        replayed.len(),
                        captured.len()
                    ),
                },
            )),
            (None, Some(r)) => Some((
                r.after_out,
                Divergence {
                    kind: "app_message",
                    app_message: Some(i + 1),
                    after_ws_out: Some(r.after_out),
                    captured: None,
                    replayed: Some(show(r.text)),
                    description: format!(
                        "extra app message #{} (`{}`), {} (the capture holds {} app messages)",
                        i + 1,
                        r.kind,
                        turn_words(r.after_out),
                        captured.len()
                    ),
                },
            )),
            (None, None) => None,
        };
        if type_div.is_some() {
            break;
        }
    }
    if let Some((at, d)) = type_div {
        divergences.push((at, 1, d));
    }

    // Answers and first-token latencies, turn by turn.
    let prompt_at_captured: Vec<f64> = prompts.iter().map(|&p| cs.outs[p].offset_ms).collect();
    let prompt_at_replayed: Vec<Option<f64>> = prompts
        .iter()
        .map(|&p| run.sent_at.get(p).copied())
        .collect();
    let cap_answers = answers(&captured, &prompts);
    let rep_answers = answers(&replayed, &prompts);
    let mut turns = Vec::new();
    for turn in 0..=prompts.len() {
        let c = cap_answers.get(turn).cloned().unwrap_or_default();
        let r = rep_answers.get(turn).cloned().unwrap_or_default();
        if turn == 0 && c.text.is_none() && r.text.is_none() {
            continue;
        }
        let since = |at: Option<f64>, first: Option<f64>| {
            let from = if turn == 0 { Some(0.0) } else { at };
            Some(round(first? - from?))
        };
        let captured_ms = since(
            turn.checked_sub(1).map(|t| prompt_at_captured[t]),
            c.first_ms,
        );
        let replayed_ms = since(
            turn.checked_sub(1).and_then(|t| prompt_at_replayed[t]),
            r.first_ms,
        );
        let latency_matches = match (captured_ms, replayed_ms) {
            (Some(a), Some(b)) => (b - a).abs() <= tolerance_ms,
            _ => true,
        };
        turns.push(RelayTurnReport {
            turn,
            prompt: turn
                .checked_sub(1)
                .and_then(|t| prompt_words(&cs.outs[prompts[t]].text)),
            answer_matches: c.text == r.text,
            captured_answer: c.text,
            replayed_answer: r.text,
            captured_first_token_ms: captured_ms,
            replayed_first_token_ms: replayed_ms,
            latency_matches,
        });
    }
    let turn_at = |t: &RelayTurnReport| t.turn.checked_sub(1).map_or(0, |i| prompts[i] + 1);
    if let Some(t) = turns.iter().find(|t| !t.answer_matches) {
        let what = match (&t.captured_answer, &t.replayed_answer) {
            (Some(_), Some(_)) => "the app's answer differs".to_string(),
            (Some(_), None) => "the app did not answer (the capture has an answer)".to_string(),
            _ => "the app answered (the capture has no answer)".to_string(),
        };
        divergences.push((
            turn_at(t),
            2,
            Divergence {
                kind: "answer",
                app_message: None,
                after_ws_out: Some(turn_at(t)),
                captured: t.captured_answer.as_deref().map(show),
                replayed: t.replayed_answer.as_deref().map(show),
                description: format!("{}: {what}", turn_name(t)),
            },
        ));
    }

    // The app's `end`.
    let replayed_end = end_of(&replayed);
    let end_matches = match (&captured_end, &replayed_end) {
        (None, None) => true,
        (Some(c), Some(r)) => c.handoff_data == r.handoff_data,
        _ => false,
    };
    if !end_matches {
        let data = |e: &RelayEnd| {
            e.handoff_data
                .as_deref()
                .map_or("no handoffData".to_string(), |d| {
                    format!("handoffData {}", show(d))
                })
        };
        let (at, description) = match (&captured_end, &replayed_end) {
            (Some(c), Some(r)) => (
                c.after_relay_out.min(r.after_relay_out),
                format!(
                    "the app's end carries {} (capture: {}), {}",
                    data(r),
                    data(c),
                    turn_words(r.after_relay_out)
                ),
            ),
            (Some(c), None) => (
                c.after_relay_out,
                format!(
                    "the app never sent end (capture: end with {}, {})",
                    data(c),
                    turn_words(c.after_relay_out)
                ),
            ),
            (None, Some(r)) => (
                r.after_relay_out,
                format!(
                    "the app sent end with {}, {} (the capture has no end)",
                    data(r),
                    turn_words(r.after_relay_out)
                ),
            ),
            (None, None) => unreachable!("both absent matches"),
        };
        divergences.push((
            at,
            3,
            Divergence {
                kind: "end",
                app_message: None,
                after_ws_out: Some(at),
                captured: captured_end.as_ref().map(data),
                replayed: replayed_end.as_ref().map(data),
                description,
            },
        ));
    }

    // First-token latency beyond the tolerance.
    let late: Vec<&RelayTurnReport> = turns.iter().filter(|t| !t.latency_matches).collect();
    if let Some(t) = late.first() {
        let (c, r) = (
            t.captured_first_token_ms.unwrap_or(0.0),
            t.replayed_first_token_ms.unwrap_or(0.0),
        );
        let mut description = format!(
            "timing divergence: {}: the app's first token came {r:.1} ms after the prompt \
             (capture: {c:.1} ms, {:+.1} ms), beyond the {tolerance_ms:.0} ms tolerance{}",
            turn_name(t),
            r - c,
            if t.answer_matches {
                "; the answer matches"
            } else {
                ""
            }
        );
        if late.len() > 1 {
            let most = late
                .iter()
                .map(|t| {
                    (t.replayed_first_token_ms.unwrap_or(0.0)
                        - t.captured_first_token_ms.unwrap_or(0.0))
                    .abs()
                })
                .fold(0.0, f64::max);
            description.push_str(&format!(
                "; {} of {} turns off, by up to {most:.1} ms",
                late.len(),
                turns.len()
            ));
        }
        divergences.push((
            turn_at(t),
            4,
            Divergence {
                kind: "timing",
                app_message: None,
                after_ws_out: Some(turn_at(t)),
                captured: Some(format!("{c:.1} ms")),
                replayed: Some(format!("{r:.1} ms")),
                description,
            },
        ));
    }

    // The socket's end.
    let replayed_side = replayed_side(cr, &run, opts);
    let close_matches = close_matches(cr, &run);
    if !close_matches {
        let captured = captured_side
            .as_ref()
            .map_or("no relay_close (incomplete capture)".to_string(), |c| {
                c.text.clone()
            });
        divergences.push((
            run.end_after_out
                .min(cs.close.as_ref().map_or(usize::MAX, |c| c.after_out)),
            5,
            Divergence {
                kind: "close",
                app_message: None,
                after_ws_out: Some(run.end_after_out),
                captured: None,
                replayed: None,
                description: format!("{} (capture: {captured})", replayed_side.text),
            },
        ));
    }
    if run.received_not_kept > 0 {
        notes.push(format!(
            "{} app messages past the captured count were counted but not kept",
            run.received_not_kept
        ));
    }
    let summary = RelaySummary {
        session_id: cs.stream_sid.clone(),
        captured_types: captured.iter().map(|m| m.kind.clone()).collect(),
        replayed_types: replayed.iter().map(|m| m.kind.clone()).collect(),
        turns,
        end: RelayEndReport {
            captured: captured_end,
            replayed: replayed_end,
            matches: end_matches,
        },
        latency_tolerance_ms: tolerance_ms,
    };
    let parts = StreamSummaryParts {
        sent: run.sent,
        received: run.received.len() + run.received_not_kept as usize,
        matching,
        binary: run.binary_frames,
    };
    done(
        opts,
        path,
        cap,
        cr,
        answer,
        (relay_url, url_source),
        Some(parts),
        CloseReport {
            captured: captured_side,
            replayed: replayed_side,
            matches: close_matches,
        },
        divergences,
        notes,
        timing(&drift, !opts.fast),
        summary,
    )
}

/// The report, the divergences in the order they happened (webhook first).
#[allow(clippy::too_many_arguments)] // the report's parts, gathered by `build`
fn done(
    opts: &ReplayOptions,
    path: &str,
    cap: &CapturedCall,
    cr: &CapturedRelay,
    answer: &Answer,
    url: (String, &'static str),
    parts: Option<StreamSummaryParts>,
    close: CloseReport,
    mut divergences: Vec<(usize, u8, Divergence)>,
    notes: Vec<String>,
    timing: Timing,
    summary: RelaySummary,
) -> Report {
    // Webhook divergences (tie 0) come first; the session's by position, then kind.
    divergences.sort_by_key(|(at, tie, _)| (*tie > 0, *at, *tie));
    let divergences = divergences.into_iter().map(|(_, _, d)| d).collect();
    let mut report = finish(
        opts,
        path,
        cap,
        &cr.socket,
        answer,
        url,
        parts,
        close,
        divergences,
        notes,
        timing,
    );
    report.relay = Some(summary);
    report
}

/// Indices of the messages that start a run of one type (`text` tokens in a row are one run;
/// every other message is its own).
fn type_runs(msgs: &[Msg<'_>]) -> Vec<usize> {
    (0..msgs.len())
        .filter(|&i| i == 0 || msgs[i].kind != "text" || msgs[i - 1].kind != "text")
        .collect()
}

/// Indices of the final prompts (`last: true`) among dialtone's messages: each opens a turn.
fn final_prompts(outs: &[Out]) -> Vec<usize> {
    outs.iter()
        .enumerate()
        .filter(|(_, o)| {
            serde_json::from_str::<serde_json::Value>(&o.text)
                .is_ok_and(|v| v["type"] == "prompt" && v["last"] != false)
        })
        .map(|(i, _)| i)
        .collect()
}

/// The turn a message sent after `after_out` relay_out messages belongs to.
fn turn_of(prompts: &[usize], after_out: usize) -> usize {
    prompts.iter().filter(|&&p| p < after_out).count()
}

fn prompt_words(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v["voicePrompt"].as_str().map(str::to_string)
}

/// "in turn 2 (after the prompt "what time is it", relay_out #7)", or "before the first
/// prompt (after relay_out #1 (setup))".
fn turn_words(cs: &crate::capture::CapturedStream, prompts: &[usize], after_out: usize) -> String {
    match turn_of(prompts, after_out) {
        0 => format!(
            "before the first prompt (after {})",
            out_words(cs, after_out)
        ),
        t => {
            let p = prompts[t - 1];
            let words = prompt_words(&cs.outs[p].text).unwrap_or_default();
            format!(
                "in turn {t} (answering the prompt {}, relay_out #{})",
                show_quoted(&words),
                p + 1
            )
        }
    }
}

fn turn_name(t: &RelayTurnReport) -> String {
    match &t.prompt {
        None if t.turn == 0 => "before the first prompt".to_string(),
        None => format!("turn {}", t.turn),
        Some(p) => format!("turn {} (prompt {})", t.turn, show_quoted(p)),
    }
}

fn show_quoted(s: &str) -> String {
    format!("\"{}\"", show(s))
}

/// Per turn, the `text` tokens joined and the first one's time.
fn answers(msgs: &[Msg<'_>], prompts: &[usize]) -> Vec<TurnAnswer> {
    let mut out = vec![TurnAnswer::default(); prompts.len() + 1];
    for m in msgs.iter().filter(|m| m.kind == "text") {
        let token = serde_json::from_str::<serde_json::Value>(m.text)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_string))
            .unwrap_or_default();
        let a = &mut out[turn_of(prompts, m.after_out)];
        a.first_ms.get_or_insert(m.offset_ms);
        a.text.get_or_insert_with(String::new).push_str(&token);
    }
    out
}

/// The first `end` message, with its `handoffData` (a string as written; any other JSON as
/// its text).
fn end_of(msgs: &[Msg<'_>]) -> Option<RelayEnd> {
    let m = msgs.iter().find(|m| m.kind == "end")?;
    let v: serde_json::Value = serde_json::from_str(m.text).ok()?;
    let handoff_data = match &v["handoffData"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    Some(RelayEnd {
        handoff_data,
        after_relay_out: m.after_out,
    })
}

/// "relay_out #5 (prompt)".
fn out_words(cs: &crate::capture::CapturedStream, n: usize) -> String {
    let Some(out) = n.checked_sub(1).and_then(|i| cs.outs.get(i)) else {
        return format!("relay_out #{n} (none sent)");
    };
    format!("relay_out #{n} ({})", message_type(&out.text))
}

/// How the captured session's socket ended, in words.
fn captured_side(cr: &CapturedRelay) -> Option<Side> {
    if let Some(status) = cr.status.filter(|s| *s != 101) {
        return Some(Side {
            by: "refused".into(),
            code: None,
            after_ws_out: 0,
            text: format!("the app refused the relay upgrade (HTTP {status})"),
        });
    }
    let cs = &cr.socket;
    let c = cs.close.as_ref()?;
    let text = side_words(
        cr,
        &c.by,
        c.code,
        c.after_out,
        captured_end(cr),
        Some(&cr.close_reason),
        0,
    );
    Some(Side {
        by: c.by.clone(),
        code: c.code,
        after_ws_out: c.after_out,
        text,
    })
}

fn replayed_side(cr: &CapturedRelay, run: &RelayRun, opts: &ReplayOptions) -> Side {
    let (by, code) = match run.end {
        End::AppClosed(code) => ("app", code),
        End::Dropped => ("dropped", None),
        End::Stalled => ("stalled", None),
        End::DialtoneClosed(code) => ("dialtone", code),
        End::KeptOpen => ("kept_open", None),
    };
    let text = side_words(
        cr,
        by,
        code,
        run.end_after_out,
        run.app_sent_end,
        None,
        opts.grace.as_millis(),
    );
    Side {
        by: by.to_string(),
        code,
        after_ws_out: run.end_after_out,
        text,
    }
}

fn side_words(
    cr: &CapturedRelay,
    by: &str,
    code: Option<u16>,
    at: usize,
    app_sent_end: bool,
    reason: Option<&str>,
    grace_ms: u128,
) -> String {
    let cs = &cr.socket;
    let reason = reason
        .filter(|r| !r.is_empty())
        .map_or(String::new(), |r| format!(", \"{r}\""));
    match by {
        "dialtone" if app_sent_end => format!(
            "the app sent end; dialtone closed the socket ({}) after {}",
            code_words(code),
            out_words(cs, at)
        ),
        "dialtone" => format!(
            "the app kept the socket open; dialtone closed it ({}{reason}) after {}",
            code_words(code),
            out_words(cs, at)
        ),
        "app" => format!(
            "the app closed the socket ({}{reason}) after {}",
            code_words(code),
            out_words(cs, at)
        ),
        "dropped" => format!(
            "the app dropped the socket (no close frame) after {}",
            out_words(cs, at)
        ),
        "stalled" => format!(
            "the app stopped reading (a write blocked {} s) at {}",
            WRITE_STALL.as_secs(),
            out_words(cs, at)
        ),
        _ => format!(
            "the app kept the socket open (through {} and a {grace_ms} ms grace)",
            out_words(cs, at)
        ),
    }
}

/// Whether the replayed session ended as the captured one did: the same side and code,
/// after the same `relay_out`, with (or without) the app's `end` before it.
fn close_matches(cr: &CapturedRelay, run: &RelayRun) -> bool {
    if cr.status.is_some_and(|s| s != 101) {
        // The capture's upgrade was refused; this one opened.
        return false;
    }
    let Some(c) = &cr.socket.close else {
        return matches!(run.end, End::DialtoneClosed(_));
    };
    let same_end = captured_end(cr) == run.app_sent_end;
    let at = c.after_out == run.end_after_out;
    at && same_end
        && match (c.by.as_str(), run.end) {
            ("dialtone", End::DialtoneClosed(code)) => c.code == code,
            ("app", End::AppClosed(code)) => c.code == code,
            ("dropped", End::Dropped) => true,
            _ => false,
        }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
