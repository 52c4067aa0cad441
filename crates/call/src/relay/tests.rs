//! The session on virtual time, with no socket: an app's messages at chosen instants, the
//! session's messages with the instants they went out.

use std::time::Duration;

use dialtone_corpus::Turn;
use dialtone_protocol::relay::Setup;
use dialtone_twiml::{ConversationRelay, RelayInput};
use serde_json::Value;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn turn(start_ms: u32, end_ms: u32, text: &str) -> Turn {
    Turn {
        start_ms,
        end_ms,
        text: text.into(),
    }
}

fn config(noun: ConversationRelay, turns: Vec<Turn>) -> RelayConfig {
    RelayConfig {
        noun,
        setup: Setup {
            session_id: "VX1".into(),
            account_sid: "AC1".into(),
            parent_call_sid: String::new(),
            call_sid: "CA1".into(),
            from: "+15005550006".into(),
            to: "+15005550001".into(),
            forwarded_from: String::new(),
            call_type: "PSTN".into(),
            caller_name: String::new(),
            direction: "inbound".into(),
            call_status: "IN-PROGRESS".into(),
            custom_parameters: Vec::new(),
        },
        turns,
        digits: Vec::new(),
        speech: SpeechModel::default(),
        tail: ms(2000),
        record: false,
    }
}

fn noun() -> ConversationRelay {
    ConversationRelay {
        url: "wss://app/ws".into(),
        ..ConversationRelay::default()
    }
}

/// Runs the session until it ends (or 60 s), the app's messages at their instants; returns
/// what went out, each with its instant.
fn run(session: &mut RelaySession, app: &[(u64, &str)]) -> Vec<(u64, Value)> {
    run_with(session, app, |_| (0, Err("no fetches here".into()))).0
}

/// A fetch's answer: after how long, the audio's length or why not.
type FetchAnswer = (u64, Result<Duration, String>);

/// What went out and the timeline's events, each with its instant.
type Ran = (Vec<(u64, Value)>, Vec<(u64, RelayEvent)>);

/// [`run`], with `play` fetches answered by `fetch` (by URL); the timeline's events too.
fn run_with(
    session: &mut RelaySession,
    app: &[(u64, &str)],
    fetch: impl Fn(&str) -> FetchAnswer,
) -> Ran {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    session.open(&mut out);
    let mut app = app.iter().peekable();
    // Fetches under way: (when done, id, answer), earliest first.
    let mut fetches: Vec<(u64, u32, Result<Duration, String>)> = Vec::new();
    let mut now = Duration::ZERO;
    let mut record =
        |now: Duration,
         out: &mut Vec<RelayOutput>,
         fetches: &mut Vec<(u64, u32, Result<Duration, String>)>| {
            for o in out.drain(..) {
                let v = match o {
                    RelayOutput::Event(e) => {
                        events.push((now.as_millis() as u64, e));
                        continue;
                    }
                    RelayOutput::Fetch { id, url } => {
                        let (after, answer) = fetch(&url);
                        fetches.push((now.as_millis() as u64 + after, id, answer));
                        fetches.sort_by_key(|f| f.0);
                        continue;
                    }
                    RelayOutput::Send(text) => serde_json::from_str(&text).unwrap(),
                    RelayOutput::Close { code, reason } => {
                        serde_json::json!({"close": code, "reason": reason})
                    }
                };
                sent.push((now.as_millis() as u64, v));
            }
        };
    record(now, &mut out, &mut fetches);
    while session.end().is_none() && now < ms(60_000) {
        let timer = session.poll_timeout().unwrap_or(ms(60_000));
        let fetched = fetches.first().map_or(u64::MAX, |f| f.0);
        match app.peek() {
            Some(&&(t, text)) if ms(t) <= timer && t <= fetched => {
                now = ms(t);
                session.on_message(now, text, &mut out);
                app.next();
            }
            _ if ms(fetched) <= timer => {
                let (t, id, answer) = fetches.remove(0);
                now = ms(t);
                session.on_play_ready(now, id, answer, &mut out);
            }
            _ => {
                now = timer.max(now);
                session.on_timeout(now, &mut out);
            }
        }
        record(now, &mut out, &mut fetches);
    }
    (sent, events)
}

fn of_type<'a>(sent: &'a [(u64, Value)], kind: &str) -> Vec<&'a (u64, Value)> {
    sent.iter().filter(|(_, v)| v["type"] == kind).collect()
}

#[test]
fn a_turn_becomes_a_prompt_and_its_answer_is_measured_from_the_true_end_of_speech() {
    let mut s = RelaySession::new(config(noun(), vec![turn(500, 3000, "Where is my order?")]));
    // The prompt goes out at 3500 (500 ms of recognition); the app thinks 300 ms.
    let sent = run(
        &mut s,
        &[
            (3800, r#"{"type":"text","token":"It ","last":false}"#),
            (3850, r#"{"type":"text","token":"shipped.","last":false}"#),
            (4000, r#"{"type":"text","token":"","last":true}"#),
        ],
    );
    assert_eq!(sent[0].1["type"], "setup");
    assert_eq!(sent[0].1["callSid"], "CA1");
    let prompts = of_type(&sent, "prompt");
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].0, 3500);
    assert_eq!(prompts[0].1["voicePrompt"], "Where is my order?");
    assert_eq!(prompts[0].1["lang"], "en-US");
    assert_eq!(prompts[0].1["last"], true);
    let r = s.report();
    let t = &r.turns[0];
    assert_eq!(t.prompt_ms, Some(500.0));
    assert_eq!(t.first_token_ms, Some(800.0));
    // Heard 200 ms (synthesis) after the first token.
    assert_eq!(t.speech_ms, Some(1000.0));
    assert_eq!(t.last_token_ms, Some(1000.0));
    assert_eq!(t.tokens, 3);
    // "It shipped." is 11 characters of speech from 4000: quiet at 4715, then the tail.
    let end = r.end.as_ref().unwrap();
    assert_eq!(end.status, SessionStatus::Completed);
    assert_eq!(end.at_ms, 6715.0);
    assert_eq!(sent.last().unwrap().1["close"], 1000);
}

#[test]
fn speech_over_the_agent_interrupts_with_what_was_heard() {
    let turns = vec![turn(0, 1000, "Tell me a story."), turn(4000, 5000, "Stop.")];
    let mut s = RelaySession::new(config(noun(), turns));
    // 39 characters from 1700 (first sound at 1900) play until 4435; the caller speaks at
    // 4000, 2100 ms in: 32 characters heard. The app sends two more tokens, the last 250 ms
    // after the interrupt.
    let sent = run(
        &mut s,
        &[
            (
                1700,
                r#"{"type":"text","token":"Once upon a time there was a small fox."}"#,
            ),
            (4100, r#"{"type":"text","token":" It"}"#),
            (4250, r#"{"type":"text","token":" ran.","last":true}"#),
            (5600, r#"{"type":"text","token":"Okay.","last":true}"#),
        ],
    );
    let interrupts = of_type(&sent, "interrupt");
    assert_eq!(interrupts.len(), 1);
    let (at, i) = interrupts[0];
    assert_eq!(*at, 4000);
    assert_eq!(
        i["utteranceUntilInterrupt"],
        "Once upon a time there was a sma"
    );
    assert_eq!(i["durationUntilInterruptMs"], 2100);
    let r = s.report();
    assert_eq!(r.interrupts.len(), 1);
    assert_eq!(r.interrupts[0].tokens_after, 2);
    assert_eq!(r.interrupts[0].stopped_after_ms, Some(250.0));
    // The second turn's answer is measured from its own end.
    assert_eq!(r.turns[1].first_token_ms, Some(600.0));
    assert_eq!(r.turns[1].tokens, 1);
}

#[test]
fn without_interruptible_speech_over_the_agent_is_not_reported_unless_asked() {
    let turns = vec![
        turn(0, 1000, "Tell me a story."),
        turn(3000, 3500, "Hello?"),
    ];
    for (report_input, prompts) in [(RelayInput::None, 1), (RelayInput::Speech, 2)] {
        let n = ConversationRelay {
            interruptible: RelayInput::None,
            report_input_during_agent_speech: report_input,
            ..noun()
        };
        let mut s = RelaySession::new(config(n, turns.clone()));
        let sent = run(
            &mut s,
            &[(
                1700,
                r#"{"type":"text","token":"Once upon a time there was a small fox.","last":true}"#,
            )],
        );
        assert!(of_type(&sent, "interrupt").is_empty());
        assert_eq!(of_type(&sent, "prompt").len(), prompts, "{report_input:?}");
    }
}

#[test]
fn partial_prompts_grow_before_the_final_one() {
    let n = ConversationRelay {
        partial_prompts: true,
        ..noun()
    };
    let mut s = RelaySession::new(config(n, vec![turn(0, 1200, "one two three four")]));
    let sent = run(&mut s, &[]);
    let prompts: Vec<(u64, String, bool)> = of_type(&sent, "prompt")
        .into_iter()
        .map(|(t, v)| {
            let text = v["voicePrompt"].as_str().unwrap().to_string();
            (*t, text, v["last"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(
        prompts,
        [
            (300, "one".into(), false),
            (600, "one two".into(), false),
            (900, "one two three".into(), false),
            (1700, "one two three four".into(), true),
        ]
    );
}

#[test]
fn digits_reach_the_app_only_with_dtmf_detection_and_cut_speech_when_allowed() {
    let mut cfg = config(noun(), Vec::new());
    cfg.noun.welcome_greeting = Some("Welcome to the shop, how can I help?".into());
    cfg.digits = vec![(ms(1000), '5'), (ms(9000), '#')];
    let mut quiet = RelaySession::new(cfg.clone());
    assert!(of_type(&run(&mut quiet, &[]), "dtmf").is_empty());

    cfg.noun.dtmf_detection = true;
    let mut s = RelaySession::new(cfg);
    let sent = run(&mut s, &[]);
    let digits: Vec<&str> = of_type(&sent, "dtmf")
        .iter()
        .map(|(_, v)| v["digit"].as_str().unwrap())
        .collect();
    assert_eq!(digits, ["5", "#"]);
    // The greeting (welcomeGreetingInterruptible any) was cut by the first digit.
    let interrupts = of_type(&sent, "interrupt");
    assert_eq!(interrupts.len(), 1);
    assert_eq!(interrupts[0].0, 1000);
    assert_eq!(interrupts[0].1["durationUntilInterruptMs"], 800);
}

#[test]
fn end_hands_off_and_closes() {
    let mut s = RelaySession::new(config(noun(), vec![turn(0, 1000, "A person please.")]));
    let sent = run(
        &mut s,
        &[(
            1700,
            r#"{"type":"end","handoffData":"{\"reason\":\"agent\"}"}"#,
        )],
    );
    let end = s.end().unwrap();
    assert_eq!(end.status, SessionStatus::Ended);
    assert_eq!(end.handoff_data.as_deref(), Some(r#"{"reason":"agent"}"#));
    assert_eq!(
        sent.last().unwrap(),
        &(1700, serde_json::json!({"close": 1000, "reason": ""}))
    );
}

#[test]
fn bad_messages_get_errors_and_ten_unidentified_in_a_row_close_1007() {
    let mut s = RelaySession::new(config(noun(), vec![turn(0, 1000, "Hi.")]));
    let mut app: Vec<(u64, String)> = vec![
        (100, r#"{"type":"text"}"#.into()),
        (110, "garbage".into()),
        (120, r#"{"type":"text","token":"ok"}"#.into()),
    ];
    app.extend((0..10).map(|i| (200 + i, format!(r#"{{"type":"nope{i}"}}"#))));
    let app: Vec<(u64, &str)> = app.iter().map(|(t, m)| (*t, m.as_str())).collect();
    let sent = run(&mut s, &app);
    let errors = of_type(&sent, "error");
    assert_eq!(errors.len(), 12);
    assert_eq!(
        errors[0].1["description"],
        r#"Invalid message received: {"type":"text"}"#
    );
    assert_eq!(
        sent.last().unwrap().1,
        serde_json::json!({"close": 1007, "reason": "Too many consecutive malformed messages."})
    );
    let end = s.end().unwrap();
    assert_eq!(end.status, SessionStatus::Failed);
    assert_eq!(end.error.as_ref().unwrap().0, 64105);
    assert_eq!(end.at_ms, 209.0);
}

#[test]
fn the_app_closing_under_the_session_fails_it() {
    let mut s = RelaySession::new(config(noun(), vec![turn(0, 1000, "Hi.")]));
    let mut out = Vec::new();
    s.open(&mut out);
    s.on_closed(ms(700), &mut out);
    let end = s.end().unwrap();
    assert_eq!((end.status, end.at_ms), (SessionStatus::Failed, 700.0));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_preemptible_answer_is_stopped_by_the_next_one_else_the_next_one_waits() {
    let turns = vec![turn(0, 1000, "Tell me a story."), turn(2500, 3000, "Also")];
    for (preemptible, heard_after_end) in [(true, 800.0), (false, 1435.0)] {
        let n = ConversationRelay {
            interruptible: RelayInput::None,
            report_input_during_agent_speech: RelayInput::Speech,
            preemptible,
            ..noun()
        };
        let mut s = RelaySession::new(config(n, turns.clone()));
        // 39 characters heard from 1900 to 4435; the second answer's token comes at 3600.
        run(
            &mut s,
            &[
                (
                    1700,
                    r#"{"type":"text","token":"Once upon a time there was a small fox.","last":true}"#,
                ),
                (3600, r#"{"type":"text","token":"Sure.","last":true}"#),
            ],
        );
        assert_eq!(
            s.report().turns[1].speech_ms,
            Some(heard_after_end),
            "preemptible {preemptible}"
        );
    }
}

#[test]
fn a_silence_between_tokens_is_not_speech_to_interrupt() {
    // "Hi" is heard 1300–1430; "there", in by 1500, only from 1700: the caller's turn at
    // 1600 starts in the silence between them, so no interrupt, and its prompt goes out.
    let turns = vec![turn(0, 500, "Hello."), turn(1600, 2100, "Are you there?")];
    let mut s = RelaySession::new(config(noun(), turns));
    let sent = run(
        &mut s,
        &[
            (1100, r#"{"type":"text","token":"Hi"}"#),
            (1500, r#"{"type":"text","token":"there","last":true}"#),
        ],
    );
    assert!(of_type(&sent, "interrupt").is_empty(), "{sent:?}");
    assert_eq!(of_type(&sent, "prompt").len(), 2);
}

#[test]
fn an_app_that_never_says_last_still_has_each_answer_on_its_turn() {
    let turns = vec![turn(0, 500, "One."), turn(3000, 3500, "Two.")];
    let mut s = RelaySession::new(config(noun(), turns));
    run(
        &mut s,
        &[
            (1100, r#"{"type":"text","token":"First."}"#),
            (4100, r#"{"type":"text","token":"Second."}"#),
        ],
    );
    let t = &s.report().turns;
    assert_eq!((t[0].first_token_ms, t[0].tokens), (Some(600.0), 1));
    assert_eq!((t[1].first_token_ms, t[1].tokens), (Some(600.0), 1));
}

#[test]
fn each_tokens_own_interruptible_decides_while_its_speech_plays() {
    // "Hold on, " (9 characters) is heard 1900–2485, "let me see." (11) 2485–3200; the
    // caller speaks at 2700, over the second token.
    let turns = vec![turn(0, 1000, "Check my order."), turn(2700, 3000, "Hm?")];
    for (first, second, cut) in [("false", "true", true), ("true", "false", false)] {
        let mut s = RelaySession::new(config(noun(), turns.clone()));
        let a = format!(r#"{{"type":"text","token":"Hold on, ","interruptible":{first}}}"#);
        let b = format!(
            r#"{{"type":"text","token":"let me see.","last":true,"interruptible":{second}}}"#
        );
        let sent = run(&mut s, &[(1700, &a), (1750, &b)]);
        let interrupts = of_type(&sent, "interrupt");
        assert_eq!(
            interrupts.len(),
            usize::from(cut),
            "{first}/{second}: {sent:?}"
        );
        if cut {
            assert_eq!(interrupts[0].1["utteranceUntilInterrupt"], "Hold on, let");
            assert_eq!(interrupts[0].1["durationUntilInterruptMs"], 800);
        }
    }
}

#[test]
fn a_queued_cycles_rules_apply_only_once_its_speech_plays() {
    // The story plays 1900–4435 (interruptible by the noun); an uninterruptible answer
    // queues behind it at 2000. The caller speaks at 3000, over the story: cut.
    let turns = vec![turn(0, 1000, "Tell me a story."), turn(3000, 3500, "Stop.")];
    let mut s = RelaySession::new(config(noun(), turns));
    let sent = run(
        &mut s,
        &[
            (
                1700,
                r#"{"type":"text","token":"Once upon a time there was a small fox.","last":true}"#,
            ),
            (
                2000,
                r#"{"type":"text","token":"Sure.","last":true,"interruptible":false}"#,
            ),
        ],
    );
    let interrupts = of_type(&sent, "interrupt");
    assert_eq!(interrupts.len(), 1, "{sent:?}");
    assert_eq!(interrupts[0].0, 3000);
    assert_eq!(interrupts[0].1["durationUntilInterruptMs"], 1100);
}

#[test]
fn an_interrupt_measures_the_talk_cycle_playing_not_the_one_before_it() {
    // "Hi there." plays 1300–1885; the next cycle, queued behind it (not preemptible),
    // plays from 1885. The caller speaks at 2500: 615 ms of the second cycle heard.
    let turns = vec![turn(0, 500, "Hello."), turn(2500, 3000, "Wait.")];
    let mut s = RelaySession::new(config(noun(), turns));
    let sent = run(
        &mut s,
        &[
            (1100, r#"{"type":"text","token":"Hi there.","last":true}"#),
            (
                1200,
                r#"{"type":"text","token":"How can I help you today?","last":true}"#,
            ),
        ],
    );
    let interrupts = of_type(&sent, "interrupt");
    assert_eq!(interrupts.len(), 1, "{sent:?}");
    assert_eq!(interrupts[0].1["durationUntilInterruptMs"], 615);
    assert_eq!(interrupts[0].1["utteranceUntilInterrupt"], "How can I");
}

#[test]
fn under_multi_the_prompt_carries_the_detected_primary_language_tag() {
    let cases = [
        (Some("multi"), None, "en"),
        (Some("multi"), Some("sv-SE"), "sv-SE"),
        (Some("sv-SE"), Some("multi"), "en"),
        (None, None, "en-US"),
    ];
    for (language, transcription, lang) in cases {
        let n = ConversationRelay {
            language: language.map(Into::into),
            transcription_language: transcription.map(Into::into),
            ..noun()
        };
        let mut s = RelaySession::new(config(n, vec![turn(0, 500, "Hej.")]));
        let sent = run(&mut s, &[]);
        let prompts = of_type(&sent, "prompt");
        assert_eq!(prompts[0].1["lang"], lang, "{language:?}/{transcription:?}");
    }
    // Switched to detection by a `language` message.
    let mut s = RelaySession::new(config(noun(), vec![turn(1000, 1500, "Hej.")]));
    let sent = run(
        &mut s,
        &[(
            100,
            r#"{"type":"language","transcriptionLanguage":"multi"}"#,
        )],
    );
    assert_eq!(of_type(&sent, "prompt")[0].1["lang"], "en");
}

/// An answer streamed a token every 50 ms from 1600 (`until`, then `last: true` or not),
/// over a second turn whose prompt goes out at 3500; the app's answer to it at `next`.
fn streamed_over_a_new_prompt(until: u64, last: bool, next: u64) -> RelayReport {
    let n = ConversationRelay {
        interruptible: RelayInput::None,
        report_input_during_agent_speech: RelayInput::Any,
        ..noun()
    };
    let turns = vec![turn(0, 1000, "Tell me a story."), turn(2500, 3000, "And?")];
    let mut s = RelaySession::new(config(n, turns));
    let mut app: Vec<(u64, String)> = (1600..until)
        .step_by(50)
        .map(|t| (t, r#"{"type":"text","token":"la "}"#.to_string()))
        .collect();
    if last {
        app.push((until, r#"{"type":"text","token":"","last":true}"#.into()));
    }
    app.push((
        next,
        r#"{"type":"text","token":"Then.","last":true}"#.into(),
    ));
    let app: Vec<(u64, &str)> = app.iter().map(|(t, m)| (*t, m.as_str())).collect();
    run(&mut s, &app);
    s.report().clone()
}

#[test]
fn an_answer_still_streaming_over_a_new_prompt_keeps_its_tokens() {
    // Streamed on to its `last: true` at 3700, 200 ms after the new prompt.
    let r = streamed_over_a_new_prompt(3700, true, 3900);
    assert_eq!(r.turns[0].tokens, 43);
    assert_eq!(r.turns[0].last_token_ms, Some(2700.0));
    assert_eq!(
        (r.turns[1].first_token_ms, r.turns[1].tokens),
        (Some(900.0), 1)
    );
    // Aborted by the app when the prompt came (its last token in flight at 3550, no
    // `last: true`), the new answer 150 ms later.
    let r = streamed_over_a_new_prompt(3600, false, 3750);
    assert_eq!(r.turns[0].tokens, 40);
    assert_eq!(
        (r.turns[1].first_token_ms, r.turns[1].tokens),
        (Some(750.0), 1)
    );
}

#[test]
fn a_token_flood_stays_bounded_and_measured_the_same() {
    let m = SpeechModel::default();
    let rules = super::speech::Rules {
        speech: true,
        dtmf: true,
        preemptible: false,
    };
    // A million one-character tokens, one a microsecond: one stretch.
    let mut flood = super::speech::Speech::new(false);
    for k in 0..1_000_000u64 {
        let now = Duration::from_micros(k);
        flood.say(now, 1, rules, "a", m.synthesis_latency, m.per_char);
        assert!(
            flood.stretches() <= 2,
            "at token {k}: {}",
            flood.stretches()
        );
    }
    // 65 s into the speech (which started at 200 ms): 1000 characters heard.
    let (heard, played) = flood.cut(ms(65_200));
    assert_eq!(played, ms(65_000));
    assert_eq!(heard.len(), 1000);
    // Cut past the kept text: counted in time, the text stops at TEXT_KEPT.
    let mut flood = super::speech::Speech::new(false);
    for k in 0..20_000u64 {
        flood.say(ms(k / 100), 1, rules, "b", m.synthesis_latency, m.per_char);
    }
    let (heard, played) = flood.cut(ms(200 + 65 * 15_000));
    assert_eq!(played, ms(65 * 15_000));
    assert_eq!(heard.len(), super::speech::TEXT_KEPT);

    // Tokens slower than speech (a gap before each): what has played is folded away.
    let mut slow = super::speech::Speech::new(false);
    for k in 0..100_000u64 {
        slow.say(ms(k * 100), 1, rules, "c", m.synthesis_latency, m.per_char);
        assert!(slow.stretches() <= 4, "at token {k}: {}", slow.stretches());
    }
    // Each "c" plays 65 ms of every 100: cut 30 ms into the last one.
    let (heard, played) = slow.cut(ms(99_999 * 100 + 230));
    assert_eq!(played, ms(99_999 * 100 + 30));
    assert_eq!(heard.len(), 100_000.min(super::speech::TEXT_KEPT));

    // The same tokens one by one or all at once: the same interrupt.
    let words = [
        "Once ", "upon ", "a ", "time ", "there ", "was ", "a ", "fox.",
    ];
    let cut_at = |spaced: u64| {
        let mut sp = super::speech::Speech::new(false);
        for (k, w) in words.iter().enumerate() {
            sp.say(
                ms(k as u64 * spaced),
                1,
                rules,
                w,
                m.synthesis_latency,
                m.per_char,
            );
        }
        sp.cut(ms(1_500))
    };
    assert_eq!(cut_at(0), cut_at(10));
    assert_eq!(cut_at(0), ("Once upon a time the".to_string(), ms(1_300)));
}

fn spans(s: &RelaySession) -> Vec<(u64, u64, Sound)> {
    s.heard()
        .iter()
        .map(|h| {
            (
                h.start.as_millis() as u64,
                h.end.as_millis() as u64,
                h.sound,
            )
        })
        .collect()
}

fn recording(n: ConversationRelay, turns: Vec<Turn>) -> RelaySession {
    let mut cfg = config(n, turns);
    cfg.record = true;
    RelaySession::new(cfg)
}

/// A one-second WAV, fetched in 100 ms.
fn one_second(_: &str) -> FetchAnswer {
    (100, Ok(ms(1000)))
}

#[test]
fn a_play_is_heard_for_its_audio_times_its_loops_under_its_own_rules() {
    // Asked for at 1600, in at 1700: two loops, heard 1700–3700. The caller speaks at 2500.
    let turns = vec![turn(0, 1000, "Play music."), turn(2500, 3000, "Nice.")];
    for (interruptible, heard_until) in [("false", 3700), ("true", 2500)] {
        let mut s = recording(noun(), turns.clone());
        let play = format!(
            r#"{{"type":"play","source":"https://app/a.wav","loop":2,"interruptible":{interruptible}}}"#
        );
        let (sent, events) = run_with(&mut s, &[(1600, &play)], one_second);
        assert_eq!(spans(&s), [(1700, heard_until, Sound::Play { id: 0 })]);
        let interrupts = of_type(&sent, "interrupt");
        if interruptible == "true" {
            assert_eq!(interrupts.len(), 1);
            assert_eq!(interrupts[0].1["durationUntilInterruptMs"], 800);
            assert_eq!(interrupts[0].1["utteranceUntilInterrupt"], "");
        } else {
            assert!(interrupts.is_empty());
            // The app never answers "Nice." (prompted at 3500): the caller waits for it
            // ANSWER_PATIENCE, past the play's end (3700) and its tail.
            assert_eq!(
                s.end().unwrap().at_ms,
                3500.0 + ANSWER_PATIENCE.as_millis() as f64
            );
        }
        assert!(events.iter().any(|(t, e)| *t == 1700
            && *e
                == RelayEvent::Play {
                    source: "https://app/a.wav".into(),
                    duration_ms: 2000,
                    start_ms: Some(1700.0),
                }));
        assert_eq!(s.report().plays, ["https://app/a.wav"]);
    }
}

#[test]
fn loop_zero_plays_a_thousand_times() {
    let mut cfg = config(noun(), Vec::new());
    cfg.record = true;
    let mut s = RelaySession::new(cfg);
    let (_, events) = run_with(
        &mut s,
        &[(
            0,
            r#"{"type":"play","source":"https://app/a.wav","loop":0}"#,
        )],
        one_second,
    );
    assert!(events.iter().any(|(_, e)| matches!(
        e,
        RelayEvent::Play {
            duration_ms: 1_000_000,
            ..
        }
    )));
    // Heard from 100 ms for 1000 s; the caller hangs up after it and its tail.
    assert_eq!(s.end().unwrap().at_ms, 1_002_100.0);
    assert_eq!(spans(&s), [(100, 1_000_100, Sound::Play { id: 0 })]);
}

#[test]
fn a_play_that_cannot_be_fetched_is_skipped_and_reported() {
    let mut s = recording(noun(), vec![turn(0, 1000, "Hi.")]);
    let (_, events) = run_with(
        &mut s,
        &[
            (
                1600,
                r#"{"type":"play","source":"https://app/missing.wav"}"#,
            ),
            (1650, r#"{"type":"text","token":"Hello.","last":true}"#),
        ],
        |_| (100, Err("HTTP 404".into())),
    );
    let r = s.report();
    assert_eq!(r.play_failures.len(), 1);
    assert_eq!(r.play_failures[0].cause, "HTTP 404");
    assert!(events.iter().any(|(t, e)| *t == 1700
        && matches!(e, RelayEvent::PlayFailed { source, .. } if source == "https://app/missing.wav")));
    // The answer held behind it plays once it is known to be nothing: from 1850 (its
    // synthesis latency), six characters.
    assert_eq!(spans(&s), [(1850, 2240, Sound::Voice)]);
    assert_eq!(r.turns[0].speech_ms, Some(850.0));
}

#[test]
fn speech_waits_for_a_play_before_it_and_a_preemptible_play_is_stopped_by_the_next_cycle() {
    let turns = vec![turn(0, 1000, "Hi.")];
    for (preemptible, expected) in [
        (
            "false",
            vec![
                (1700, 2700, Sound::Play { id: 0 }),
                (2700, 3090, Sound::Voice),
            ],
        ),
        (
            "true",
            vec![
                (1700, 2000, Sound::Play { id: 0 }),
                (2200, 2590, Sound::Voice),
            ],
        ),
    ] {
        let mut s = recording(noun(), turns.clone());
        let play = format!(
            r#"{{"type":"play","source":"https://app/a.wav","preemptible":{preemptible}}}"#
        );
        run_with(
            &mut s,
            &[
                (1600, &play),
                (2000, r#"{"type":"text","token":"Hello.","last":true}"#),
            ],
            one_second,
        );
        assert_eq!(spans(&s), expected, "preemptible {preemptible}");
        let heard = expected[1].0 as f64 - 1000.0;
        assert_eq!(s.report().turns[0].speech_ms, Some(heard));
    }
}

#[test]
fn a_token_sent_while_a_play_is_fetched_is_heard_after_it() {
    let mut s = recording(noun(), vec![turn(0, 1000, "Hi.")]);
    run_with(
        &mut s,
        &[
            (1600, r#"{"type":"play","source":"https://app/a.wav"}"#),
            (1650, r#"{"type":"text","token":"Hello.","last":true}"#),
        ],
        |_| (300, Ok(ms(500))),
    );
    // In at 1900, heard to 2400; the token, ready at 1850, after it.
    assert_eq!(
        spans(&s),
        [
            (1900, 2400, Sound::Play { id: 0 }),
            (2400, 2790, Sound::Voice)
        ]
    );
    assert_eq!(s.report().turns[0].speech_ms, Some(1400.0));
}

#[test]
fn the_caller_waits_for_a_slow_answer_and_not_forever_for_none() {
    // Turn ends at 1000: prompt at 1500. A silent app: the caller hangs up ANSWER_PATIENCE
    // (5 s) after the prompt, not its 2 s tail after it.
    let mut silent = RelaySession::new(config(noun(), vec![turn(100, 1000, "Hello there")]));
    let sent = run(&mut silent, &[]);
    assert_eq!(silent.end().unwrap().status, SessionStatus::Completed);
    assert_eq!(
        sent.last().unwrap().0,
        1500 + ANSWER_PATIENCE.as_millis() as u64
    );
    assert_eq!(silent.report().turns[0].first_token_ms, None);

    // An app 3 s slow (past the tail): its answer is measured, then heard, then the tail.
    let mut slow = RelaySession::new(config(noun(), vec![turn(100, 1000, "Hello there")]));
    let sent = run(
        &mut slow,
        &[(4500, r#"{"type":"text","token":"Hi.","last":true}"#)],
    );
    let turn = &slow.report().turns[0];
    assert_eq!(
        (turn.prompt_ms, turn.first_token_ms),
        (Some(500.0), Some(3500.0))
    );
    // Heard from 4700 for 3 characters (195 ms), then 2 s.
    assert_eq!(sent.last().unwrap().0, 4700 + 195 + 2000);
}
