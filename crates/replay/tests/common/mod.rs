//! A small voice app on a real loopback port (signature-checked webhook, Media Streams
//! handler that answers by content), in a buggy mode that drops the socket on a duplicated
//! media frame; and a writer of hand-made captures in the documented format.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use dialtone_protocol::media::{self, StreamIds, Track};
use dialtone_protocol::signing;

pub const TOKEN: &str = "dialtone-local-auth-token";

/// How the app treats a media frame whose sequenceNumber it has already seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Crashes: drops the TCP connection without a close frame.
    DropsOnDuplicate,
    /// Ignores the duplicate.
    Fixed,
}

#[derive(Clone)]
struct AppState {
    mode: Mode,
    /// Every text message the app received, per stream, in order.
    received: Arc<Mutex<Vec<Vec<String>>>>,
}

pub struct App {
    pub base: String,
    pub received: Arc<Mutex<Vec<Vec<String>>>>,
}

impl App {
    pub async fn start(mode: Mode) -> App {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState {
            mode,
            received: Arc::default(),
        };
        let received = state.received.clone();
        let router = Router::new().fallback(handle).with_state(state);
        // As production servers do: with Nagle, the app's second small message of a burst
        // waits for the replayer's delayed ACK, ~40 ms per answer under `--fast`.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        App {
            base: format!("http://{addr}"),
            received,
        }
    }

    pub fn voice_url(&self) -> String {
        format!("{}/voice", self.base)
    }

    pub fn streams(&self) -> Vec<Vec<String>> {
        self.received.lock().unwrap().clone()
    }
}

async fn handle(
    State(st): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    body: axum::body::Bytes,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let sig = headers
        .get(signing::HEADER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Behind a tunnel, as production apps do: the public scheme from X-Forwarded-Proto.
    let tls = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes() == b"https");
    let (http_scheme, ws_scheme) = if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    if let Ok(ws) = ws {
        // The upgrade is signed over the stream URL with no parameters.
        if !signing::validate(TOKEN, &format!("{ws_scheme}://{host}{uri}"), &[], &sig) {
            return StatusCode::FORBIDDEN.into_response();
        }
        let index = {
            let mut r = st.received.lock().unwrap();
            r.push(Vec::new());
            r.len() - 1
        };
        return ws.on_upgrade(move |socket| run_ws(socket, st, index));
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if !signing::validate(
        TOKEN,
        &format!("{http_scheme}://{host}{uri}"),
        &params,
        &sig,
    ) {
        return StatusCode::FORBIDDEN.into_response();
    }
    (
        [("content-type", "text/xml")],
        twiml(&format!("{ws_scheme}://{host}/media")),
    )
        .into_response()
}

pub fn twiml(stream_url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{stream_url}"/></Connect></Response>"#
    )
}

/// What the app answers to one message, given the distinct media frames seen so far: a
/// greeting mark after `start`, and every 10th frame its payload echoed plus a mark.
/// Shared with [`synth_capture`] so hand-made captures hold what the app really says.
pub fn app_answers(text: &str, frames_seen: usize) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let sid = v["streamSid"].as_str().unwrap_or("").to_string();
    match v["event"].as_str() {
        Some("start") => vec![media::app_mark(&sid, "greeting")],
        Some("media") if frames_seen.is_multiple_of(10) => vec![
            media::app_media(&sid, v["media"]["payload"].as_str().unwrap()),
            media::app_mark(&sid, &format!("echo-{frames_seen}")),
        ],
        _ => Vec::new(),
    }
}

async fn run_ws(mut socket: WebSocket, st: AppState, index: usize) {
    let mut seen = HashSet::new();
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(text) = msg else {
            if let Message::Close(_) = msg {
                break;
            }
            continue;
        };
        st.received.lock().unwrap()[index].push(text.to_string());
        let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        if v["event"] == "media" {
            let seq = v["sequenceNumber"].as_str().unwrap().to_string();
            if !seen.insert(seq) {
                if st.mode == Mode::DropsOnDuplicate {
                    // The bug: an unhandled duplicate kills the handler, and the socket
                    // goes with it, without a close frame.
                    return;
                }
                continue;
            }
        }
        for answer in app_answers(text.as_str(), seen.len()) {
            if socket.send(Message::Text(answer.into())).await.is_err() {
                return;
            }
        }
    }
}

/// A capture of one call written by hand in the documented format: `frames` media frames
/// 20 ms apart, the frame at index `dup_at` sent twice (same sequenceNumber). When the app
/// drops on duplicates, the capture ends there with `ws_close` by `dropped`; otherwise with
/// `stop` and dialtone's close. `origin` is the capture's (now gone) app, e.g.
/// `http://127.0.0.1:9`.
pub fn synth_capture(origin: &str, frames: usize, dup_at: Option<usize>, mode: Mode) -> String {
    let ids = StreamIds {
        account_sid: "AC00000000000000000000000000000000".into(),
        call_sid: "CA11111111111111111111111111111111".into(),
        stream_sid: "MZ22222222222222222222222222222222".into(),
    };
    let call = &ids.call_sid;
    let mut lines = Vec::new();
    let mut line = |t: f64, rest: serde_json::Value| {
        let mut v = serde_json::json!({"t_ms": t, "call_sid": call});
        v.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        lines.push(v.to_string());
    };
    let body = format!(
        "AccountSid={}&CallSid={}&CallStatus=ringing",
        ids.account_sid, call
    );
    line(
        0.4,
        serde_json::json!({"kind": "http_request", "purpose": "voice", "method": "POST",
            "url": format!("{origin}/voice"), "signature": "x", "body": body}),
    );
    let ws_origin = origin.replacen("http", "ws", 1);
    line(
        4.0,
        serde_json::json!({"kind": "http_response", "url": format!("{origin}/voice"),
            "status": 200, "content_type": "text/xml",
            "body": twiml(&format!("{ws_origin}/media"))}),
    );
    let open = 6.0;
    let sid = &ids.stream_sid;
    line(
        open,
        serde_json::json!({"kind": "ws_open", "stream_sid": sid, "url": format!("{ws_origin}/media")}),
    );
    let mut outs: Vec<(f64, String)> = vec![
        (0.1, media::connected()),
        (0.2, media::start(1, &ids, &[Track::Inbound], &[])),
    ];
    let mut seq = 1;
    for k in 0..frames {
        seq += 1;
        let payload = payload_b64(k);
        let text = media::media(
            seq,
            Track::Inbound,
            k as u64 + 1,
            k as u64 * 20,
            &payload,
            sid,
        );
        outs.push((20.0 * k as f64 + 1.0, text.clone()));
        if dup_at == Some(k) {
            outs.push((20.0 * k as f64 + 1.5, text));
        }
    }
    let dropping = dup_at.is_some() && mode == Mode::DropsOnDuplicate;
    if !dropping {
        seq += 1;
        outs.push((20.0 * frames as f64 + 1.0, media::stop(seq, &ids)));
    }
    let mut seen = HashSet::new();
    for (t, text) in outs {
        line(
            open + t,
            serde_json::json!({"kind": "ws_out", "stream_sid": sid, "text": text}),
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["event"] == "media" && !seen.insert(v["sequenceNumber"].as_str().unwrap().to_string())
        {
            if dropping {
                line(
                    open + t + 0.3,
                    serde_json::json!({"kind": "ws_close", "stream_sid": sid, "by": "dropped", "code": null}),
                );
                return lines.join("\n") + "\n";
            }
            continue;
        }
        for answer in app_answers(&text, seen.len()) {
            line(
                open + t + 0.2,
                serde_json::json!({"kind": "ws_in", "stream_sid": sid, "text": answer}),
            );
        }
    }
    line(
        open + 20.0 * frames as f64 + 5.0,
        serde_json::json!({"kind": "ws_close", "stream_sid": sid, "by": "dialtone", "code": 1000}),
    );
    lines.join("\n") + "\n"
}

/// A deterministic 160-byte μ-law frame, base64.
pub fn payload_b64(k: usize) -> String {
    let bytes: Vec<u8> = (0..160).map(|i| ((i * 7 + k * 13) % 256) as u8).collect();
    dialtone_audio::FrameSet::from_mulaw(&bytes)
        .b64(0)
        .to_string()
}
