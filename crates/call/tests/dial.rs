//! `<Dial>` against real apps on loopback: a voice-AI app that streams with the caller and
//! then transfers to a hosted "agent" number whose app greets over its own stream; and
//! simulated callees that are busy, do not answer, fail, or answer and are cut by
//! `timeLimit` or the caller's `*`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Form, State};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use common::noise;
use dialtone_audio::{FrameSet, mulaw};
use dialtone_call::dial::{CalleeAnswer, HostedApp, Numbers, SimulatedCallee};
use dialtone_call::{CallConfig, Engine};

type Params = Vec<(String, String)>;

#[derive(Default)]
struct Seen {
    /// Every HTTP request: path and form.
    http: Vec<(String, Params)>,
    /// μ-law the agent's stream received.
    agent_heard: Vec<u8>,
}

#[derive(Clone)]
struct App {
    base_ws: String,
    seen: Arc<Mutex<Seen>>,
    greeting: Arc<Vec<u8>>,
}

fn twiml(body: String) -> impl IntoResponse {
    ([("content-type", "text/xml")], body)
}

fn value<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The voice-AI app and the agent's app, on one port (two numbers' URLs).
async fn start_apps(greeting: Vec<u8>) -> (String, App) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = App {
        base_ws: format!("ws://{addr}"),
        seen: Arc::default(),
        greeting: Arc::new(greeting),
    };
    let router = Router::new()
        .route("/voice", post(voice))
        .route("/after-stream", post(after_stream))
        .route("/dial-done", post(dial_done))
        .route("/leg-status", post(leg_status))
        .route("/agent", post(agent))
        .route("/ai", any(ai_ws))
        .route("/agent-ws", any(agent_ws))
        .with_state(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}"), app)
}

fn log(app: &App, path: &str, p: Params) {
    app.seen.lock().unwrap().http.push((path.to_string(), p));
}

async fn voice(State(app): State<App>, Form(p): Form<Params>) -> impl IntoResponse {
    log(&app, "/voice", p);
    twiml(format!(
        "<Response><Connect action=\"/after-stream\"><Stream url=\"{}/ai\"/></Connect></Response>",
        app.base_ws
    ))
}

async fn after_stream(State(app): State<App>, Form(p): Form<Params>) -> impl IntoResponse {
    log(&app, "/after-stream", p);
    twiml(
        "<Response><Say>Transferring you now.</Say><Dial action=\"/dial-done\" timeout=\"10\">\
         <Number statusCallback=\"/leg-status\" \
         statusCallbackEvent=\"initiated ringing answered completed\">+15550002222</Number>\
         </Dial></Response>"
            .into(),
    )
}

async fn dial_done(State(app): State<App>, Form(p): Form<Params>) -> impl IntoResponse {
    log(&app, "/dial-done", p);
    twiml("<Response><Hangup/></Response>".into())
}

async fn leg_status(State(app): State<App>, Form(p): Form<Params>) -> impl IntoResponse {
    log(&app, "/leg-status", p);
    ""
}

async fn agent(State(app): State<App>, Form(p): Form<Params>) -> impl IntoResponse {
    log(&app, "/agent", p);
    twiml(format!(
        "<Response><Connect><Stream url=\"{}/agent-ws\"/></Connect></Response>",
        app.base_ws
    ))
}

/// The voice-AI app's stream: listens for a second, then hangs up its side to transfer.
async fn ai_ws(ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(|mut s: WebSocket| async move {
        let mut media = 0;
        while let Some(Ok(m)) = s.recv().await {
            if let Message::Text(t) = m
                && t.contains("\"event\":\"media\"")
            {
                media += 1;
                if media == 50 {
                    let _ = s.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    })
}

/// The agent's stream: greets, paced as a real app paces speech, records what it hears,
/// and hangs up two seconds after its greeting.
async fn agent_ws(State(app): State<App>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(move |s: WebSocket| async move {
        let (mut tx, mut rx) = futures_util::StreamExt::split(s);
        let seen = app.seen.clone();
        let (sid_tx, sid_rx) = tokio::sync::oneshot::channel::<String>();
        let reader = tokio::spawn(async move {
            let mut sid_tx = Some(sid_tx);
            while let Some(Ok(Message::Text(t))) = futures_util::StreamExt::next(&mut rx).await {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "start"
                    && let Some(tx) = sid_tx.take()
                {
                    let _ = tx.send(v["streamSid"].as_str().unwrap().to_string());
                }
                if v["event"] == "media" {
                    use base64::Engine as _;
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(v["media"]["payload"].as_str().unwrap())
                        .unwrap();
                    seen.lock().unwrap().agent_heard.extend(b);
                }
            }
        });
        // Media must name the stream `start` announced, or Twilio ignores it.
        let Ok(sid) = sid_rx.await else { return };
        use base64::Engine as _;
        use futures_util::SinkExt;
        for chunk in app.greeting.chunks(800) {
            let msg = serde_json::json!({
                "event": "media", "streamSid": sid,
                "media": {"payload": base64::engine::general_purpose::STANDARD.encode(chunk)}
            });
            if tx
                .send(Message::Text(msg.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(90)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = tx.send(Message::Close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn pearson(a: &[u8], b: &[u8]) -> f64 {
    let n = a.len().min(b.len());
    let x: Vec<f64> = a[..n]
        .iter()
        .map(|&c| f64::from(mulaw::decode(c)))
        .collect();
    let y: Vec<f64> = b[..n]
        .iter()
        .map(|&c| f64::from(mulaw::decode(c)))
        .collect();
    let (mx, my) = (
        x.iter().sum::<f64>() / n as f64,
        y.iter().sum::<f64>() / n as f64,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx).powi(2);
        syy += (y[i] - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

fn base_config(url: String, caller: Arc<FrameSet>) -> CallConfig {
    let mut cfg = CallConfig::new(url, caller);
    cfg.caller.tail = Duration::from_millis(500);
    cfg.max_duration = Duration::from_secs(30);
    cfg.webhook_timeout = Duration::from_secs(5);
    cfg.no_audio_timeout = None;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_ai_app_transfers_to_a_hosted_agent_and_each_hears_the_other() {
    let greeting = noise(1500, 7).mulaw().to_vec();
    let (base, app) = start_apps(greeting.clone()).await;
    let caller = Arc::new(noise(8000, 99));
    let mut cfg = base_config(format!("{base}/voice"), caller.clone());
    cfg.record = true;
    cfg.directory = Arc::new(Numbers {
        apps: vec![(
            "+1 555 000 2222".into(),
            HostedApp {
                url: format!("{base}/agent"),
                method: dialtone_call::HttpMethod::Post,
                fallback_url: None,
                account_sid: cfg.account_sid.clone(),
                auth_token: cfg.auth_token.clone(),
                tunnels: Arc::default(),
            },
        )],
        ..Numbers::simulated(SimulatedCallee::answering(Arc::new(noise(500, 1))))
    });
    let result = Engine::new().place_call(cfg, None).await;
    let report = &result.report;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let seen = app.seen.lock().unwrap();
    let paths: Vec<&str> = seen.http.iter().map(|(p, _)| p.as_str()).collect();
    assert!(paths.contains(&"/agent"), "{paths:?}");

    // The action says how the dial went.
    let (_, done) = seen.http.iter().find(|(p, _)| p == "/dial-done").unwrap();
    assert_eq!(value(done, "DialCallStatus"), Some("completed"));
    assert_eq!(value(done, "DialBridged"), Some("true"));
    let leg = value(done, "DialCallSid").unwrap();
    assert!(leg.starts_with("CA") && leg != report.call_sid);
    let secs: u64 = value(done, "DialCallDuration").unwrap().parse().unwrap();
    assert!((2..=6).contains(&secs), "DialCallDuration {secs}");

    // The agent's app was rung as an inbound call from the caller.
    let (_, agent) = seen.http.iter().find(|(p, _)| p == "/agent").unwrap();
    assert_eq!(value(agent, "Direction"), Some("inbound"));
    assert_eq!(value(agent, "To"), Some("+15550002222"));
    assert_eq!(value(agent, "From"), Some("+15005550006"));

    // The leg's status callbacks, in order, as an outbound-dial child of the call.
    let statuses: Vec<&str> = seen
        .http
        .iter()
        .filter(|(p, _)| p == "/leg-status")
        .map(|(_, q)| {
            assert_eq!(value(q, "CallSid"), Some(leg));
            assert_eq!(value(q, "ParentCallSid"), Some(report.call_sid.as_str()));
            assert_eq!(value(q, "Direction"), Some("outbound-dial"));
            value(q, "CallStatus").unwrap()
        })
        .collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );

    // The agent's app heard the caller: byte for byte, from where the caller had got to.
    let heard = &seen.agent_heard;
    assert!(heard.len() > 8000 * 2, "agent heard {} bytes", heard.len());
    let at = find(caller.mulaw(), &heard[..160]).expect("the agent hears the caller's audio");
    assert_eq!(at % 160, 0);
    assert!(
        at >= 160 * 50,
        "the caller's first second went to the AI app, not the agent"
    );
    let n = (caller.mulaw().len() - at).min(heard.len()).min(8000 * 3);
    assert_eq!(&heard[..n], &caller.mulaw()[at..at + n]);

    // The caller heard the agent's greeting.
    let audio = result.call_audio.as_ref().expect("recorded");
    let start = find(&audio.heard, &greeting[..160]).expect("the caller hears the greeting");
    let r = pearson(&audio.heard[start..], &greeting);
    assert!(r >= 0.9, "greeting correlation {r}");
    assert_eq!(report.dials.len(), 1);
    let app_report = report.dials[0].app.as_ref().unwrap();
    assert_eq!(app_report.streams[0].invalid_messages, 0);
}

async fn simulated(
    answer: CalleeAnswer,
    dial: &str,
    tweak: impl FnOnce(&mut CallConfig),
) -> (dialtone_call::CallResult, Vec<(String, Params)>) {
    let (base, app) = start_apps(Vec::new()).await;
    // A document that dials straight away, by inline TwiML with the app's base for URLs.
    let mut cfg = base_config(format!("{base}/"), Arc::new(noise(3000, 5)));
    cfg.twiml = Some(format!(
        "<Response>{dial}<Say>after the dial</Say></Response>"
    ));
    let mut callee = SimulatedCallee::answering(Arc::new(noise(1000, 3)));
    callee.answer = answer;
    callee.ring = Duration::from_millis(200);
    callee.tail = Duration::from_millis(200);
    cfg.directory = Arc::new(Numbers::simulated(callee));
    tweak(&mut cfg);
    let r = Engine::new().place_call(cfg, None).await;
    let http = app.seen.lock().unwrap().http.clone();
    (r, http)
}

fn dial_status(http: &[(String, Params)]) -> (String, String) {
    let (_, p) = http
        .iter()
        .find(|(p, _)| p == "/dial-done")
        .expect("action");
    (
        value(p, "DialCallStatus").unwrap().to_string(),
        value(p, "DialCallDuration").unwrap().to_string(),
    )
}

#[tokio::test]
async fn simulated_callees_answer_are_busy_do_not_answer_or_fail() {
    let dial = "<Dial action=\"/dial-done\" timeout=\"1\">+15551234567</Dial>";
    for (answer, want) in [
        (CalleeAnswer::Answer, "completed"),
        (CalleeAnswer::Busy, "busy"),
        (CalleeAnswer::NoAnswer, "no-answer"),
        (CalleeAnswer::Failed, "failed"),
    ] {
        let (r, http) = simulated(answer, dial, |_| {}).await;
        assert_eq!(dial_status(&http).0, want, "{answer:?}");
        assert_eq!(r.report.dials[0].status.as_str(), want);
        if want == "completed" {
            // 1 s of audio and 0.2 s tail.
            assert_eq!(dial_status(&http).1, "1");
        } else {
            assert_eq!(dial_status(&http).1, "0");
        }
    }
}

#[tokio::test]
async fn without_an_action_the_document_goes_on_after_the_dial() {
    let (r, http) = simulated(CalleeAnswer::Busy, "<Dial>+15551234567</Dial>", |_| {}).await;
    assert!(http.iter().all(|(p, _)| p != "/dial-done"));
    let verbs: Vec<String> = r
        .report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            dialtone_call::EventKind::Verb { verb, .. } => Some(verb.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(verbs, ["Dial", "Say"]);
}

#[tokio::test]
async fn time_limit_and_hangup_on_star_end_the_bridge() {
    let dial = "<Dial action=\"/dial-done\" timeLimit=\"1\"><Number>+15551234567</Number></Dial>";
    let (r, http) = simulated(CalleeAnswer::Answer, dial, |c| {
        c.directory = Arc::new(Numbers::simulated(SimulatedCallee {
            ring: Duration::from_millis(100),
            ..SimulatedCallee::answering(Arc::new(noise(5000, 3)))
        }));
    })
    .await;
    assert_eq!(dial_status(&http), ("completed".into(), "1".into()));
    assert!(r.report.dials[0].ended_by.contains("timeLimit"));

    // The caller keys * 1.5 s into its audio (which starts at the answer here).
    let dial = "<Dial action=\"/dial-done\" hangupOnStar=\"true\">+15551234567</Dial>";
    let (r, http) = simulated(CalleeAnswer::Answer, dial, |c| {
        c.caller.start = dialtone_call::CallerAudioStart::Answer;
        c.caller.stream_dtmf = vec![(Duration::from_millis(1500), '*')];
        c.directory = Arc::new(Numbers::simulated(SimulatedCallee {
            ring: Duration::from_millis(100),
            ..SimulatedCallee::answering(Arc::new(noise(5000, 3)))
        }));
    })
    .await;
    assert_eq!(dial_status(&http).0, "completed");
    let d = &r.report.dials[0];
    assert!(d.ended_by.contains("hangupOnStar"), "{}", d.ended_by);
    assert!(
        (1000.0..1800.0).contains(&d.duration_ms),
        "{}",
        d.duration_ms
    );
}

#[tokio::test]
async fn several_numbers_ring_at_once_and_the_first_to_answer_wins() {
    let dial = "<Dial action=\"/dial-done\" timeout=\"5\"><Number>+15550000001</Number>\
                <Number>+15550000002</Number></Dial>";
    let (r, http) = simulated(CalleeAnswer::Answer, dial, |c| {
        let slow = SimulatedCallee {
            ring: Duration::from_secs(3),
            ..SimulatedCallee::answering(Arc::new(noise(500, 3)))
        };
        let fast = SimulatedCallee {
            ring: Duration::from_millis(200),
            tail: Duration::from_millis(100),
            ..SimulatedCallee::answering(Arc::new(noise(500, 4)))
        };
        c.directory = Arc::new(Numbers {
            apps: Vec::new(),
            callees: vec![("+15550000002".into(), fast)],
            default: slow,
        });
    })
    .await;
    assert_eq!(dial_status(&http).0, "completed");
    let d = &r.report.dials[0];
    assert_eq!(d.answered_by.as_deref(), Some("+15550000002"));
    // The loser was hung up when the winner answered, not left ringing for 3 s.
    assert!(r.report.duration_ms < 2500.0, "{}", r.report.duration_ms);
}

#[tokio::test]
async fn the_caller_hanging_up_mid_dial_still_requests_the_action() {
    let dial = "<Dial action=\"/dial-done\">+15551234567</Dial>";
    let (r, http) = simulated(CalleeAnswer::Answer, dial, |c| {
        c.caller.start = dialtone_call::CallerAudioStart::Answer;
        c.caller.audio = Arc::new(noise(1000, 5));
        c.caller.tail = Duration::from_millis(200);
        c.directory = Arc::new(Numbers::simulated(SimulatedCallee {
            ring: Duration::from_millis(100),
            ..SimulatedCallee::answering(Arc::new(noise(10_000, 3)))
        }));
    })
    .await;
    assert_eq!(dial_status(&http).0, "completed");
    assert!(
        r.report.end_reason.contains("caller hung up"),
        "{}",
        r.report.end_reason
    );
    // The action's answer is not run: the caller is gone.
    assert!(!r.report.timeline.iter().any(|e| matches!(
        &e.kind,
        dialtone_call::EventKind::Verb { verb, .. } if verb == "Hangup"
    )));
}
