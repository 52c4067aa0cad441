//! A configurable voice app on a real loopback port: serves TwiML documents by path, records
//! every HTTP request it gets, and runs a scripted Media Streams handler on `/media*`.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use dialtone_audio::FrameSet;
use dialtone_call::{CallConfig, CallResult, Engine};
use dialtone_protocol::media::{self, TwilioMessage};

/// One HTTP request the app received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub params: Vec<(String, String)>,
    /// When it arrived.
    pub at: tokio::time::Instant,
}

/// What the app answers at a path.
#[derive(Clone)]
pub enum Reply {
    /// 200 text/xml with this body; `{ws}` is replaced by `ws://127.0.0.1:PORT`.
    Twiml(String),
    /// Any status, content type and body.
    Raw(u16, &'static str, String),
    /// Sleep before answering (timeouts).
    Slow(Duration, String),
    /// Raw bytes (e.g. a WAV for <Play>).
    Bytes(&'static str, Vec<u8>),
}

/// What the WebSocket handler does.
#[derive(Clone, Debug)]
pub enum WsScript {
    /// After `start`, send `n_chunks` media chunks of `chunk_ms` each then a mark `m1`; wait
    /// for the caller to hang up.
    ReplyWithMark { chunk_ms: u32, n_chunks: u32 },
    /// After `start`, send 2 s of audio, marks a,b, then after `clear_after` send `clear`.
    ClearAfter { clear_after: Duration },
    /// Close the socket (close frame) after receiving `frames` media frames.
    CloseAfter { frames: u32 },
    /// Send invalid messages, then a valid mark.
    Garbage,
    /// Drop the TCP connection after `frames` frames without a close frame.
    DropAfter { frames: u32 },
    /// Do nothing, just read.
    Silent,
    /// After `start`, 100 ms of audio and a mark `x`, twice (two marks, one name).
    TwoMarksOneName,
    /// After `start`, `queued_ms` of audio (in 1 s messages), then `marks` marks (`m0`, `m1`,
    /// …) as fast as the socket takes them, reading meanwhile, then `clear` if audio was
    /// queued; closes the socket once `expect` echoes came.
    /// Counts echoes in [`Log::mark_echoes`]; logs no message.
    MarkFlood {
        queued_ms: u32,
        marks: u32,
        expect: u64,
    },
}

#[derive(Default)]
pub struct Log {
    pub http: Vec<Seen>,
    /// Per stream (path), every text message received in order.
    pub ws: Vec<(String, Vec<String>)>,
    /// Per stream, how it ended: `close` (a close frame came), `eof` (the connection
    /// ended without one), `open` (still running).
    pub ws_end: Vec<&'static str>,
    pub ws_headers: Vec<HeaderMap>,
    /// Mark echoes a `MarkFlood` stream received.
    pub mark_echoes: u64,
}

#[derive(Clone)]
struct AppState {
    routes: Arc<HashMap<String, Reply>>,
    ws_script: WsScript,
    log: Arc<Mutex<Log>>,
    base_ws: Arc<Mutex<String>>,
}

pub struct TestApp {
    pub base: String,
    pub base_ws: String,
    pub log: Arc<Mutex<Log>>,
}

impl TestApp {
    pub async fn start(routes: Vec<(&str, Reply)>, ws_script: WsScript) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (base, base_ws) = (format!("http://{addr}"), format!("ws://{addr}"));
        Self::serve(listener, base, base_ws, routes, ws_script)
    }

    /// The same app serving TLS on loopback with `config` (a certificate the test's CA
    /// issued); `base` is `https://localhost:PORT`.
    pub async fn start_tls(
        routes: Vec<(&str, Reply)>,
        ws_script: WsScript,
        config: Arc<rustls::ServerConfig>,
    ) -> TestApp {
        let listener = dialtone_net::testing::TlsListener::bind(config).await;
        let port = listener.addr().port();
        let (base, base_ws) = (
            format!("https://localhost:{port}"),
            format!("wss://localhost:{port}"),
        );
        Self::serve(listener, base, base_ws, routes, ws_script)
    }

    fn serve<L: axum::serve::Listener>(
        listener: L,
        base: String,
        base_ws: String,
        routes: Vec<(&str, Reply)>,
        ws_script: WsScript,
    ) -> TestApp
    where
        L::Addr: std::fmt::Debug,
    {
        let log = Arc::new(Mutex::new(Log::default()));
        let state = AppState {
            routes: Arc::new(
                routes
                    .into_iter()
                    .map(|(p, r)| (p.to_string(), r))
                    .collect(),
            ),
            ws_script,
            log: log.clone(),
            base_ws: Arc::new(Mutex::new(base_ws.clone())),
        };
        let app = Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestApp { base, base_ws, log }
    }

    /// `host:port` the app listens on.
    pub fn authority(&self) -> String {
        self.base.split("://").nth(1).unwrap().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> Vec<Seen> {
        self.log.lock().unwrap().http.clone()
    }

    pub fn ws_messages(&self) -> Vec<(String, Vec<String>)> {
        self.log.lock().unwrap().ws.clone()
    }
}

async fn handle(
    State(st): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_string();
    if let Ok(ws) = ws {
        if path == "/refuse" {
            return StatusCode::NOT_FOUND.into_response();
        }
        st.log.lock().unwrap().ws_headers.push(headers.clone());
        // `/close-after-N` closes after N media frames whatever the app's script.
        let script = match path.strip_prefix("/close-after-").map(str::parse) {
            Some(Ok(frames)) => WsScript::CloseAfter { frames },
            _ => st.ws_script.clone(),
        };
        let log = st.log.clone();
        if let WsScript::MarkFlood {
            queued_ms,
            marks,
            expect,
        } = script
        {
            return ws.on_upgrade(move |socket| run_flood(socket, queued_ms, marks, expect, log));
        }
        return ws.on_upgrade(move |socket| run_ws(socket, path, script, log));
    }
    let mut params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    if method == Method::GET {
        params = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    }
    st.log.lock().unwrap().http.push(Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        params,
        at: tokio::time::Instant::now(),
    });
    let base_ws = st.base_ws.lock().unwrap().clone();
    match st.routes.get(&path).cloned() {
        Some(Reply::Twiml(t)) => {
            ([("content-type", "text/xml")], t.replace("{ws}", &base_ws)).into_response()
        }
        Some(Reply::Raw(status, ct, body)) => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", ct)],
            body,
        )
            .into_response(),
        Some(Reply::Slow(d, t)) => {
            tokio::time::sleep(d).await;
            ([("content-type", "text/xml")], t).into_response()
        }
        Some(Reply::Bytes(ct, b)) => ([("content-type", ct)], b).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn run_ws(mut socket: WebSocket, path: String, script: WsScript, log: Arc<Mutex<Log>>) {
    let index = {
        let mut l = log.lock().unwrap();
        l.ws.push((path, Vec::new()));
        l.ws_end.push("open");
        l.ws.len() - 1
    };
    let mut stream_sid: String;
    let mut frames = 0u32;
    let mut end = "eof";
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(text) = msg else {
            if let Message::Close(_) = msg {
                end = "close";
                break;
            }
            continue;
        };
        log.lock().unwrap().ws[index].1.push(text.to_string());
        let parsed = media::parse_twilio_message(text.as_str());
        match parsed {
            Ok(TwilioMessage::Start {
                stream_sid: sid, ..
            }) => {
                stream_sid = sid;
                match &script {
                    WsScript::ReplyWithMark { chunk_ms, n_chunks } => {
                        let bytes = (*chunk_ms as usize) * 8;
                        let chunk = FrameSet::from_mulaw(&vec![0x10u8; bytes]);
                        let payload = base64_of(&chunk.mulaw()[..bytes]);
                        for _ in 0..*n_chunks {
                            let _ = socket
                                .send(Message::Text(
                                    media::app_media(&stream_sid, &payload).into(),
                                ))
                                .await;
                        }
                        let _ = socket
                            .send(Message::Text(media::app_mark(&stream_sid, "m1").into()))
                            .await;
                    }
                    WsScript::ClearAfter { clear_after } => {
                        let payload = base64_of(&vec![0x20u8; 16000]);
                        let _ = socket
                            .send(Message::Text(
                                media::app_media(&stream_sid, &payload).into(),
                            ))
                            .await;
                        for m in ["a", "b"] {
                            let _ = socket
                                .send(Message::Text(media::app_mark(&stream_sid, m).into()))
                                .await;
                        }
                        tokio::time::sleep(*clear_after).await;
                        let _ = socket
                            .send(Message::Text(media::app_clear(&stream_sid).into()))
                            .await;
                    }
                    WsScript::TwoMarksOneName => {
                        let payload = base64_of(&[0x10u8; 800]);
                        for _ in 0..2 {
                            for m in [
                                media::app_media(&stream_sid, &payload),
                                media::app_mark(&stream_sid, "x"),
                            ] {
                                let _ = socket.send(Message::Text(m.into())).await;
                            }
                        }
                    }
                    WsScript::Garbage => {
                        for bad in [
                            "not json".to_string(),
                            r#"{"event":"media","streamSid":"MZ00000000000000000000000000000000","media":{"payload":"AAAA"}}"#.to_string(),
                            format!(r#"{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"@@@"}}}}"#),
                            format!(r#"{{"event":"dance","streamSid":"{stream_sid}"}}"#),
                        ] {
                            let _ = socket.send(Message::Text(bad.into())).await;
                        }
                        let _ = socket
                            .send(Message::Text(media::app_mark(&stream_sid, "ok").into()))
                            .await;
                    }
                    _ => {}
                }
            }
            Ok(TwilioMessage::Media { .. }) => {
                frames += 1;
                match &script {
                    WsScript::CloseAfter { frames: n } if frames >= *n => {
                        let _ = socket.send(Message::Close(None)).await;
                        // Drain until the peer answers the close.
                        while let Some(Ok(m)) = socket.recv().await {
                            if let Message::Close(_) = m {
                                break;
                            }
                        }
                        return;
                    }
                    WsScript::DropAfter { frames: n } if frames >= *n => {
                        // Dropping the socket without a close frame.
                        return;
                    }
                    _ => {}
                }
            }
            Ok(TwilioMessage::Stop { .. }) => {}
            _ => {}
        }
    }
    log.lock().unwrap().ws_end[index] = end;
}

/// A `MarkFlood` stream: one task writes the flood while this one reads the echoes, so
/// neither side's socket buffer fills.
async fn run_flood(
    socket: WebSocket,
    queued_ms: u32,
    marks: u32,
    expect: u64,
    log: Arc<Mutex<Log>>,
) {
    use futures_util::{SinkExt, StreamExt};
    let (mut tx, mut rx) = socket.split();
    let (sid_tx, sid_rx) = tokio::sync::oneshot::channel::<String>();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let Ok(sid) = sid_rx.await else { return };
        let second = base64_of(&[0x10u8; 8000]);
        for _ in 0..queued_ms.div_ceil(1000) {
            let _ = tx
                .send(Message::Text(media::app_media(&sid, &second).into()))
                .await;
        }
        for i in 0..marks {
            let m = media::app_mark(&sid, &format!("m{i}"));
            if tx.send(Message::Text(m.into())).await.is_err() {
                return;
            }
        }
        if queued_ms > 0 {
            let _ = tx.send(Message::Text(media::app_clear(&sid).into())).await;
        }
        let _ = (&mut done_rx).await;
        let _ = tx.send(Message::Close(None)).await;
    });
    let mut sid_tx = Some(sid_tx);
    let mut done_tx = Some(done_tx);
    let mut echoes = 0u64;
    while let Some(Ok(msg)) = rx.next().await {
        let Message::Text(text) = msg else {
            if let Message::Close(_) = msg {
                break;
            }
            continue;
        };
        match media::parse_twilio_message(text.as_str()) {
            Ok(TwilioMessage::Start { stream_sid, .. }) => {
                if let Some(t) = sid_tx.take() {
                    let _ = t.send(stream_sid);
                }
            }
            Ok(TwilioMessage::Mark { .. }) => {
                echoes += 1;
                log.lock().unwrap().mark_echoes = echoes;
                if echoes >= expect
                    && let Some(t) = done_tx.take()
                {
                    let _ = t.send(());
                }
            }
            _ => {}
        }
    }
    writer.abort();
}

pub fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Noise from a seed (xorshift): audio no other part of a test can produce by chance, so
/// finding it byte for byte proves where it came from.
pub fn noise(ms: usize, seed: u64) -> FrameSet {
    let mut x = seed;
    let pcm: Vec<i16> = (0..ms * 8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 16000) as i16) - 8000
        })
        .collect();
    FrameSet::from_pcm(&pcm)
}

/// Caller audio of `ms` milliseconds of a 440 Hz tone.
pub fn tone(ms: u32) -> Arc<FrameSet> {
    let n = ms as usize * 8;
    let pcm: Vec<i16> = (0..n)
        .map(|i| ((i as f64 / 8000.0 * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16)
        .collect();
    Arc::new(FrameSet::from_pcm(&pcm))
}

/// Places a call with short timeouts suitable for tests.
pub async fn call(url: &str, audio_ms: u32, tweak: impl FnOnce(&mut CallConfig)) -> CallResult {
    let mut cfg = CallConfig::new(url, tone(audio_ms));
    cfg.caller.tail = Duration::from_millis(300);
    cfg.max_duration = Duration::from_secs(20);
    cfg.webhook_timeout = Duration::from_secs(3);
    cfg.no_audio_timeout = None;
    tweak(&mut cfg);
    Engine::new().place_call(cfg, None).await
}

pub fn param<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn events(msgs: &[String]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(m).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A `Write` (e.g. a capture sink) whose bytes the test can read back.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
