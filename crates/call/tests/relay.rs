//! `<Connect><ConversationRelay>` end to end against an app written the way Twilio's
//! tutorials write one: it checks the upgrade's signature against its own URL, answers each
//! final prompt after thinking a while with streamed tokens and an empty `last` token, hands
//! the second turn off with `end`, and its `<Connect action>` answers the session's end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use dialtone_audio::AudioCache;
use dialtone_call::{CallConfig, Engine};
use dialtone_corpus::Corpus;
use dialtone_protocol::signing;

const TOKEN: &str = dialtone_call::DEFAULT_AUTH_TOKEN;
/// The app's "LLM": this long before its first token.
const THINK: Duration = Duration::from_millis(120);

#[derive(Clone, Default)]
struct Seen {
    upgrade_valid: Arc<Mutex<Vec<bool>>>,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
    action: Arc<Mutex<Vec<(String, String)>>>,
    base: Arc<Mutex<String>>,
}

async fn voice(State(seen): State<Seen>) -> Response {
    let base = seen.base.lock().unwrap().clone();
    let twiml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="/done"><ConversationRelay url="ws://{base}/relay" welcomeGreeting="Hi! How can I help?" dtmfDetection="true"><Parameter name="customer" value="42"/></ConversationRelay></Connect></Response>"#
    );
    ([("content-type", "text/xml")], twiml).into_response()
}

async fn upgrade(State(seen): State<Seen>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let url = format!("ws://{}/relay", seen.base.lock().unwrap());
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let valid = signing::validate(TOKEN, &url, &[], signature);
    seen.upgrade_valid.lock().unwrap().push(valid);
    if !valid {
        return axum::http::StatusCode::FORBIDDEN.into_response();
    }
    ws.on_upgrade(move |socket| session(socket, seen))
}

async fn session(mut socket: WebSocket, seen: Seen) {
    let mut answered = 0;
    while let Some(Ok(Message::Text(text))) = socket.recv().await {
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        seen.received.lock().unwrap().push(msg.clone());
        if msg["type"] != "prompt" || msg["last"] != true {
            continue;
        }
        answered += 1;
        tokio::time::sleep(THINK).await;
        for token in ["Sure, ", "I can ", "help."] {
            let t = serde_json::json!({"type": "text", "token": token, "last": false});
            if socket.send(Message::text(t.to_string())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let last = serde_json::json!({"type": "text", "token": "", "last": true});
        let _ = socket.send(Message::text(last.to_string())).await;
        if answered == 2 {
            let end = serde_json::json!({"type": "end", "handoffData": "{\"reason\":\"done\"}"});
            let _ = socket.send(Message::text(end.to_string())).await;
        }
    }
}

async fn done(State(seen): State<Seen>, Form(form): Form<Vec<(String, String)>>) -> Response {
    *seen.action.lock().unwrap() = form;
    (
        [("content-type", "text/xml")],
        "<Response><Hangup/></Response>",
    )
        .into_response()
}

#[tokio::test]
async fn a_tutorial_app_is_timed_from_the_callers_true_end_of_speech() {
    let seen = Seen::default();
    let app = Router::new()
        .route("/voice", post(voice))
        .route("/relay", any(upgrade))
        .route("/done", post(done))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = listener.local_addr().unwrap().to_string();
    *seen.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let corpus = Corpus::open(&Corpus::default_dir()).unwrap();
    let hello = corpus.load("hello", &AudioCache::new()).unwrap();
    let mut cfg = CallConfig::new(format!("http://{base}/voice"), hello.frames.clone());
    cfg.caller.turns = hello.turns.clone();
    let result = Engine::new().place_call(cfg, None).await;
    let report = &result.report;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(*seen.upgrade_valid.lock().unwrap(), [true]);

    // What the app received: setup for this call, then the caller's words.
    let received = seen.received.lock().unwrap().clone();
    assert_eq!(received[0]["type"], "setup");
    assert_eq!(received[0]["callSid"], report.call_sid.as_str());
    assert_eq!(received[0]["customParameters"]["customer"], "42");
    let prompts: Vec<&str> = received
        .iter()
        .filter(|m| m["type"] == "prompt")
        .map(|m| m["voicePrompt"].as_str().unwrap())
        .collect();
    let words: Vec<&str> = hello.turns.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(prompts, words);

    // First token: recognition (500 ms) plus the app's thinking, from the true end.
    let relay = &report.relay[0];
    assert_eq!(relay.turns.len(), 2);
    for t in &relay.turns {
        let prompt = t.prompt_ms.unwrap();
        let first = t.first_token_ms.unwrap();
        let think = first - prompt;
        assert!(
            (think - THINK.as_secs_f64() * 1e3).abs() < 40.0,
            "turn {}: first token {first} ms, prompt {prompt} ms",
            t.index
        );
        assert!(t.last_token_ms.unwrap() >= first + 89.0, "{t:?}");
        assert!(t.speech_ms.unwrap() >= first + 199.0, "{t:?}");
        assert_eq!(t.tokens, 4);
    }

    // The action got the session's end.
    let action = seen.action.lock().unwrap().clone();
    let get = |k: &str| {
        action
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(get("SessionId").starts_with("VX"), "{action:?}");
    assert_eq!(get("SessionStatus"), "ended");
    assert_eq!(get("HandoffData"), r#"{"reason":"done"}"#);
    assert_eq!(get("CallSid"), report.call_sid);
}

#[tokio::test]
async fn a_relay_behind_a_tunnel_that_leads_nowhere_names_the_tunnel() {
    // The relay's public URL maps to a local port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = closed.local_addr().unwrap();
    drop(closed);
    let app = Router::new().route(
        "/voice",
        post(|| async {
            (
                [("content-type", "text/xml")],
                r#"<Response><Connect><ConversationRelay url="wss://bot.example.test/relay"/></Connect></Response>"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cfg = CallConfig::new(
        format!("http://{base}/voice"),
        Arc::new(dialtone_audio::FrameSet::silence(10)),
    );
    cfg.tunnels = Arc::new(dialtone_call::Tunnels::new(vec![
        format!("https://bot.example.test=http://{nowhere}")
            .parse()
            .unwrap(),
    ]));
    let result = Engine::new().place_call(cfg, None).await;
    let failure = result
        .report
        .failures
        .iter()
        .find_map(|f| match f {
            dialtone_call::Failure::RelayConnect { url, cause } => Some((url, cause)),
            _ => None,
        })
        .expect("a relay connect failure");
    assert_eq!(failure.0, "wss://bot.example.test/relay");
    assert!(
        failure
            .1
            .contains(&format!("(connecting via the tunnel to {nowhere})")),
        "{}",
        failure.1
    );
}

/// The app's hold music: 400 ms of a tone, as a WAV.
fn hold_music() -> Vec<u8> {
    let pcm: Vec<i16> = (0..3200)
        .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
        .collect();
    dialtone_audio::wav::encode_8k(&[&pcm]).unwrap()
}

async fn playing_session(mut socket: WebSocket, base: String) {
    let mut prompts = 0;
    while let Some(Ok(Message::Text(text))) = socket.recv().await {
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        if msg["type"] != "prompt" || msg["last"] != true {
            continue;
        }
        prompts += 1;
        let reply = if prompts == 1 {
            vec![
                serde_json::json!({"type": "play", "source": format!("http://{base}/hold.wav"), "loop": 2, "interruptible": false}),
                serde_json::json!({"type": "play", "source": format!("http://{base}/missing.wav")}),
            ]
        } else {
            vec![serde_json::json!({"type": "end"})]
        };
        for m in reply {
            if socket.send(Message::text(m.to_string())).await.is_err() {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_play_the_app_serves_is_fetched_and_heard_and_a_missing_one_reported() {
    let base = Arc::new(Mutex::new(String::new()));
    let b = Arc::clone(&base);
    let app = Router::new()
        .route(
            "/voice",
            post(|State(base): State<Arc<Mutex<String>>>| async move {
                let base = base.lock().unwrap().clone();
                (
                    [("content-type", "text/xml")],
                    format!(
                        r#"<Response><Connect><ConversationRelay url="ws://{base}/relay"/></Connect></Response>"#
                    ),
                )
            }),
        )
        .route(
            "/hold.wav",
            axum::routing::get(|| async { ([("content-type", "audio/wav")], hold_music()) }),
        )
        .route(
            "/relay",
            any(
                |State(base): State<Arc<Mutex<String>>>, ws: WebSocketUpgrade| async move {
                    let base = base.lock().unwrap().clone();
                    ws.on_upgrade(move |socket| playing_session(socket, base))
                },
            ),
        )
        .with_state(b);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    *base.lock().unwrap() = addr.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let corpus = Corpus::open(&Corpus::default_dir()).unwrap();
    let hello = corpus.load("hello", &AudioCache::new()).unwrap();
    let mut cfg = CallConfig::new(format!("http://{addr}/voice"), hello.frames.clone());
    cfg.caller.turns = hello.turns.clone();
    let result = Engine::new().place_call(cfg, None).await;
    let report = &result.report;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let relay = &report.relay[0];
    let hold = format!("http://{addr}/hold.wav");
    let missing = format!("http://{addr}/missing.wav");
    assert_eq!(relay.plays, [hold.clone(), missing.clone()]);
    assert_eq!(relay.play_failures.len(), 1);
    assert_eq!(relay.play_failures[0].source, missing);
    assert!(
        relay.play_failures[0].cause.contains("404"),
        "{:?}",
        relay.play_failures
    );
    // Heard: 400 ms, twice.
    let played: Vec<(u64, Option<f64>)> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            dialtone_call::EventKind::Relay(dialtone_call::relay::RelayEvent::Play {
                source,
                duration_ms,
                start_ms,
            }) if *source == hold => Some((*duration_ms, *start_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(played.len(), 1, "{:?}", report.timeline);
    assert_eq!(played[0].0, 800);
    assert!(played[0].1.is_some());
    assert!(report.timeline.iter().any(|e| matches!(
        &e.kind,
        dialtone_call::EventKind::Relay(dialtone_call::relay::RelayEvent::PlayFailed { source, .. })
            if *source == missing
    )));
}

/// Answers the first prompt at once with 200 characters (13 s of speech, cut by the second
/// turn); ends the session on the second.
async fn long_answer(mut socket: WebSocket) {
    let mut prompts = 0;
    while let Some(Ok(Message::Text(text))) = socket.recv().await {
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        if msg["type"] != "prompt" || msg["last"] != true {
            continue;
        }
        prompts += 1;
        let m = if prompts == 1 {
            serde_json::json!({"type": "text", "token": "la ".repeat(66) + "la", "last": true})
        } else {
            serde_json::json!({"type": "end"})
        };
        if socket.send(Message::text(m.to_string())).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn the_heard_track_sounds_exactly_while_the_agent_speaks_and_stops_at_the_interrupt() {
    let app = Router::new()
        .route(
            "/voice",
            post(|headers: HeaderMap| async move {
                let host = headers["host"].to_str().unwrap().to_string();
                (
                    [("content-type", "text/xml")],
                    format!(
                        r#"<Response><Connect><ConversationRelay url="ws://{host}/relay"/></Connect></Response>"#
                    ),
                )
            }),
        )
        .route(
            "/relay",
            any(|ws: WebSocketUpgrade| async move { ws.on_upgrade(long_answer) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let corpus = Corpus::open(&Corpus::default_dir()).unwrap();
    let hello = corpus.load("hello", &AudioCache::new()).unwrap();
    let mut cfg = CallConfig::new(format!("http://{addr}/voice"), hello.frames.clone());
    cfg.caller.turns = hello.turns.clone();
    cfg.record = true;
    let result = Engine::new().place_call(cfg, None).await;
    let report = &result.report;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let relay = &report.relay[0];
    // On the session's timeline: the answer heard from the first turn's end plus its
    // speech_ms, until the second turn cut it.
    let first = &hello.turns[0];
    let from = f64::from(first.end_ms) + relay.turns[0].speech_ms.unwrap();
    assert_eq!(relay.interrupts.len(), 1, "{relay:?}");
    let cut = relay.interrupts[0].at_ms;
    assert!(cut > from + 100.0, "{from} {cut}");
    let heard = &result.relay_audio[0].heard;
    let end = relay.end.as_ref().unwrap().at_ms;
    assert_eq!(heard.len(), (end * 8.0) as usize);
    assert_eq!(result.relay_audio[0].session_id, relay_session_id(report));
    // Energy per 20 ms frame; frames straddling an edge are left out.
    for (k, frame) in heard.chunks(160).enumerate() {
        let (a, b) = (k as f64 * 20.0, k as f64 * 20.0 + 20.0);
        let rms = (frame
            .iter()
            .map(|&c| f64::from(dialtone_audio::mulaw::decode(c)).powi(2))
            .sum::<f64>()
            / frame.len() as f64)
            .sqrt();
        if a >= from && b <= cut {
            assert!(rms > 1000.0, "frame {k} ({a}–{b} ms) silent: {rms}");
        } else if b <= from || a >= cut {
            assert!(rms < 50.0, "frame {k} ({a}–{b} ms) not silent: {rms}");
        }
    }
}

fn relay_session_id(report: &dialtone_call::CallReport) -> String {
    report
        .timeline
        .iter()
        .find_map(|e| match &e.kind {
            dialtone_call::EventKind::Relay(dialtone_call::relay::RelayEvent::Connected {
                session_id,
                ..
            }) => Some(session_id.clone()),
            _ => None,
        })
        .unwrap()
}

/// Requests in flight now, and the most seen at once.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<(u32, u32)>>);

/// Twelve plays of twelve sources at once, then `end` once they are all fetched.
async fn many_plays(mut socket: WebSocket, base: String) {
    while let Some(Ok(Message::Text(text))) = socket.recv().await {
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        if msg["type"] != "setup" {
            continue;
        }
        for i in 0..12 {
            let play =
                serde_json::json!({"type": "play", "source": format!("http://{base}/w/{i}.wav")});
            let _ = socket.send(Message::text(play.to_string())).await;
        }
        // Long enough for every fetch (12 × 100 ms, four at a time).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let _ = socket
            .send(Message::text(r#"{"type":"end"}"#.to_string()))
            .await;
    }
}

#[tokio::test]
async fn an_app_asking_for_many_plays_at_once_gets_a_few_fetches_at_a_time() {
    let seen = InFlight::default();
    let base = Arc::new(Mutex::new(String::new()));
    let wav = {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move {
                {
                    let mut s = seen.0.lock().unwrap();
                    s.0 += 1;
                    s.1 = s.1.max(s.0);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                seen.0.lock().unwrap().0 -= 1;
                ([("content-type", "audio/wav")], hold_music())
            }
        }
    };
    let b = Arc::clone(&base);
    let app = Router::new()
        .route(
            "/voice",
            post(move || {
                let base = b.lock().unwrap().clone();
                async move {
                    (
                        [("content-type", "text/xml")],
                        format!(
                            r#"<Response><Connect><ConversationRelay url="ws://{base}/relay"/></Connect></Response>"#
                        ),
                    )
                }
            }),
        )
        .route("/w/{name}", axum::routing::get(wav))
        .route(
            "/relay",
            any({
                let base = Arc::clone(&base);
                move |ws: WebSocketUpgrade| {
                    let base = base.lock().unwrap().clone();
                    async move { ws.on_upgrade(move |socket| many_plays(socket, base)) }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    *base.lock().unwrap() = addr.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cfg = CallConfig::new(
        format!("http://{addr}/voice"),
        Arc::new(dialtone_audio::FrameSet::from_pcm(&[0; 8000])),
    );
    cfg.record = true;
    let result = Engine::new().place_call(cfg, None).await;
    let relay = &result.report.relay[0];
    assert_eq!(relay.play_requests, 12);
    assert!(relay.play_failures.is_empty(), "{:?}", relay.play_failures);
    // (A fetch cut short by the session's end may still be running on the app's side.)
    let most = seen.0.lock().unwrap().1;
    assert_eq!(most, 4, "four fetches at once, the rest waiting");
}
