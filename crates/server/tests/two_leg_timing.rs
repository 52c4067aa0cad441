//! Two-leg timing and recording, over real sockets: `dialtone serve` rings a hosted number
//! whose app (a small axum app here) greets with `<Say>` before its `<Connect><Stream>`,
//! while the caller leg `<Play>`s a WAV with tone markers at known offsets. The caller's
//! audio runs from the answer, so the stream joins it mid-way; the recording covers the
//! whole answered call.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use base64::Engine as _;
use dialtone_protocol::webhook::form_encode;
use dialtone_server::ServerConfig;
use dialtone_server::config::{DEFAULT_ACCOUNT_SID as AC, DEFAULT_AUTH_TOKEN as TOKEN};
use serde_json::Value;
use tokio::sync::mpsc;

/// The app's greeting: five words, 2.0 s at dialtone's 400 ms a word.
const GREETING: &str = "thanks for calling dialtone today";
const GREETING_MS: u64 = 2000;
/// Where the caller WAV's two tone markers start, and how long each lasts.
const MARKER_EARLY_MS: u64 = 500;
const MARKER_LATE_MS: u64 = 4000;
const MARKER_LEN_MS: u64 = 300;
/// Length of the caller WAV; the caller leg hangs up 0.5 s after it.
const CALLER_MS: u64 = 6000;
const CALLER_TAIL_MS: u64 = 500;

/// The caller's WAV: silence with a loud 1 kHz tone at each marker.
fn caller_wav() -> Vec<u8> {
    let n = (CALLER_MS * 8) as usize;
    let in_marker = |ms: u64| {
        [MARKER_EARLY_MS, MARKER_LATE_MS]
            .iter()
            .any(|&m| (m..m + MARKER_LEN_MS).contains(&ms))
    };
    let pcm: Vec<i16> = (0..n)
        .map(|i| {
            if in_marker(i as u64 / 8) {
                let t = i as f64 / 8000.0;
                (8000.0 * (std::f64::consts::TAU * 1000.0 * t).sin()) as i16
            } else {
                0
            }
        })
        .collect();
    let data = (pcm.len() * 2) as u32;
    let mut w = Vec::with_capacity(44 + data as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

/// The hosted number's app: `/voice` greets then streams, `/quiet` greets then waits with
/// no stream; `/caller.wav` serves the caller leg's audio. Every stream's inbound μ-law
/// comes out of the receiver when the stream ends.
async fn app() -> (String, mpsc::Receiver<Vec<u8>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(4);
    let voice = format!(
        r#"<Response><Say>{GREETING}</Say><Connect><Stream url="ws://{addr}/media"/></Connect></Response>"#
    );
    let quiet = format!(r#"<Response><Say>{GREETING}</Say><Pause length="30"/></Response>"#);
    let wav = Bytes::from(caller_wav());
    let twiml = |doc: String| move || std::future::ready(([(CONTENT_TYPE, "text/xml")], doc));
    let router = axum::Router::new()
        .route("/voice", post(twiml(voice)))
        .route("/quiet", post(twiml(quiet)))
        .route("/caller.wav", get(move || std::future::ready(wav.clone())))
        .route(
            "/media",
            get(move |ws: WebSocketUpgrade| {
                let tx = tx.clone();
                std::future::ready(ws.on_upgrade(move |socket| inbound_audio(socket, tx)))
            }),
        );
    tokio::spawn(async move { axum::serve(l, router).await });
    (format!("http://{addr}"), rx)
}

/// Collects the stream's inbound track until `stop` or the close.
async fn inbound_audio(mut socket: WebSocket, tx: mpsc::Sender<Vec<u8>>) {
    let mut audio = Vec::new();
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(text) = msg else {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            continue;
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        match v["event"].as_str() {
            Some("media") => {
                let payload = v["media"]["payload"].as_str().unwrap();
                audio.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(payload)
                        .unwrap(),
                );
            }
            Some("stop") => break,
            _ => {}
        }
    }
    let _ = tx.send(audio).await;
}

struct Serve {
    api: String,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(app: &str) -> Serve {
    let mut config = ServerConfig {
        ring: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    config.host_number("+15005550001", &format!("{app}/voice"));
    config.host_number("+15005550002", &format!("{app}/quiet"));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dialtone_server::run(l, config, async {
        let _ = stopped.await;
    }));
    Serve {
        api,
        http: reqwest::Client::new(),
        stop,
        server,
    }
}

impl Serve {
    async fn create(&self, params: &[(&str, &str)]) -> String {
        let body = form_encode(
            &params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        );
        let resp = self
            .http
            .post(format!("{}/2010-04-01/Accounts/{AC}/Calls.json", self.api))
            .basic_auth(AC, Some(TOKEN))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        v["sid"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/2010-04-01/Accounts/{AC}/{path}", self.api))
            .basic_auth(AC, Some(TOKEN))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    /// Polls the call until it has ended (or 30 s pass).
    async fn ended(&self, sid: &str) -> Value {
        for _ in 0..300 {
            let c = self.get(&format!("Calls/{sid}.json")).await;
            if c["end_time"].is_string() && c["status"] != "in-progress" {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("call {sid} did not end");
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

/// Mean absolute sample of each 20 ms frame of μ-law.
fn frame_levels(mulaw: &[u8]) -> Vec<i64> {
    mulaw
        .chunks(160)
        .map(|f| {
            f.iter()
                .map(|&c| i64::from(dialtone_audio::mulaw::decode(c)).abs())
                .sum::<i64>()
                / f.len() as i64
        })
        .collect()
}

/// Mean absolute sample over `[from_ms, to_ms)` of one channel of 8 kHz PCM.
fn level(pcm: &[i16], from_ms: u64, to_ms: u64) -> i64 {
    let (a, b) = ((from_ms * 8) as usize, (to_ms * 8) as usize);
    let s = &pcm[a.min(pcm.len())..b.min(pcm.len())];
    s.iter().map(|x| i64::from(*x).abs()).sum::<i64>() / s.len().max(1) as i64
}

#[tokio::test]
async fn caller_audio_runs_from_the_answer_and_the_recording_covers_the_whole_call() {
    let (app, mut streams) = app().await;
    let s = serve(&app).await;
    let twiml = format!("<Response><Play>{app}/caller.wav</Play></Response>");
    let sid = s
        .create(&[
            ("To", "+15005550001"),
            ("From", "+15005550006"),
            ("Twiml", &twiml),
            ("Record", "true"),
            ("RecordingChannels", "dual"),
        ])
        .await;
    let inbound = tokio::time::timeout(Duration::from_secs(30), streams.recv())
        .await
        .expect("the stream ended")
        .unwrap();
    let call = s.ended(&sid).await;
    assert_eq!(call["status"], "completed", "{call}");

    // (a) The stream joined the caller's audio after the greeting: the early marker (said
    // during the greeting) never reached the app, the late one arrived greeting-length early.
    let levels = frame_levels(&inbound);
    let first = levels
        .iter()
        .position(|&l| l > 1000)
        .expect("no caller audio on the stream");
    let offset_ms = MARKER_LATE_MS - first as u64 * 20;
    println!(
        "stream: {} frames, late marker at frame {first}: caller audio offset {offset_ms} ms",
        levels.len()
    );
    // The stream opens just after the greeting (its connect takes a moment); from the call's
    // start, the late marker would come 4000 ms in, the early one 500 ms in.
    assert!(
        (GREETING_MS..GREETING_MS + 800).contains(&offset_ms),
        "the stream carried the caller's audio from {offset_ms} ms, not from the greeting's end"
    );
    let marker_frames = levels.iter().filter(|&&l| l > 1000).count() as u64;
    assert!(
        marker_frames * 20 <= MARKER_LEN_MS + 20,
        "the early marker reached the app too ({marker_frames} loud frames)"
    );
    // The caller hangs up where its audio (and the tail) ends, counted from the answer.
    let stream_ms = levels.len() as u64 * 20;
    let expect_ms = CALLER_MS + CALLER_TAIL_MS - offset_ms;
    assert!(
        stream_ms.abs_diff(expect_ms) <= 100,
        "the stream ran {stream_ms} ms, expected {expect_ms} ms"
    );

    // (b) The recording: from the answer to the hang-up, the greeting's tone on the app's
    // channel, the caller's audio (early marker included) on the caller's.
    let recs = s.get(&format!("Calls/{sid}/Recordings.json")).await;
    let rec = &recs["recordings"][0];
    let media = rec["media_url"].as_str().unwrap().to_string();
    let wav = s
        .http
        .get(format!("{media}.wav"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2);
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let caller: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let app_side: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let rec_ms = caller.len() as u64 / 8;
    let duration_ms = call["duration"].as_str().unwrap().parse::<u64>().unwrap() * 1000;
    println!(
        "recording {rec_ms} ms, call duration {duration_ms} ms (whole seconds), recording.duration {}",
        rec["duration"]
    );
    assert!(
        rec_ms.abs_diff(duration_ms) <= 1000,
        "recording {rec_ms} ms vs answered duration {duration_ms} ms"
    );
    assert!(
        rec_ms.abs_diff(CALLER_MS + CALLER_TAIL_MS) <= 500,
        "recording {rec_ms} ms, the answered call lasted {} ms",
        CALLER_MS + CALLER_TAIL_MS
    );
    let greeting = level(&app_side, 100, GREETING_MS - 100);
    let after = level(&app_side, GREETING_MS + 500, rec_ms - 100);
    println!("app channel: greeting level {greeting}, after it {after}");
    assert!(
        greeting > 1000,
        "no <Say> tone in the recording: {greeting}"
    );
    assert!(
        after < 50,
        "the app's channel is not silent after the greeting"
    );
    let early = level(
        &caller,
        MARKER_EARLY_MS + 20,
        MARKER_EARLY_MS + MARKER_LEN_MS - 20,
    );
    let late = level(
        &caller,
        MARKER_LATE_MS + 20,
        MARKER_LATE_MS + MARKER_LEN_MS - 20,
    );
    let quiet = level(&caller, MARKER_EARLY_MS + 500, MARKER_LATE_MS - 200);
    println!("caller channel: early marker {early}, late marker {late}, between {quiet}");
    assert!(early > 2000 && late > 2000 && quiet < 50);

    // Mono mixes both parties over the same span.
    let mono = s
        .http
        .get(format!("{media}.wav?RequestedChannels=1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(u16::from_le_bytes([mono[22], mono[23]]), 1);
    assert_eq!((mono.len() - 44) / 2, caller.len());
    s.stop().await;
}

#[tokio::test]
async fn the_caller_leg_hangs_up_at_its_end_without_a_stream() {
    let (app, _streams) = app().await;
    let s = serve(&app).await;
    let sid = s
        .create(&[
            ("To", "+15005550002"),
            ("From", "+15005550006"),
            ("Twiml", "<Response><Pause length=\"3\"/></Response>"),
            ("Record", "true"),
        ])
        .await;
    let call = s.ended(&sid).await;
    assert_eq!(call["status"], "completed", "{call}");
    // 3 s of caller audio and the 0.5 s tail, from the answer; the app's <Pause> is longer.
    let secs = |v: &Value| v.as_str().unwrap().parse::<u64>().unwrap();
    assert!((3..=4).contains(&secs(&call["duration"])), "{call}");
    let recs = s.get(&format!("Calls/{sid}/Recordings.json")).await;
    assert!(
        (4..=5).contains(&secs(&recs["recordings"][0]["duration"])),
        "{recs}"
    );
    s.stop().await;
}
