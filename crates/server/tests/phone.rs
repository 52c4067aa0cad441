//! The page's phone (`GET /phone/ws`) against a real app over real sockets: the browser's
//! side is played by a WebSocket client that speaks the page's protocol (48 kHz PCM in,
//! 8 kHz PCM out, keys, hang-up). The app asks for a key with `<Gather>`, then connects a
//! bidirectional stream, records what it gets and plays a tone back with a mark.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
use axum::http::Uri;
use axum::routing::{any, get};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dialtone_server::ServerConfig;
use dialtone_server::config::{DEFAULT_ACCOUNT_SID as AC, DEFAULT_AUTH_TOKEN as TOKEN};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const NUMBER: &str = "+15005550001";
/// A second hosted number, the agent a `<Dial>` transfers to.
const AGENT: &str = "+15005550002";
/// The app's reply: 1 kHz for one second (a `<Say>` is dialtone's 440 Hz tone).
const TONE_HZ: f32 = 1000.0;

#[derive(Default)]
struct Heard {
    digits: Vec<String>,
    /// Inbound μ-law and each `media` message's timestamp.
    inbound: Vec<u8>,
    timestamps: Vec<u64>,
    dtmf: Vec<String>,
    marks: Vec<String>,
    /// The `<Record>` action's parameters.
    actions: Vec<Vec<(String, String)>>,
    /// Status callbacks: `CallStatus`, and whether the signature was valid.
    statuses: Vec<(String, bool)>,
}

type Shared = Arc<Mutex<Heard>>;

fn tone_mulaw(hz: f32, secs: f32) -> Vec<u8> {
    (0..(8000.0 * secs) as usize)
        .map(|n| {
            let x = (2.0 * std::f32::consts::PI * hz * n as f32 / 8000.0).sin();
            dialtone_audio::mulaw::encode((x * 12000.0) as i16)
        })
        .collect()
}

/// The app: `/voice` gathers one key, `/keyed` connects the stream, `/media` records and
/// replies.
async fn app() -> (String, Shared) {
    async fn twiml(
        State(s): State<(Shared, String)>,
        uri: Uri,
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> ([(&'static str, &'static str); 1], String) {
        let xml = if uri.path() == "/voice" {
            "<Response><Gather numDigits=\"1\" timeout=\"10\" action=\"/keyed\">\
             <Say>Press a key.</Say></Gather></Response>"
                .to_string()
        } else if uri.path() == "/status" {
            let p: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
            let url = format!("http://{}/status", s.1);
            let signature = headers
                .get("x-twilio-signature")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let valid = dialtone_protocol::signing::validate(TOKEN, &url, &p, signature);
            let status = p
                .iter()
                .find(|(k, _)| k == "CallStatus")
                .map(|(_, v)| v.clone());
            s.0.lock()
                .unwrap()
                .statuses
                .push((status.unwrap_or_default(), valid));
            String::new()
        } else if uri.path() == "/voicemail" {
            "<Response><Say>Leave a message.</Say><Record timeout=\"1\" maxLength=\"20\" \
             action=\"/recorded\"/></Response>"
                .to_string()
        } else if uri.path() == "/speech" {
            "<Response><Gather input=\"speech\" action=\"/recorded\" timeout=\"5\" \
             speechTimeout=\"1\"><Say loop=\"8\">What do you need?</Say></Gather></Response>"
                .to_string()
        } else if uri.path() == "/speech-no-barge" {
            "<Response><Gather input=\"speech\" bargeIn=\"false\" action=\"/recorded\" \
             timeout=\"3\"><Say>What do you need?</Say></Gather></Response>"
                .to_string()
        } else if uri.path() == "/press-or-say" {
            "<Response><Gather input=\"dtmf speech\" numDigits=\"1\" action=\"/recorded\" \
             timeout=\"5\"><Say>Press one or say billing.</Say></Gather></Response>"
                .to_string()
        } else if uri.path() == "/recorded" {
            let p: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
            s.0.lock().unwrap().actions.push(p);
            "<Response><Hangup/></Response>".to_string()
        } else if uri.path() == "/room" {
            "<Response><Dial><Conference>room</Conference></Dial></Response>".to_string()
        } else if uri.path() == "/far" {
            "<Response><Dial><Number>+15557654321</Number></Dial></Response>".to_string()
        } else if uri.path() == "/transfer" {
            format!(
                "<Response><Say>One moment.</Say><Dial><Number>{AGENT}</Number></Dial></Response>"
            )
        } else {
            let p: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
            if let Some((_, d)) = p.iter().find(|(k, _)| k == "Digits") {
                s.0.lock().unwrap().digits.push(d.clone());
            }
            format!(
                "<Response><Connect><Stream url=\"ws://{}/media\"/></Connect></Response>",
                s.1
            )
        };
        ([("content-type", "text/xml")], xml)
    }
    async fn media(
        State(s): State<(Shared, String)>,
        ws: WebSocketUpgrade,
    ) -> axum::response::Response {
        ws.on_upgrade(move |mut socket| async move {
            let mut sid = String::new();
            while let Some(Ok(AxMessage::Text(t))) = socket.recv().await {
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["event"].as_str() {
                    Some("start") => {
                        sid = v["streamSid"].as_str().unwrap().to_string();
                        // The reply, after a moment: 1 s of tone in 20 ms messages, a mark.
                        for chunk in tone_mulaw(TONE_HZ, 1.0).chunks(160) {
                            let m = json!({"event": "media", "streamSid": sid,
                                "media": {"payload": STANDARD.encode(chunk)}});
                            socket
                                .send(AxMessage::Text(m.to_string().into()))
                                .await
                                .unwrap();
                        }
                        let m =
                            json!({"event": "mark", "streamSid": sid, "mark": {"name": "reply"}});
                        socket
                            .send(AxMessage::Text(m.to_string().into()))
                            .await
                            .unwrap();
                    }
                    Some("media") => {
                        let mut h = s.0.lock().unwrap();
                        let payload = STANDARD
                            .decode(v["media"]["payload"].as_str().unwrap())
                            .unwrap();
                        h.inbound.extend(payload);
                        h.timestamps
                            .push(v["media"]["timestamp"].as_str().unwrap().parse().unwrap());
                    }
                    Some("dtmf") => {
                        let digit = v["dtmf"]["digit"].as_str().unwrap().to_string();
                        if digit == "0" {
                            // 0: stop talking (what is queued is dropped).
                            let m = json!({"event": "clear", "streamSid": sid});
                            socket
                                .send(AxMessage::Text(m.to_string().into()))
                                .await
                                .unwrap();
                        }
                        s.0.lock().unwrap().dtmf.push(digit);
                    }
                    Some("mark") => {
                        s.0.lock()
                            .unwrap()
                            .marks
                            .push(v["mark"]["name"].as_str().unwrap().to_string())
                    }
                    _ => {}
                }
            }
        })
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = l.local_addr().unwrap().to_string();
    let shared = Shared::default();
    let router = Router::new()
        .route("/media", get(media))
        .route("/{*path}", any(twiml))
        .with_state((shared.clone(), host.clone()));
    tokio::spawn(async move { axum::serve(l, router).await });
    (format!("http://{host}"), shared)
}

async fn start_server(app: &str) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}/voice"));
    serve(config).await
}

async fn serve(config: ServerConfig) -> (String, tokio::sync::oneshot::Sender<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(dialtone_server::run(l, config, async {
        let _ = stopped.await;
    }));
    (api, stop)
}

/// The path the page is rendered with: the token is the account's HMAC of its SID.
fn phone_path(token: &str) -> String {
    let sig = dialtone_protocol::signing::signature(token, &format!("dialtone-phone:{AC}"), &[]);
    let sig: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    format!("/phone/ws?account={AC}&token={sig}")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(api: &str, path: &str, origin: Option<&str>) -> Result<Ws, String> {
    let url = format!("{}{path}", api.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn the_phone_answers_only_its_own_page_with_the_accounts_token() {
    let (api, _stop) = start_server("http://127.0.0.1:9").await;
    let good = phone_path(TOKEN);
    assert!(connect(&api, &good, Some(&api)).await.is_ok());
    let refused = [
        (phone_path("another-token"), Some(api.as_str())),
        (format!("/phone/ws?account={AC}&token="), Some(api.as_str())),
        (good.clone(), Some("http://evil.example")),
        (good.clone(), None),
    ];
    for (path, origin) in refused {
        let e = connect(&api, &path, origin).await.unwrap_err();
        assert!(e.starts_with("403"), "{path} from {origin:?}: {e}");
    }
    // DNS rebinding: a page on another name that resolves here has an Origin equal to its
    // Host, but that host is not this machine's.
    let port = api.rsplit(':').next().unwrap();
    let mut req = format!("{}{good}", api.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    let rebound = format!("rebind.example:{port}");
    req.headers_mut().insert("host", rebound.parse().unwrap());
    let origin = format!("http://{rebound}");
    req.headers_mut().insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a rebound page was let in: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_bad_first_message_is_an_error_not_a_call() {
    let (api, _stop) = start_server("http://127.0.0.1:9").await;
    for (first, says) in [
        (
            json!({"event": "call", "to": "+15550000000", "rate": 48000}),
            "not a number",
        ),
        (
            json!({"event": "call", "to": NUMBER, "rate": 1}),
            "out of range",
        ),
        (
            json!({"event": "dtmf", "digit": "1", "rate": 8000}),
            "must be a call",
        ),
        (
            json!({"event": "call", "url": "ftp://x", "rate": 8000}),
            "http(s) URL",
        ),
    ] {
        let mut ws = connect(&api, &phone_path(TOKEN), Some(&api)).await.unwrap();
        ws.send(Message::Text(first.to_string().into()))
            .await
            .unwrap();
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no answer to {first}")
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["event"], "error", "{v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{v}");
    }
    let calls = rest(&api, "Calls.json").await;
    assert_eq!(calls["calls"].as_array().unwrap().len(), 0, "{calls}");
}

/// What the page's phone would send: a 300 Hz + 1100 Hz chord whose loudness changes
/// every 100 ms, at 48 kHz, so that alignment has one answer.
fn caller_pcm(secs: f32) -> Vec<f32> {
    (0..(48_000.0 * secs) as usize)
        .map(|n| {
            let t = n as f32 / 48_000.0;
            let step = (n / 4800) as u32;
            let gain = 0.15 + 0.5 * ((step.wrapping_mul(2_654_435_761) >> 16) % 100) as f32 / 100.0;
            gain * (0.6 * (2.0 * std::f32::consts::PI * 300.0 * t).sin()
                + 0.4 * (2.0 * std::f32::consts::PI * 1100.0 * t).sin())
        })
        .collect()
}

fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len()) as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt().max(1e-9)
}

/// The best correlation of `needle` inside `hay` over every offset.
fn best_alignment(hay: &[f32], needle: &[f32]) -> f32 {
    best_lag(hay, needle).0
}

/// The best correlation of `needle` inside `hay`, and where it is.
fn best_lag(hay: &[f32], needle: &[f32]) -> (f32, usize) {
    (0..hay.len().saturating_sub(needle.len()))
        .map(|o| (pearson(&hay[o..o + needle.len()], needle), o))
        .fold((f32::MIN, 0), |a, b| if b.0 > a.0 { b } else { a })
}

/// `GET {api}/2010-04-01/Accounts/{AC}/{path}` with the account's credentials, as JSON.
async fn rest(api: &str, path: &str) -> Value {
    let body = reqwest::Client::new()
        .get(format!("{api}/2010-04-01/Accounts/{AC}/{path}"))
        .basic_auth(AC, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

type Tx = futures_util::stream::SplitSink<Ws, Message>;
type Rx = futures_util::stream::SplitStream<Ws>;

/// The page's side of a call to `NUMBER`, its microphone at 8 kHz.
async fn call_number(api: &str) -> (Tx, Rx) {
    let ws = connect(api, &phone_path(TOKEN), Some(api)).await.unwrap();
    let (mut tx, rx) = ws.split();
    let call = json!({"event": "call", "to": NUMBER, "rate": 8000});
    tx.send(Message::Text(call.to_string().into()))
        .await
        .unwrap();
    (tx, rx)
}

/// A binary message of what the phone hears: 16-bit PCM as samples in [-1, 1).
fn samples(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0)
        .collect()
}

fn decode(mulaw: &[u8]) -> Vec<f32> {
    mulaw
        .iter()
        .map(|&c| f32::from(dialtone_audio::mulaw::decode(c)) / 32768.0)
        .collect()
}

fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&x| ((x * 32767.0) as i16).to_le_bytes())
        .collect()
}

#[tokio::test]
async fn a_call_from_the_phone_talks_keys_hears_and_is_listed() {
    let (app, heard) = app().await;
    let (api, _stop) = start_server(&app).await;
    let ws = connect(&api, &phone_path(TOKEN), Some(&api)).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let call = json!({"event": "call", "to": NUMBER, "rate": 48000});
    tx.send(Message::Text(call.to_string().into()))
        .await
        .unwrap();

    // The page's side: a microphone in a busy tab, sending 40 ms of 48 kHz PCM at once every
    // 40 ms (silence until the app's stream runs, then the signal for 3 s), keys, and the
    // hang-up.
    let signal = caller_pcm(3.0);
    let (ctl_tx, mut ctl_rx) = tokio::sync::mpsc::channel::<String>(8);
    let mic = {
        let heard = heard.clone();
        let signal = signal.clone();
        tokio::spawn(async move {
            let mut clock = tokio::time::interval(Duration::from_millis(40));
            let (mut at, mut streaming) = (0usize, false);
            loop {
                tokio::select! {
                    _ = clock.tick() => for _ in 0..2 {
                        streaming |= !heard.lock().unwrap().inbound.is_empty();
                        let chunk: Vec<f32> = if streaming && at < signal.len() {
                            let c = signal[at..(at + 960).min(signal.len())].to_vec();
                            at += 960;
                            c
                        } else {
                            vec![0.0; 960]
                        };
                        if tx.send(Message::Binary(pcm16(&chunk).into())).await.is_err() {
                            return;
                        }
                    },
                    Some(text) = ctl_rx.recv() => {
                        let _ = tx.send(Message::Text(text.into())).await;
                    }
                }
            }
        })
    };

    let mut events: Vec<Value> = Vec::new();
    let mut frames: Vec<u8> = Vec::new();
    let mut binary_sizes = std::collections::BTreeSet::new();
    let mut keyed = (false, false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, rx.next())
            .await
            .expect("the call ends");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                let answered = v["event"] == "status" && v["status"] == "in-progress";
                if answered && !keyed.0 {
                    // The <Gather> listens: the caller presses 5 300 ms into its prompt.
                    keyed.0 = true;
                    let ctl = ctl_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        ctl.send(json!({"event": "dtmf", "digit": "5"}).to_string())
                            .await
                    });
                }
                let end = v["event"] == "end";
                events.push(v);
                if end {
                    break;
                }
            }
            Some(Ok(Message::Binary(b))) => {
                binary_sizes.insert(b.len());
                for s in b.chunks_exact(2) {
                    let x = i16::from_le_bytes([s[0], s[1]]);
                    frames.push(dialtone_audio::mulaw::encode(x));
                }
                let streamed = heard.lock().unwrap().timestamps.len();
                if streamed > 75 && !keyed.1 {
                    // 1.5 s into the stream: a key for the app's stream.
                    keyed.1 = true;
                    ctl_tx
                        .send(json!({"event": "dtmf", "digit": "7"}).to_string())
                        .await
                        .unwrap();
                }
                if streamed > 175 && !keyed.2 {
                    keyed.2 = true;
                    ctl_tx
                        .send(json!({"event": "hangup"}).to_string())
                        .await
                        .unwrap();
                }
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    mic.abort();

    // The call as the page saw it.
    let sid = events[0]["callSid"].as_str().unwrap().to_string();
    assert_eq!(events[0]["event"], "call", "{:?}", events[0]);
    assert!(sid.starts_with("CA"));
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "status")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ringing", "in-progress"]);
    let end = events.last().unwrap();
    assert_eq!(end["event"], "end");
    assert_eq!(end["status"], "completed", "{end}");
    // The jitter buffer took the bursts without running dry once the audio flowed.
    assert!(end["jitter"]["underruns"].as_u64().unwrap() <= 1, "{end}");
    assert!(end["jitter"]["slots"].as_u64().unwrap() > 150, "{end}");
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(steps.iter().any(|s| s.contains("(voice)")), "{steps:?}");
    // The key pressed over the <Gather>'s prompt stopped it: the action came then, not after
    // the prompt's 1.2 s.
    let at = |text: &str| {
        events
            .iter()
            .find(|e| e["event"] == "step" && e["text"].as_str().unwrap().contains(text))
            .map(|e| e["at"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("no step {text:?} in {steps:?}"))
    };
    let (answered, action) = (at("answered"), at("(action)"));
    assert!(
        action - answered < 0.9,
        "the prompt played on: action {action} s, answer {answered} s"
    );

    // The app: the <Gather> got the key, the stream got the other one, the mark came back.
    let h = std::mem::take(&mut *heard.lock().unwrap());
    assert_eq!(h.digits, ["5"]);
    assert_eq!(h.dtmf, ["7"]);
    assert_eq!(h.marks, ["reply"]);
    // Its frames are the 20 ms cadence whatever the page's timing.
    assert!(
        h.timestamps.windows(2).all(|w| w[1] - w[0] == 20),
        "timestamps skip"
    );
    // It heard what the page said, resampled to 8 kHz.
    let said = dialtone_audio::resample::to_8k(&signal, 48_000);
    let got = decode(&h.inbound);
    let needle = &said[8000..16_000];
    let best = best_alignment(&got, needle);
    assert!(best >= 0.9, "the app heard the caller at r = {best}");

    // The page heard the prompt and the app's tone, each frame 20 ms of 8 kHz PCM.
    assert_eq!(binary_sizes.into_iter().collect::<Vec<_>>(), [320]);
    let frames = decode(&frames);
    for (hz, what) in [
        (440.0, "the <Say> prompt"),
        (TONE_HZ, "the app's stream reply"),
    ] {
        let r = best_alignment(&frames, &decode(&tone_mulaw(hz, 0.1)));
        assert!(r >= 0.9, "the page heard {what} at r = {r}");
    }

    // A call like any other: listed, completed, recorded.
    let calls = rest(&api, "Calls.json").await;
    let listed = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sid"] == sid.as_str())
        .expect("the phone's call is listed");
    assert_eq!(listed["status"], "completed");
    assert_eq!(listed["direction"], "inbound");
    assert_eq!(listed["to"], NUMBER);
    let recs = rest(&api, &format!("Recordings.json?CallSid={sid}")).await;
    let recs = recs["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["channels"], 2);
}

#[tokio::test]
async fn a_phone_call_is_captured_and_replays_against_the_app() {
    let (app, heard) = app().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        capture_dir: Some(dir.path().to_path_buf()),
        ..ServerConfig::default()
    };
    // This number's app connects its stream at once (no <Gather>), and has a status callback.
    config.host_number(NUMBER, &format!("{app}/direct"));
    config.numbers[0].status_callback = Some(format!("{app}/status"));
    let (api, _stop) = serve(config).await;
    let mut ws = connect(&api, &phone_path(TOKEN), Some(&api)).await.unwrap();
    let call = json!({"event": "call", "to": NUMBER, "rate": 16000});
    ws.send(Message::Text(call.to_string().into()))
        .await
        .unwrap();
    // Two seconds of the caller, a key, the hang-up; then read to the end.
    // (Every third sample of the 48 kHz signal: 16 kHz, as the call request says.)
    let signal: Vec<f32> = caller_pcm(2.0).into_iter().step_by(3).collect();
    let mut sent = 0;
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    while heard.lock().unwrap().timestamps.is_empty() {
        clock.tick().await;
        ws.send(Message::Binary(pcm16(&[0.0; 320]).into()))
            .await
            .unwrap();
    }
    for chunk in signal.chunks(320) {
        clock.tick().await;
        ws.send(Message::Binary(pcm16(chunk).into())).await.unwrap();
        sent += 1;
        if sent == 50 {
            let key = json!({"event": "dtmf", "digit": "9"});
            ws.send(Message::Text(key.to_string().into()))
                .await
                .unwrap();
        }
    }
    ws.send(Message::Text(json!({"event": "hangup"}).to_string().into()))
        .await
        .unwrap();
    let mut sid = String::new();
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "call" {
                sid = v["callSid"].as_str().unwrap().to_string();
            }
        }
    }
    assert_eq!(heard.lock().unwrap().dtmf, ["9"]);
    // The number's status callback says the call completed, signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while heard.lock().unwrap().statuses.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        heard.lock().unwrap().statuses,
        [("completed".to_string(), true)]
    );

    // The capture: the webhook and every stream message, in DIR/{CallSid}.jsonl.
    let file = dir.path().join(format!("{sid}.jsonl"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(r#"\"event\":\"dtmf\""#), "no dtmf captured");
    assert!(text.lines().count() > 100, "{} lines", text.lines().count());

    // Replayed against the same app: its answers (the tone, the mark) come again.
    let mut opts = dialtone_replay::ReplayOptions::new(&file, format!("{app}/direct"), TOKEN);
    opts.fast = true;
    let report = dialtone_replay::replay(&opts).await.unwrap();
    assert!(
        report.matches,
        "{}: {:?}",
        report.verdict, report.divergences
    );
    assert_eq!(report.call_sid, sid);
}

#[tokio::test]
async fn a_transfer_puts_the_phone_through_to_the_dialed_app() {
    let (app, heard) = app().await;
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}/transfer"));
    config.host_number(AGENT, &format!("{app}/direct"));
    let (api, _stop) = serve(config).await;
    let mut ws = connect(&api, &phone_path(TOKEN), Some(&api)).await.unwrap();
    let call = json!({"event": "call", "to": NUMBER, "rate": 8000});
    ws.send(Message::Text(call.to_string().into()))
        .await
        .unwrap();
    // The caller talks once the agent's stream runs, keys a digit, and hangs up.
    let signal: Vec<f32> = caller_pcm(2.0).into_iter().step_by(6).collect();
    let (mut tx, mut rx) = ws.split();
    let talker = {
        let heard = heard.clone();
        let signal = signal.clone();
        tokio::spawn(async move {
            let mut clock = tokio::time::interval(Duration::from_millis(20));
            while heard.lock().unwrap().timestamps.is_empty() {
                clock.tick().await;
                tx.send(Message::Binary(pcm16(&[0.0; 160]).into()))
                    .await
                    .unwrap();
            }
            for (i, chunk) in signal.chunks(160).enumerate() {
                clock.tick().await;
                tx.send(Message::Binary(pcm16(chunk).into())).await.unwrap();
                if i == 50 {
                    let key = json!({"event": "dtmf", "digit": "4"});
                    tx.send(Message::Text(key.to_string().into()))
                        .await
                        .unwrap();
                }
            }
            let bye = json!({"event": "hangup"}).to_string();
            tx.send(Message::Text(bye.into())).await.unwrap();
        })
    };
    let mut frames = Vec::new();
    let mut end = Value::Null;
    while let Some(Ok(m)) = rx.next().await {
        match m {
            Message::Binary(b) => frames.extend(samples(&b)),
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "end" {
                    end = v;
                }
            }
            _ => {}
        }
    }
    talker.await.unwrap();
    assert_eq!(end["status"], "completed", "{end}");
    let h = std::mem::take(&mut *heard.lock().unwrap());
    // The agent's app heard the caller as it talked, and its keys.
    let said = dialtone_audio::resample::to_8k(&signal, 8000);
    let (best, at) = best_lag(&decode(&h.inbound), &said[4000..8000]);
    assert!(best >= 0.9, "the agent heard the caller at r = {best}");
    // As it talked: the caller started with the agent's stream, so what it said 0.5 s in
    // reaches the agent about 0.5 s into its stream (the jitter buffer's 60 ms and a few
    // frames more), not a ring later.
    let late_ms = (at as f64 - 4000.0) / 8.0;
    assert!(
        late_ms < 300.0,
        "the agent heard the caller {late_ms} ms late"
    );
    assert_eq!(h.dtmf, ["4"]);
    // The page heard the agent's reply.
    let r = best_alignment(&frames, &decode(&tone_mulaw(TONE_HZ, 0.1)));
    assert!(r >= 0.9, "the page heard the agent at r = {r}");
}

#[tokio::test]
async fn a_dial_to_a_far_end_rings_back_then_lets_the_phone_hear_it() {
    let (app, _) = app().await;
    let mut config = ServerConfig {
        ring: Duration::from_millis(800),
        ..ServerConfig::default()
    };
    config.host_number(NUMBER, &format!("{app}/far"));
    let far = config.far_end_audio.clone();
    let (api, _stop) = serve(config).await;
    let mut ws = connect(&api, &phone_path(TOKEN), Some(&api)).await.unwrap();
    let call = json!({"event": "call", "to": NUMBER, "rate": 8000});
    ws.send(Message::Text(call.to_string().into()))
        .await
        .unwrap();
    // Listen for 800 ms of ringing and 1.2 s of the callee, then hang up.
    let mut frames = Vec::new();
    while frames.len() < 16_000 {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => frames.extend(samples(&b)),
            Some(Ok(_)) => {}
            _ => panic!("the call ended early"),
        }
    }
    let bye = json!({"event": "hangup"}).to_string();
    ws.send(Message::Text(bye.into())).await.unwrap();
    let ringback = decode(dialtone_audio::tones::ringback_cycle("us").mulaw());
    let r = best_alignment(&frames[..8000], &ringback[..1600]);
    assert!(r >= 0.9, "the page heard the ringback at r = {r}");
    let voice = decode(far.mulaw());
    let (r, at) = best_lag(&frames, &voice[800..4000]);
    assert!(r >= 0.9, "the page heard the callee at r = {r}");
    assert!(at >= 6000, "the callee was heard while it rang ({at})");
}

/// Calls `NUMBER` from a phone that says `signal` (8 kHz) from the answer on, then silence;
/// returns what it heard once it has heard `secs`, hanging up then.
async fn phone_in(api: String, signal: Vec<f32>, secs: usize) -> Vec<f32> {
    let (mut tx, mut rx) = call_number(&api).await;
    let talker = tokio::spawn(async move {
        let mut clock = tokio::time::interval(Duration::from_millis(20));
        let silence = [0.0; 160];
        for chunk in signal.chunks(160).chain(std::iter::repeat(&silence[..])) {
            clock.tick().await;
            if tx.send(Message::Binary(pcm16(chunk).into())).await.is_err() {
                return tx;
            }
        }
        tx
    });
    let mut heard = Vec::new();
    while heard.len() < secs * 8000 {
        match rx.next().await {
            Some(Ok(Message::Binary(b))) => heard.extend(samples(&b)),
            Some(Ok(_)) => {}
            _ => panic!("the call ended early"),
        }
    }
    talker.abort();
    heard
}

#[tokio::test]
async fn two_phones_in_a_conference_hear_each_other() {
    let (app, _) = app().await;
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}/room"));
    let (api, _stop) = serve(config).await;
    // One talks for 3 s; the other listens (it joins first, so the room is running).
    let signal: Vec<f32> = caller_pcm(3.0).into_iter().step_by(6).collect();
    let listener = tokio::spawn(phone_in(api.clone(), Vec::new(), 4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let talker = tokio::spawn(phone_in(api.clone(), signal.clone(), 3));
    let heard = listener.await.unwrap();
    talker.await.unwrap();
    let r = best_alignment(&heard, &signal[8000..16_000]);
    assert!(r >= 0.9, "the listener heard the talker at r = {r}");
}

#[tokio::test]
async fn a_voicemail_records_what_the_phone_says_until_it_stops() {
    let (app, heard) = app().await;
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}/voicemail"));
    let (api, _stop) = serve(config).await;
    let (mut tx, mut rx) = call_number(&api).await;
    // Silence through the prompt and the beep (1.3 s), 1.5 s of speech, then silence: the
    // recording ends 1 s (timeout) after the speech, and the app hangs up.
    let signal: Vec<f32> = caller_pcm(1.5).into_iter().step_by(6).collect();
    let talker = tokio::spawn(async move {
        let mut clock = tokio::time::interval(Duration::from_millis(20));
        let silence = vec![0.0; 160];
        let words = std::iter::repeat_n(&silence[..], 100).chain(signal.chunks(160));
        for chunk in words.chain(std::iter::repeat(&silence[..])) {
            clock.tick().await;
            if tx.send(Message::Binary(pcm16(chunk).into())).await.is_err() {
                return;
            }
        }
    });
    let mut end = Value::Null;
    while let Some(Ok(m)) = rx.next().await {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "end" {
                end = v;
            }
        }
    }
    talker.abort();
    assert_eq!(end["status"], "completed", "{end}");
    let actions = std::mem::take(&mut heard.lock().unwrap().actions);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let p = |k: &str| {
        actions[0]
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // Trimmed to the speech: 1.5 s (Twilio rounds to whole seconds).
    assert!(
        ["1", "2"].contains(&p("RecordingDuration").as_str()),
        "{actions:?}"
    );
    assert_eq!(p("Digits"), "");
    let wav = reqwest::Client::new()
        .get(format!("{}.wav", p("RecordingUrl")))
        .basic_auth(AC, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let pcm = dialtone_audio::wav::load_8k_from_bytes(&wav, "recording").unwrap();
    let recorded: Vec<f32> = pcm.iter().map(|&x| f32::from(x) / 32768.0).collect();
    let said = dialtone_audio::resample::to_8k(
        &caller_pcm(1.5).into_iter().step_by(6).collect::<Vec<_>>(),
        8000,
    );
    let r = best_alignment(&recorded, &said[2000..8000]);
    assert!(
        r >= 0.9,
        "the recording holds what the phone said at r = {r}"
    );
    assert!(
        recorded.len() < 2 * 8000,
        "kept {} samples: not trimmed",
        recorded.len()
    );
}

#[tokio::test]
async fn a_clear_from_the_app_stops_what_the_phone_hears() {
    let (app, heard) = app().await;
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}/direct"));
    let (api, _stop) = serve(config).await;
    let (mut tx, mut rx) = call_number(&api).await;
    // The app's 1 s reply starts with its stream; 200 ms in, the caller keys 0 and the app
    // clears it.
    let talker = {
        let heard = heard.clone();
        tokio::spawn(async move {
            let mut clock = tokio::time::interval(Duration::from_millis(20));
            let mut since = None;
            loop {
                clock.tick().await;
                let _ = tx.send(Message::Binary(pcm16(&[0.0; 160]).into())).await;
                if since.is_none() && !heard.lock().unwrap().timestamps.is_empty() {
                    since = Some(tokio::time::Instant::now());
                }
                if since.is_some_and(|t| t.elapsed() >= Duration::from_millis(200)) {
                    let key = json!({"event": "dtmf", "digit": "0"}).to_string();
                    let _ = tx.send(Message::Text(key.into())).await;
                    since = Some(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
                if heard.lock().unwrap().timestamps.len() > 100 {
                    let bye = json!({"event": "hangup"}).to_string();
                    let _ = tx.send(Message::Text(bye.into())).await;
                    return;
                }
            }
        })
    };
    let mut loud = 0;
    while let Some(Ok(m)) = rx.next().await {
        if let Message::Binary(b) = m {
            let pcm: Vec<i16> = b
                .chunks_exact(2)
                .map(|s| i16::from_le_bytes([s[0], s[1]]))
                .collect();
            if dialtone_corpus::energy::rms_dbfs(&pcm) > -30.0 {
                loud += 1;
            }
        }
    }
    talker.await.unwrap();
    assert_eq!(heard.lock().unwrap().dtmf, ["0"]);
    // About 200 ms of the reply (plus the key's way there), not its full second (50 frames).
    assert!(
        (5..30).contains(&loud),
        "the phone heard {loud} frames of the reply"
    );
}

#[tokio::test]
async fn a_page_that_goes_away_after_bad_messages_hangs_its_call_up() {
    let (app, _) = app().await;
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}/direct"));
    let (api, _stop) = serve(config).await;
    let (mut tx, rx) = call_number(&api).await;
    for _ in 0..200 {
        let bad = json!({"event": "dtmf", "digit": "x"}).to_string();
        tx.send(Message::Text(bad.into())).await.unwrap();
    }
    // Gone without a close, its errors unread.
    drop((tx, rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let calls = rest(&api, "Calls.json").await;
        let status = calls["calls"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status == "completed" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call is still {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_message_over_the_limit_closes_1009_naming_it_and_hangs_up() {
    let (app, _) = app().await;
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}/direct"));
    let (api, _stop) = serve(config).await;
    let (mut tx, mut rx) = call_number(&api).await;
    tx.send(Message::Binary(vec![0u8; 40 * 1024].into()))
        .await
        .unwrap();
    let mut close = None;
    let mut errors = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Close(frame) => {
                    close = frame;
                    break;
                }
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["event"] == "error" {
                        errors.push(v["message"].as_str().unwrap_or_default().to_string());
                    }
                }
                _ => {}
            }
        }
    });
    read.await.expect("the server closes");
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1009, "{close:?}");
    assert!(close.reason.contains("too long"), "{close:?}");
    assert!(errors.iter().any(|e| e.contains("too long")), "{errors:?}");
    let calls = rest(&api, "Calls.json").await;
    assert_eq!(calls["calls"][0]["status"], "completed", "{calls}");
}

/// A call to `path`, answered: the page keys `keys` and types `line` once it is in progress
/// (after `wait`), and the call runs to its end. The app's `/recorded` requests are
/// returned, and how long the call lasted after the typing.
async fn type_into(
    path: &str,
    keys: &str,
    line: &str,
    wait: Duration,
) -> (Vec<Vec<(String, String)>>, Duration) {
    let (app, heard) = app().await;
    let mut config = ServerConfig::default();
    config.host_number(NUMBER, &format!("{app}{path}"));
    let (api, _stop) = serve(config).await;
    let (mut tx, mut rx) = call_number(&api).await;
    let mut end = Value::Null;
    let mut typed = None;
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = rx.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "status" && v["status"] == "in-progress" && typed.is_none() {
                tokio::time::sleep(wait).await;
                typed = Some(tokio::time::Instant::now());
                for k in keys.chars() {
                    let key = json!({"event": "dtmf", "digit": k.to_string()});
                    tx.send(Message::Text(key.to_string().into()))
                        .await
                        .unwrap();
                }
                if !line.is_empty() {
                    let say = json!({"event": "say", "text": line});
                    tx.send(Message::Text(say.to_string().into()))
                        .await
                        .unwrap();
                }
            }
            if v["event"] == "end" {
                end = v;
            }
        }
    });
    read.await.expect("the call ends");
    let lasted = typed.expect("the call was answered").elapsed();
    assert_eq!(end["status"], "completed", "{end}");
    (std::mem::take(&mut heard.lock().unwrap().actions), lasted)
}

fn param(p: &[(String, String)], k: &str) -> String {
    p.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_speech_gather_hears_what_the_page_types() {
    // Typed 1 s into a 12.8 s prompt: bargeIn (Twilio's default) stops the prompt, and the
    // words are heard as said from then, at <Say>'s pace (2.4 s), the result 1 s of silence
    // (speechTimeout) after them; unstopped, the prompt alone would run 11.8 s more.
    let (actions, lasted) = type_into(
        "/speech",
        "",
        "  I want to pay my bill ",
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(param(&actions[0], "SpeechResult"), "I want to pay my bill");
    let confidence: f64 = param(&actions[0], "Confidence").parse().unwrap();
    assert!(confidence > 0.0 && confidence <= 1.0);
    assert!(
        lasted < Duration::from_secs(8),
        "the prompt was not stopped: the call lasted {lasted:?} after the typing"
    );

    // bargeIn="false": typed over the prompt is not heard; after it, it is.
    let (early, _) = type_into("/speech-no-barge", "", "too early", Duration::ZERO).await;
    assert!(early.is_empty(), "{early:?}");
    let (late, _) = type_into("/speech-no-barge", "", "on time", Duration::from_secs(2)).await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(param(&late[0], "SpeechResult"), "on time");
}

#[tokio::test]
async fn press_or_say_takes_whichever_the_page_does_first() {
    let wait = Duration::from_millis(2500);
    let (said, _) = type_into("/press-or-say", "", "billing", wait).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(param(&said[0], "SpeechResult"), "billing");
    assert_eq!(param(&said[0], "Digits"), "");

    let (pressed, _) = type_into("/press-or-say", "1", "", wait).await;
    assert_eq!(pressed.len(), 1, "{pressed:?}");
    assert_eq!(param(&pressed[0], "Digits"), "1");
    assert_eq!(param(&pressed[0], "SpeechResult"), "");
}
