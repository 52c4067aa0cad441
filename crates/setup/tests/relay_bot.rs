//! The reference bot's relay mode called by dialtone's call engine over real sockets: the
//! embedded relay app (`TargetOptions::embedded_app`) answers every turn, and each relay
//! fault (`misbehave`) shows up in the call's report exactly as what it is.

use std::time::Duration;

use dialtone_audio::AudioCache;
use dialtone_bot::relay::{CLOSE_AFTER_TOKENS, MALFORMED_MESSAGES, SLOW_FIRST_TOKEN, TOKEN_FLOOD};
use dialtone_bot::{BotConfig, RelayMode};
use dialtone_call::relay::{RelayEvent, RelayReport, SessionStatus};
use dialtone_call::report::{CallReport, EventKind, Failure};
use dialtone_call::{CallConfig, DEFAULT_AUTH_TOKEN, Engine};
use dialtone_corpus::Corpus;
use dialtone_protocol::relay::WEBSOCKET_ENDED;
use dialtone_protocol::webhook::CallStatus;
use dialtone_setup::{EmbeddedApp, Target, TargetOptions};

/// What the simulated recognizer waits after the caller's true end of speech.
const RECOGNITION_MS: f64 = 500.0;

/// How long the caller stays after its last turn once nothing happens: short, to keep the
/// tests fast.
const TAIL: Duration = Duration::from_millis(300);

/// A call to `url` saying corpus entry `name`; quick speech and a short tail keep it short.
async fn call(url: &str, name: &str) -> CallReport {
    call_with_tail(url, name, TAIL).await
}

async fn call_with_tail(url: &str, name: &str, tail: Duration) -> CallReport {
    let corpus = Corpus::open(&Corpus::default_dir()).expect("corpus");
    let entry = corpus.load(name, &AudioCache::new()).expect("entry");
    let mut cfg = CallConfig::new(url.to_owned(), entry.frames.clone());
    cfg.caller.turns = entry.turns.clone();
    cfg.caller.tail = tail;
    cfg.relay_speech.per_char = Duration::from_millis(10);
    cfg.max_duration = Duration::from_secs(30);
    Engine::new().place_call(cfg, None).await.report
}

/// A call to the relay-mode bot misbehaving as `spec`.
async fn call_misbehaving(spec: &str, name: &str) -> CallReport {
    call_misbehaving_with_tail(spec, name, TAIL).await
}

async fn call_misbehaving_with_tail(spec: &str, name: &str, tail: Duration) -> CallReport {
    let config = BotConfig {
        relay: Some(RelayMode::default()),
        misbehave: spec.parse().expect("spec"),
        ..BotConfig::default()
    };
    let (url, task) = dialtone_bot::spawn_loopback(config).await.expect("bot");
    let report = call_with_tail(&url, name, tail).await;
    task.abort();
    report
}

fn session(report: &CallReport) -> &RelayReport {
    assert_eq!(report.relay.len(), 1, "{report:#?}");
    &report.relay[0]
}

fn status(relay: &RelayReport) -> SessionStatus {
    relay.end.as_ref().expect("the session ended").status
}

#[tokio::test]
async fn the_embedded_relay_app_answers_every_turn() {
    let target = Target::start(TargetOptions {
        webhook: None,
        auth_token: DEFAULT_AUTH_TOKEN,
        events_listen: "127.0.0.1:0".parse().expect("addr"),
        capture: None,
        embedded_app: EmbeddedApp::Relay,
    })
    .await
    .expect("target");
    let report = call(target.url(), "question_pace").await;
    target.finish();
    assert!(report.is_success(), "{:?}", report.failures);
    let relay = session(&report);
    assert_eq!(status(relay), SessionStatus::Completed);
    assert_eq!(relay.errors_sent, 0);
    let turn = &relay.turns[0];
    let first = turn.first_token_ms.expect("first token");
    // Recognition, then the bot's 150 ms of thinking.
    let think = first - turn.prompt_ms.expect("prompt");
    assert!((140.0..400.0).contains(&think), "{turn:?}");
    assert!(first >= RECOGNITION_MS + 150.0, "{turn:?}");
    // "You said: Am I speaking too fast?": a token a word, 30 ms apart.
    assert_eq!(turn.tokens, 7, "{turn:?}");
    let last = turn.last_token_ms.expect("last token");
    assert!(last - first >= 6.0 * 30.0 - 5.0, "{turn:?}");
}

#[tokio::test]
async fn close_mid_turn_fails_the_session_with_64105() {
    let report = call_misbehaving("close_mid_turn=1", "question_pace").await;
    assert_eq!(report.status, CallStatus::Failed, "{report:#?}");
    let codes: Vec<u16> = report.failures.iter().map(Failure::code).collect();
    assert_eq!(codes, [WEBSOCKET_ENDED], "{:?}", report.failures);
    assert!(matches!(report.failures[0], Failure::RelayEnded { .. }));
    let relay = session(&report);
    assert_eq!(status(relay), SessionStatus::Failed);
    let end = relay.end.as_ref().expect("end");
    assert_eq!(end.error.as_ref().map(|e| e.0), Some(WEBSOCKET_ENDED));
    assert_eq!(end.handoff_data, None);
    let turn = &relay.turns[0];
    assert!(turn.first_token_ms.is_some(), "{turn:?}");
    assert_eq!(turn.last_token_ms, None, "{turn:?}");
    assert_eq!(turn.tokens, CLOSE_AFTER_TOKENS);
}

#[tokio::test]
async fn malformed_messages_cost_errors_and_the_session_goes_on() {
    let report = call_misbehaving("malformed=1", "question_pace").await;
    assert!(report.is_success(), "{:?}", report.failures);
    let relay = session(&report);
    assert_eq!(status(relay), SessionStatus::Completed);
    assert_eq!(relay.errors_sent, MALFORMED_MESSAGES.len() as u32);
    let refused: Vec<&str> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Relay(RelayEvent::Error { message }) => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(refused, MALFORMED_MESSAGES);
    // The answer itself is whole.
    let turn = &relay.turns[0];
    assert_eq!(turn.tokens, 7, "{turn:?}");
    assert!(turn.last_token_ms.is_some(), "{turn:?}");
}

#[tokio::test]
async fn never_last_leaves_every_turn_without_a_last_token() {
    let report = call_misbehaving("never_last=1", "hello").await;
    assert!(report.is_success(), "{:?}", report.failures);
    let relay = session(&report);
    assert_eq!(relay.turns.len(), 2);
    for turn in &relay.turns {
        assert!(turn.first_token_ms.is_some(), "{turn:?}");
        assert!(turn.tokens > 0, "{turn:?}");
        assert_eq!(turn.last_token_ms, None, "{turn:?}");
    }
}

#[tokio::test]
async fn slow_first_token_is_timed_from_the_end_of_speech() {
    // The caller hangs up its tail after its prompt if no token came: it must outwait the
    // slow first token to see it.
    let tail = SLOW_FIRST_TOKEN + Duration::from_millis(500);
    let report = call_misbehaving_with_tail("slow_first_token=1", "answer_yes", tail).await;
    assert!(report.is_success(), "{:?}", report.failures);
    let turn = &session(&report).turns[0];
    let first = turn.first_token_ms.expect("first token");
    let slow = SLOW_FIRST_TOKEN.as_secs_f64() * 1e3;
    assert!(first >= RECOGNITION_MS + slow, "{turn:?}");
    assert!(first < RECOGNITION_MS + slow + 300.0, "{turn:?}");
    assert!(turn.last_token_ms.is_some(), "{turn:?}");
}

#[tokio::test]
async fn a_token_flood_is_counted_and_the_call_completes() {
    let report = call_misbehaving("token_flood=1", "hello").await;
    assert!(report.is_success(), "{:?}", report.failures);
    let relay = session(&report);
    assert_eq!(status(relay), SessionStatus::Completed);
    let (flooded, next) = (&relay.turns[0], &relay.turns[1]);
    assert_eq!(flooded.tokens, TOKEN_FLOOD, "{flooded:?}");
    assert!(flooded.last_token_ms.is_some(), "{flooded:?}");
    // The caller's next turn cuts the flood's speech; the next answer is ordinary.
    assert!(
        relay.interrupts.iter().any(|i| i.at_ms > 4000.0),
        "{:?}",
        relay.interrupts
    );
    assert!(next.last_token_ms.is_some(), "{next:?}");
    assert_eq!(relay.tokens, TOKEN_FLOOD + next.tokens);
    assert!(report.duration_ms < 15_000.0, "{}", report.duration_ms);
}
