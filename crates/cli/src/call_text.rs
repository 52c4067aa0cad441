//! `dialtone call`'s words: one line per timeline event, and the summary after the call.

use dialtone_call::{CallEvent, CallReport};

/// One timeline line: the time, the step and the words (`dialtone_call::EventText`).
pub(crate) fn format_event(e: &CallEvent) -> String {
    let text = e.kind.text();
    format!(
        "{:>9.3}s  {:<8} {}",
        e.at.as_secs_f64(),
        text.step,
        text.words
    )
}

pub(crate) fn print_summary(r: &CallReport, record: Option<&std::path::Path>) {
    println!();
    println!(
        "call {}  {}  ({:.1} s): {}",
        r.call_sid,
        r.status.as_str(),
        r.duration_ms / 1e3,
        r.end_reason
    );
    if !r.webhook_ms.is_empty() {
        let list: Vec<String> = r.webhook_ms.iter().map(|m| format!("{m:.1}")).collect();
        let more = r.webhooks.saturating_sub(r.webhook_ms.len() as u64);
        let more = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        println!("  webhook round trips: {} ms{more}", list.join(", "));
    }
    for relay in &r.relay {
        print_relay(relay);
    }
    for d in &r.dials {
        print_dial(d);
    }
    for rec in &r.recordings {
        print_recording(rec);
    }
    for s in &r.streams {
        println!(
            "  stream {} ({}) {}",
            s.name,
            if s.bidirectional {
                "bidirectional"
            } else {
                "fork"
            },
            s.url
        );
        println!(
            "    frames sent {}  lateness p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            s.frames_sent, s.lateness.p50_ms, s.lateness.p99_ms, s.lateness.max_ms
        );
        if s.bidirectional {
            println!(
                "    app media {} msgs ({} ms of audio, {} ms cleared, {} ms underrun)  first audio {}",
                s.media_received,
                s.audio_received_ms,
                s.audio_cleared_ms,
                s.underrun_ms,
                s.time_to_first_audio
                    .map_or("never".to_string(), |d| format!(
                        "{:.1} ms after start",
                        d.as_secs_f64() * 1e3
                    ))
            );
            print_marks(s);
            let split_turns = s.turns.iter().filter(|t| t.vad_splits > 0).count();
            println!(
                "    clears {}  talk-over {:.0} ms  split turns {split_turns} ({} VAD re-onsets)",
                s.clears, s.talk_over_ms, s.vad_splits
            );
        }
        for t in &s.turns {
            print_turn(t);
        }
        if s.invalid_messages > 0 {
            println!(
                "    31951 ignored app messages: {} (first: {})",
                s.invalid_messages,
                s.invalid_samples
                    .first()
                    .map(|m| format!("{}: {}", m.reason, m.raw))
                    .unwrap_or_default()
            );
        }
        if let Some(f) = &s.faults {
            println!("    faults injected: {}", fault_summary(f));
        }
        println!(
            "    closed by {} after {:.1} s",
            s.closed_by,
            s.duration_ms / 1e3
        );
    }
    for (code, w) in &r.warnings {
        println!("  warning {code}: {w}");
    }
    let omitted = [
        (r.warnings_omitted, "warnings"),
        (r.failures_omitted, "failures"),
        (r.streams_omitted, "stream reports"),
        (r.timeline_omitted, "timeline steps"),
    ];
    for (n, what) in omitted.into_iter().filter(|(n, _)| *n > 0) {
        println!("  {n} more {what} counted, not kept");
    }
    if let Some(dir) = record {
        println!("  recordings in {}", dir.display());
    }
    if r.is_success() {
        println!("OK");
    } else {
        for f in &r.failures {
            let code = f.code();
            let code = if code == 0 {
                String::new()
            } else {
                format!(" [{code}]")
            };
            println!("FAILED at {}{code}: {f}", f.step());
        }
        if r.failures.is_empty() {
            println!("FAILED: call ended {}", r.status.as_str());
        }
    }
}

/// A stream's marks: each one's round trip when there are a few, else counts and
/// percentiles.
fn print_marks(s: &dialtone_call::StreamReport) {
    let m = &s.mark_stats;
    if m.received <= 10 {
        let rtts: Vec<String> = s
            .marks
            .iter()
            .map(|m| match m.round_trip_ms {
                Some(v) if m.cleared => format!("{}={v:.0}ms(cleared)", m.name),
                Some(v) => format!("{}={v:.0}ms", m.name),
                None => format!("{}=never", m.name),
            })
            .collect();
        if !rtts.is_empty() {
            println!("    marks: {}", rtts.join("  "));
        }
        return;
    }
    let rt = &m.round_trip;
    println!(
        "    marks: {} received, {} echoed ({} by clear), {} never echoed ({} refused)  round \
         trip p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        m.received, m.echoed, m.cleared, m.unanswered, m.refused, rt.p50_ms, rt.p99_ms, rt.max_ms
    );
}

fn print_turn(t: &dialtone_call::turns::TurnReport) {
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0} ms"));
    let as_ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "    turn {}: speech {:.2}–{:.2} s {:?}",
        t.index + 1,
        t.start_ms / 1e3,
        t.end_ms / 1e3,
        t.text
    );
    println!(
        "      reply {} after speech end (heard {}){}",
        opt(t.reply.map(as_ms)),
        opt(t.reply_heard.map(as_ms)),
        if t.barge_in {
            format!(
                "; barge-in over app audio: clear {}",
                t.clear_after
                    .map(as_ms)
                    .map_or("never sent".to_string(), |v| format!(
                        "{v:.0} ms after speech start"
                    ))
            )
        } else {
            String::new()
        }
    );
    if t.talk_over_ms > 0.0 {
        println!(
            "      talk-over: {:.0} ms of app audio heard while the caller spoke",
            t.talk_over_ms
        );
    }
    for (name, latency, text) in &t.milestones {
        println!(
            "      {name:<20} {latency:>7.0} ms{}",
            text.as_deref()
                .map(|x| format!("  {x:?}"))
                .unwrap_or_default()
        );
    }
    if t.vad_splits > 0 {
        let at: Vec<String> = t
            .vad_reonsets_ms
            .iter()
            .map(|v| format!("{v:.0} ms"))
            .collect();
        println!(
            "      split turn: vad.speech_start again {}× inside it (at {} after speech start)",
            t.vad_splits,
            at.join(", ")
        );
    }
    if let Some(wer) = t.wer {
        println!("      transcript WER {:.1}%", wer * 100.0);
    }
}

/// What the injected faults did, in words: only the kinds that happened.
fn fault_summary(f: &dialtone_call::faults::FaultCounts) -> String {
    let mut parts: Vec<String> = [
        (f.delayed, "frames delayed"),
        (f.paused, "frames paused"),
        (f.lost, "lost"),
        (f.duplicated, "duplicated"),
        (f.reordered, "reordered"),
        (f.seq_gaps, "sequence gaps"),
        (f.bad_json, "bad JSON"),
        (f.bad_base64, "bad base64"),
        (f.wrong_sid, "wrong streamSid"),
        (f.marks_delayed, "mark echoes delayed"),
        (f.marks_dropped, "mark echoes never sent"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if let Some(end) = &f.ended {
        parts.push(format!("ended by {end}"));
    }
    if parts.is_empty() {
        "none this time".into()
    } else {
        parts.join(", ")
    }
}

/// A ConversationRelay session: each caller turn's answer timed from the true end of speech.
fn print_dial(d: &dialtone_call::dial::DialReport) {
    let who = match &d.answered_by {
        Some(to) => format!(
            "{to} answered after {:.0} ms, bridged {:.1} s",
            d.answer_ms.unwrap_or_default(),
            d.duration_ms / 1e3
        ),
        None => "nobody answered".to_string(),
    };
    println!(
        "  dial {} → {}: {who}; {}",
        d.to.join(", "),
        d.status.as_str(),
        d.ended_by
    );
    if let Some(app) = &d.app {
        println!(
            "    hosted app's call {}: {} ({}), {} streams, {} failures",
            app.call_sid,
            app.status.as_str(),
            app.end_reason,
            app.streams.len(),
            app.failures.len()
        );
    }
}

fn print_recording(r: &dialtone_call::record::RecordReport) {
    let kept = if r.empty {
        "nothing said: not kept, no action".to_string()
    } else {
        format!(
            "{:.1} s kept{}",
            r.duration_ms / 1e3,
            r.url
                .as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        )
    };
    let digits = match r.digits.as_str() {
        "" | "hangup" => String::new(),
        key => format!(" {key}"),
    };
    println!(
        "  <Record> {}: ended by {}{digits}; {kept}",
        r.sid,
        r.ended_by.as_str()
    );
    if let Some(t) = &r.transcription {
        println!("    transcription {t:?}");
    }
}

fn print_relay(r: &dialtone_call::relay::RelayReport) {
    let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0} ms"));
    let end = r.end.as_ref().map_or("running".to_string(), |e| {
        let mut s = e.status.as_str().to_string();
        if let Some(h) = &e.handoff_data {
            s.push_str(&format!(", handoff {h}"));
        }
        if let Some((code, m)) = &e.error {
            s.push_str(&format!(", {code} {m}"));
        }
        s
    });
    println!(
        "  ConversationRelay session {end}: {} tokens, {} interrupts, {} errors sent",
        r.tokens,
        r.interrupts.len(),
        r.errors_sent
    );
    for t in &r.turns {
        println!("    turn {}: {:?}", t.index, t.text);
        println!(
            "      prompt {}  first token {}  last token {}  heard {}  ({} tokens)",
            ms(t.prompt_ms),
            ms(t.first_token_ms),
            ms(t.last_token_ms),
            ms(t.speech_ms),
            t.tokens
        );
    }
    for i in &r.interrupts {
        let after = match i.stopped_after_ms {
            Some(v) => format!(
                "the app sent {} more tokens for it, the last {v:.0} ms later",
                i.tokens_after
            ),
            None => "the app sent nothing more for it".to_string(),
        };
        println!(
            "    interrupt at {:.0} ms after {} ms of speech ({:?}); {after}",
            i.at_ms, i.duration_ms, i.utterance
        );
    }
}
