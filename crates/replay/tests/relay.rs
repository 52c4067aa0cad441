//! ConversationRelay sessions captured by the call engine and replayed, on real loopback
//! sockets: a tutorial-shaped relay app (signature checked on the upgrade, tokens streamed
//! after thinking, `end` with handoffData on the second turn), then replayed against the same
//! app (no difference), an app that answers differently (the turn and its prompt named), one
//! that ends without handoffData, and one that thinks longer (a timing divergence).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use dialtone_audio::AudioCache;
use dialtone_call::{CallConfig, Engine};
use dialtone_corpus::Corpus;
use dialtone_protocol::signing;
use dialtone_replay::{ReplayError, ReplayOptions, replay};

const TOKEN: &str = dialtone_call::DEFAULT_AUTH_TOKEN;

/// How the app answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// "Sure, I can help." after 120 ms; `end` with handoffData after the second answer.
    Tutorial,
    /// Other words in the second answer.
    OtherWords,
    /// `end` without handoffData.
    NoHandoff,
    /// Thinks 500 ms instead of 120.
    Slow,
}

#[derive(Clone)]
struct App {
    mode: Mode,
    base: Arc<Mutex<String>>,
    /// Every text message the app received, per session.
    received: Arc<Mutex<Vec<Vec<String>>>>,
}

impl App {
    async fn start(mode: Mode) -> App {
        let app = App {
            mode,
            base: Arc::default(),
            received: Arc::default(),
        };
        let router = Router::new()
            .route("/voice", post(voice))
            .route("/relay", any(upgrade))
            .with_state(app.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *app.base.lock().unwrap() = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        app
    }

    fn voice_url(&self) -> String {
        format!("http://{}/voice", self.base.lock().unwrap())
    }
}

async fn voice(State(app): State<App>) -> Response {
    let base = app.base.lock().unwrap().clone();
    let twiml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><ConversationRelay url="ws://{base}/relay" welcomeGreeting="Hi! How can I help?"/></Connect></Response>"#
    );
    ([("content-type", "text/xml")], twiml).into_response()
}

async fn upgrade(State(app): State<App>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let url = format!("ws://{}/relay", app.base.lock().unwrap());
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !signing::validate(TOKEN, &url, &[], signature) {
        return axum::http::StatusCode::FORBIDDEN.into_response();
    }
    let index = {
        let mut r = app.received.lock().unwrap();
        r.push(Vec::new());
        r.len() - 1
    };
    ws.on_upgrade(move |socket| session(socket, app, index))
}

async fn session(mut socket: WebSocket, app: App, index: usize) {
    let mut answered = 0;
    while let Some(Ok(Message::Text(text))) = socket.recv().await {
        app.received.lock().unwrap()[index].push(text.to_string());
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        if msg["type"] != "prompt" || msg["last"] != true {
            continue;
        }
        answered += 1;
        let think = if app.mode == Mode::Slow { 500 } else { 120 };
        tokio::time::sleep(Duration::from_millis(think)).await;
        let tokens: &[&str] = if answered == 2 && app.mode == Mode::OtherWords {
            &["No, ", "I can't."]
        } else {
            &["Sure, ", "I can ", "help."]
        };
        for token in tokens {
            let t = serde_json::json!({"type": "text", "token": token, "last": false});
            if socket.send(Message::text(t.to_string())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let last = serde_json::json!({"type": "text", "token": "", "last": true});
        let _ = socket.send(Message::text(last.to_string())).await;
        if answered == 2 {
            let end = if app.mode == Mode::NoHandoff {
                serde_json::json!({"type": "end"})
            } else {
                serde_json::json!({"type": "end", "handoffData": "{\"reason\":\"done\"}"})
            };
            let _ = socket.send(Message::text(end.to_string())).await;
        }
    }
}

/// A call against a Tutorial app, captured into `path`.
async fn capture_call(path: &std::path::Path) {
    let recorded_against = App::start(Mode::Tutorial).await;
    let file = std::fs::File::create(path).unwrap();
    let capture = Arc::new(dialtone_call::capture::Capture::new(Box::new(
        std::io::BufWriter::new(file),
    )));
    let corpus = Corpus::open(&Corpus::default_dir()).unwrap();
    let hello = corpus.load("hello", &AudioCache::new()).unwrap();
    let mut cfg = CallConfig::new(recorded_against.voice_url(), hello.frames.clone());
    cfg.caller.turns = hello.turns.clone();
    cfg.capture = Some(capture.clone());
    let result = Engine::new().place_call(cfg, None).await;
    assert!(result.report.is_success(), "{:?}", result.report.failures);
    capture.finish().unwrap();
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn opts(path: &std::path::Path, app: &App) -> ReplayOptions {
    let mut o = ReplayOptions::new(path, app.voice_url(), TOKEN);
    o.grace = Duration::from_millis(500);
    o
}

#[tokio::test]
async fn a_captured_relay_session_replays_and_a_changed_app_is_named_turn_by_turn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.jsonl");
    capture_call(&path).await;

    // The capture: the upgrade, setup and both prompts out, the tokens and end in, the close.
    let recs = lines(&path);
    let kinds: Vec<&str> = recs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    let open = recs.iter().find(|r| r["kind"] == "relay_open").unwrap();
    assert_eq!(open["status"], 101);
    assert!(open["session_id"].as_str().unwrap().starts_with("VX"));
    assert!(open["url"].as_str().unwrap().ends_with("/relay"));
    assert!(!open["signature"].as_str().unwrap().is_empty());
    let outs: Vec<serde_json::Value> = recs
        .iter()
        .filter(|r| r["kind"] == "relay_out")
        .map(|r| serde_json::from_str(r["text"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(outs[0]["type"], "setup");
    assert_eq!(outs.iter().filter(|o| o["type"] == "prompt").count(), 2);
    let ins: Vec<serde_json::Value> = recs
        .iter()
        .filter(|r| r["kind"] == "relay_in")
        .map(|r| serde_json::from_str(r["text"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(ins.len(), 9, "{ins:?}"); // 2 × (3 tokens + last), end
    assert_eq!(ins[8]["type"], "end");
    let close = recs.iter().find(|r| r["kind"] == "relay_close").unwrap();
    assert_eq!(
        (close["by"].as_str(), close["code"].as_u64()),
        (Some("dialtone"), Some(1000))
    );
    // The session's records come in order: open, messages, close.
    let first_relay = kinds.iter().position(|k| k.starts_with("relay_")).unwrap();
    let last_relay = kinds.iter().rposition(|k| k.starts_with("relay_")).unwrap();
    assert_eq!(
        (kinds[first_relay], kinds[last_relay]),
        ("relay_open", "relay_close")
    );
    // Time runs forward within the session.
    let ts: Vec<f64> = recs
        .iter()
        .filter(|r| r["kind"].as_str().unwrap().starts_with("relay_"))
        .map(|r| r["t_ms"].as_f64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");

    // (a) The same app, on another port: no differences.
    let same = App::start(Mode::Tutorial).await;
    let report = replay(&opts(&path, &same)).await.unwrap();
    println!("{}", report.to_text());
    assert!(report.matches, "{}", report.to_text());
    assert!(report.reproduced);
    assert_eq!(report.exit_code(), 0);
    let relay = report.relay.as_ref().unwrap();
    assert_eq!(relay.turns.len(), 2);
    for t in &relay.turns {
        assert!(t.answer_matches && t.latency_matches, "{t:?}");
        assert_eq!(t.replayed_answer.as_deref(), Some("Sure, I can help."));
        let (c, r) = (
            t.captured_first_token_ms.unwrap(),
            t.replayed_first_token_ms.unwrap(),
        );
        assert!(
            (c - 120.0).abs() < 60.0 && (r - 120.0).abs() < 60.0,
            "{t:?}"
        );
    }
    assert!(relay.end.matches);
    assert_eq!(
        relay.end.replayed.as_ref().unwrap().handoff_data.as_deref(),
        Some(r#"{"reason":"done"}"#)
    );
    // The app got dialtone's messages byte for byte.
    let sent: Vec<String> = recs
        .iter()
        .filter(|r| r["kind"] == "relay_out")
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(same.received.lock().unwrap()[0], sent);

    // --fast: the same messages without the idle time; the latency still holds (it is
    // measured from the replay's own send of each prompt).
    let mut fast = opts(&path, &same);
    fast.fast = true;
    let started = tokio::time::Instant::now();
    let report = replay(&fast).await.unwrap();
    println!("{}", report.to_text());
    assert!(report.matches && report.reproduced, "{}", report.to_text());
    assert!(!report.timing.meaningful);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // (b) Other words in the second answer: that turn, with its prompt, is the difference.
    let other = App::start(Mode::OtherWords).await;
    let report = replay(&opts(&path, &other)).await.unwrap();
    println!("{}", report.to_text());
    assert!(!report.matches);
    assert_eq!(report.exit_code(), 1);
    // Two tokens instead of three is not a change of message types: the answer is the
    // difference, and the only one.
    assert_eq!(report.divergences.len(), 1, "{}", report.to_text());
    let answer = report.first_divergence().unwrap();
    assert_eq!(answer.kind, "answer");
    let prompt2 = outs
        .iter()
        .filter(|o| o["type"] == "prompt")
        .nth(1)
        .unwrap()["voicePrompt"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        answer.description,
        format!("turn 2 (prompt \"{prompt2}\"): the app's answer differs")
    );
    assert_eq!(answer.captured.as_deref(), Some("Sure, I can help."));
    assert_eq!(answer.replayed.as_deref(), Some("No, I can't."));
    assert!(
        report
            .to_text()
            .contains("answer DIFFERS: \"No, I can't.\"")
    );
    // The first turn still matched; the session still ended as captured.
    let relay = report.relay.as_ref().unwrap();
    assert!(relay.turns[0].answer_matches && !relay.turns[1].answer_matches);
    assert!(
        relay.end.matches && report.reproduced,
        "{}",
        report.to_text()
    );

    // (b') The same answers, but end without handoffData.
    let no_handoff = App::start(Mode::NoHandoff).await;
    let report = replay(&opts(&path, &no_handoff)).await.unwrap();
    println!("{}", report.to_text());
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.divergences.len(), 1, "{}", report.to_text());
    let d = &report.divergences[0];
    assert_eq!(d.kind, "end");
    assert!(
        d.description.starts_with(
            r#"the app's end carries no handoffData (capture: handoffData {"reason":"done"}), in turn 2"#
        ),
        "{}",
        d.description
    );
    assert!(
        report.verdict.starts_with("OUTCOME REPRODUCED"),
        "{}",
        report.verdict
    );

    // (c) Same words, 380 ms slower each turn: a timing divergence, beyond 100 ms.
    let slow = App::start(Mode::Slow).await;
    let report = replay(&opts(&path, &slow)).await.unwrap();
    println!("{}", report.to_text());
    assert_eq!(report.exit_code(), 1);
    assert!(
        report.divergences.iter().all(|d| d.kind == "timing"),
        "{}",
        report.to_text()
    );
    let d = report.first_divergence().unwrap();
    assert!(
        d.description
            .starts_with("timing divergence: turn 1 (prompt \""),
        "{}",
        d.description
    );
    assert!(
        d.description
            .contains("beyond the 100 ms tolerance; the answer matches")
    );
    assert!(
        report
            .verdict
            .contains("match in content but not in timing"),
        "{}",
        report.verdict
    );
}

#[tokio::test]
async fn relay_records_of_another_shape_are_bad_input_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"{"t_ms":0.1,"call_sid":"CA1","kind":"http_request","purpose":"voice","method":"POST","url":"http://127.0.0.1:9/voice","signature":"x","body":"CallSid=CA1"}"#;
    for (name, line) in [
        // An older writer's relay_open, without the upgrade's outcome and signature.
        (
            "old",
            r#"{"t_ms":1,"call_sid":"CA1","kind":"relay_open","session_id":"VX1"}"#,
        ),
        // A kind this version does not know.
        (
            "unknown",
            r#"{"t_ms":1,"call_sid":"CA1","kind":"relay_token","session_id":"VX1","text":"x"}"#,
        ),
        // The right kind, a field of the wrong type.
        (
            "wrong",
            r#"{"t_ms":1,"call_sid":"CA1","kind":"relay_close","session_id":"VX1","by":"app","code":"1000","reason":""}"#,
        ),
    ] {
        let path = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, format!("{head}\n{line}\n")).unwrap();
        let o = ReplayOptions::new(&path, "http://127.0.0.1:9/voice", TOKEN);
        match replay(&o).await {
            Err(ReplayError::InvalidLine { line: 2, cause, .. }) => {
                println!("{name}: {cause}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}
