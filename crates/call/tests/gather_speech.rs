//! Speech `<Gather>` against a real app on loopback: the caller's exact words come back as
//! `SpeechResult`, timed from the true end of its speech; turns closer than the
//! end-of-speech silence are one utterance; no speech within `timeout` moves on; partial
//! results grow; keys already queued win under `dtmf speech`; the seeded error model errs
//! the same way every run.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::noise;
use common::{Reply, Seen, TestApp, WsScript, param};
use dialtone_call::speech::WordErrors;
use dialtone_call::{CallConfig, CallResult, CallerAudioStart, Engine, EventKind, Turn};

fn turn(start_ms: u32, end_ms: u32, text: &str) -> Turn {
    Turn {
        start_ms,
        end_ms,
        text: text.into(),
    }
}

/// The caller: "I want to pay my bill" (0.5–2.0 s), "please" (2.3–3.0 s), "goodbye"
/// (5.0–6.0 s), from when it is first listened to.
fn caller_turns() -> Vec<Turn> {
    vec![
        turn(500, 2000, "I want to pay my bill"),
        turn(2300, 3000, "please"),
        turn(5000, 6000, "goodbye"),
    ]
}

async fn run(gather: &str, tweak: impl FnOnce(&mut CallConfig)) -> (CallResult, TestApp) {
    let app = TestApp::start(
        vec![
            (
                "/voice",
                Reply::Twiml(format!(
                    "<Response>{gather}<Say>nothing heard</Say></Response>"
                )),
            ),
            (
                "/heard",
                Reply::Twiml("<Response><Hangup/></Response>".into()),
            ),
            ("/partial", Reply::Twiml(String::new())),
            ("/broken", Reply::Raw(500, "text/plain", "down".into())),
        ],
        WsScript::Silent,
    )
    .await;
    let mut cfg = CallConfig::new(app.url("/voice"), Arc::new(noise(7000, 5)));
    cfg.caller.turns = caller_turns();
    cfg.caller.tail = Duration::from_millis(300);
    cfg.max_duration = Duration::from_secs(20);
    cfg.webhook_timeout = Duration::from_secs(3);
    cfg.no_audio_timeout = None;
    tweak(&mut cfg);
    let r = Engine::new().place_call(cfg, None).await;
    (r, app)
}

fn requests(app: &TestApp, path: &str) -> Vec<Seen> {
    app.http()
        .into_iter()
        .filter(|s| s.uri.split('?').next() == Some(path))
        .collect()
}

fn speech_event(r: &CallResult) -> (String, f64, Duration, Duration) {
    r.report
        .timeline
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::SpeechResult {
                text,
                confidence,
                after_speech,
            } => Some((text.clone(), *confidence, *after_speech, e.at)),
            _ => None,
        })
        .expect("a speech result on the timeline")
}

fn verbs(r: &CallResult) -> Vec<String> {
    r.report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Verb { verb, .. } => Some(verb.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_callers_words_come_back_after_it_stops_speaking() {
    let (r, app) = run(
        r#"<Gather input="speech" speechTimeout="auto" action="/heard" partialResultCallback="/partial"/>"#,
        |_| {},
    )
    .await;
    let heard = requests(&app, "/heard");
    assert_eq!(heard.len(), 1, "{:?}", r.report.failures);
    // The pause of 300 ms is shorter than the end-of-speech silence: one utterance.
    assert_eq!(
        param(&heard[0], "SpeechResult"),
        Some("I want to pay my bill please")
    );
    assert_eq!(param(&heard[0], "Confidence"), Some("0.92000000"));
    assert!(param(&heard[0], "Digits").is_none());
    assert!(heard[0].headers.contains_key("x-twilio-signature"));
    let (text, _, after, at) = speech_event(&r);
    assert_eq!(text, "I want to pay my bill please");
    // auto: the recognition delay (500 ms) after the speech ends at 3.0 s.
    assert!(
        after >= Duration::from_millis(490) && after < Duration::from_millis(800),
        "{after:?}"
    );
    assert!(at >= Duration::from_millis(3400), "result at {at:?}");

    // Partials grow word by word while the caller speaks, in order.
    let partials: Vec<String> = requests(&app, "/partial")
        .iter()
        .map(|s| param(s, "UnstableSpeechResult").unwrap().to_string())
        .collect();
    assert!(partials.len() >= 3, "{partials:?}");
    for w in partials.windows(2) {
        assert!(
            w[1].starts_with(&w[0]) && w[1].len() > w[0].len(),
            "{partials:?}"
        );
    }
    assert!("I want to pay my bill please".starts_with(partials.last().unwrap().as_str()));
    let seqs: Vec<String> = requests(&app, "/partial")
        .iter()
        .map(|s| param(s, "SequenceNumber").unwrap().to_string())
        .collect();
    assert_eq!(seqs[0], "0");
}

#[tokio::test]
async fn a_numeric_speech_timeout_waits_that_long_and_a_short_one_splits_turns() {
    let (r, app) = run(
        r#"<Gather input="speech" speechTimeout="1" action="/heard"/>"#,
        |_| {},
    )
    .await;
    assert_eq!(
        param(&requests(&app, "/heard")[0], "SpeechResult"),
        Some("I want to pay my bill please")
    );
    let (_, _, after, _) = speech_event(&r);
    assert!(after >= Duration::from_millis(990), "{after:?}");

    // With the recognizer ending speech after 200 ms, the 300 ms pause splits the turns.
    let (_, app) = run(
        r#"<Gather input="speech" speechTimeout="auto" action="/heard"/>"#,
        |c| c.relay_speech.recognition_delay = Duration::from_millis(200),
    )
    .await;
    assert_eq!(
        param(&requests(&app, "/heard")[0], "SpeechResult"),
        Some("I want to pay my bill")
    );
}

#[tokio::test]
async fn no_speech_within_timeout_moves_on_or_requests_an_empty_result() {
    // The caller talks from the answer: its first turn (0.5 s) is over the prompt (1.2 s),
    // which bargeIn="false" does not listen to, and "please" (2.3 s) starts after the
    // timeout (1.2 + 1 s).
    let gather = r#"<Gather input="speech" timeout="1" bargeIn="false" action="/heard"><Say>Say something now</Say></Gather>"#;
    let from_answer = |c: &mut CallConfig| c.caller.start = CallerAudioStart::Answer;
    let (r, app) = run(gather, from_answer).await;
    assert!(requests(&app, "/heard").is_empty());
    assert_eq!(verbs(&r), ["Gather", "Say"]);
    assert_eq!(speech_event(&r).0, "");

    let gather = r#"<Gather input="speech" timeout="1" bargeIn="false" actionOnEmptyResult="true" action="/heard"><Say>Say something now</Say></Gather>"#;
    let (_, app) = run(gather, from_answer).await;
    let heard = requests(&app, "/heard");
    assert_eq!(heard.len(), 1);
    assert!(param(&heard[0], "SpeechResult").is_none());

    // With bargeIn (the default), the turn over the prompt counts, and the prompt stops
    // where the caller starts (0.5 s of its 1.2 s are heard).
    let gather = r#"<Gather input="speech" timeout="1" action="/heard"><Say>Say something now</Say></Gather>"#;
    let (r, app) = run(gather, |c| {
        from_answer(c);
        c.record = true;
    })
    .await;
    assert_eq!(
        param(&requests(&app, "/heard")[0], "SpeechResult"),
        Some("I want to pay my bill please")
    );
    let heard = &r.call_audio.as_ref().unwrap().heard;
    let silent = |b: &[u8]| b.iter().all(|&c| c == 0xFF || c == 0x7F);
    assert!(
        !silent(&heard[800..3200]),
        "the prompt plays until the caller speaks"
    );
    assert!(silent(&heard[5200..9000]), "then it stops");
}

#[tokio::test]
async fn queued_keys_win_under_dtmf_speech_and_the_error_model_is_seeded() {
    let gather = r#"<Gather input="dtmf speech" numDigits="2" action="/heard"/>"#;
    let (_, app) = run(gather, |c| c.caller.gather_digits = "42".into()).await;
    let heard = requests(&app, "/heard");
    assert_eq!(param(&heard[0], "Digits"), Some("42"));
    assert!(param(&heard[0], "SpeechResult").is_none());

    let gather = r#"<Gather input="speech" speechTimeout="auto" action="/heard"/>"#;
    let errs = |c: &mut CallConfig| {
        c.seed = Some(3);
        c.word_errors = Some(WordErrors { rate: 0.5, seed: 3 });
    };
    let (_, a) = run(gather, errs).await;
    let (_, b) = run(gather, errs).await;
    let ra = param(&requests(&a, "/heard")[0], "SpeechResult").map(String::from);
    let rb = param(&requests(&b, "/heard")[0], "SpeechResult").map(String::from);
    assert_eq!(ra, rb, "the same seed errs the same way");
    assert_ne!(ra.as_deref(), Some("I want to pay my bill please"));
    let confidence: f64 = param(&requests(&a, "/heard")[0], "Confidence")
        .unwrap()
        .parse()
        .unwrap();
    assert!(confidence < 0.92);
}

#[tokio::test]
async fn a_failing_partial_callback_is_a_warning_and_an_unreachable_action_fails_the_call() {
    // Partials to a URL that answers 500: each is warned (15003), the result still goes out.
    let gather = r#"<Gather input="speech" speechTimeout="auto" action="/heard" partialResultCallback="/broken"/>"#;
    let (r, app) = run(gather, |_| {}).await;
    assert_eq!(requests(&app, "/heard").len(), 1);
    assert!(!requests(&app, "/broken").is_empty());
    let warned: Vec<u16> = r.report.warnings.iter().map(|(c, _)| *c).collect();
    assert!(warned.contains(&15003), "{:?}", r.report.warnings);
    assert!(r.report.failures.is_empty(), "{:?}", r.report.failures);

    // An action nobody listens at: the call fails at that step, with Twilio's code.
    let gather =
        r#"<Gather input="speech" speechTimeout="auto" action="http://127.0.0.1:1/heard"/>"#;
    let (r, _) = run(gather, |_| {}).await;
    let codes: Vec<u16> = r.report.failures.iter().map(|f| f.code()).collect();
    assert_eq!(codes, [11205], "{:?}", r.report.failures);
}
