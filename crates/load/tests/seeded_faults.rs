//! A seeded load run with faults, twice, against a real app on loopback that records every
//! message of every stream: both runs send the same messages, byte for byte, per call; and a
//! different seed sends different ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{any, post};
use dialtone_audio::FrameSet;

use dialtone_load::calls::{self, CallRun};
use dialtone_load::scenario::{Callers, Profile};
use dialtone_load::{Arrival, Extent, Shard, Workload};
use tokio::sync::watch;

/// Every stream's messages, by the call SID its `start` carried.
type Streams = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

async fn recording_app() -> (String, Streams) {
    let streams: Streams = Arc::default();
    let app = Router::new()
        .route(
            "/voice",
            post(|headers: HeaderMap| async move {
                let host = headers["host"].to_str().unwrap().to_string();
                (
                    [("content-type", "text/xml")],
                    format!(
                        r#"<Response><Connect><Stream url="ws://{host}/media"/></Connect></Response>"#
                    ),
                )
            }),
        )
        .route(
            "/media",
            any(
                |ws: WebSocketUpgrade, State(streams): State<Streams>| async move {
                    ws.on_upgrade(move |socket| record(socket, streams))
                        .into_response()
                },
            ),
        )
        .with_state(streams.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/voice", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, streams)
}

async fn record(mut socket: WebSocket, streams: Streams) {
    let mut msgs = Vec::new();
    while let Some(Ok(Message::Text(t))) = socket.recv().await {
        msgs.push(t.to_string());
    }
    let call_sid = msgs
        .iter()
        .filter_map(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .find(|v| v["event"] == "start")
        .map(|v| v["start"]["callSid"].as_str().unwrap().to_string())
        .expect("a start message");
    streams.lock().unwrap().insert(call_sid, msgs);
}

fn run_of(url: String, seed: u64) -> CallRun {
    let tone: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 / 8000.0 * 300.0 * std::f64::consts::TAU).sin() * 6000.0) as i16)
        .collect();
    CallRun {
        workload: Workload {
            extent: Extent::Calls(6),
            arrival: Arrival::Spread {
                ramp: Duration::from_millis(300),
            },
            concurrency: 6,
            seed,
            shard: Shard::default(),
        },
        callers: Callers {
            profiles: vec![Profile {
                name: "tone".into(),
                weight: 1,
                audio: vec![dialtone_corpus::from_frames(
                    "test".into(),
                    Arc::new(FrameSet::from_pcm(&tone)),
                )],
                tail: Duration::from_millis(200),
                dtmf: String::new(),
                stream_dtmf: Vec::new(),
                hangup_after: None,
            }],
            numbers: vec!["+15005550100".into(), "+15005550101".into()],
        },
        template: dialtone_call::CallConfig {
            max_duration: Duration::from_secs(30),
            no_audio_timeout: None,
            faults: Some(Arc::new(
                "calls=0.7,loss=0.03,dup=0.03,reorder=0.03,seq_gap=0.03,bad_json=0.02,\
                 wrong_sid=0.02,jitter=10ms,burst=0.02:80ms"
                    .parse()
                    .unwrap(),
            )),
            ..dialtone_call::CallConfig::new(url, Arc::new(dialtone_audio::FrameSet::silence(0)))
        },
        net: Default::default(),
        lateness_bound: Duration::from_millis(50),
        drain: Duration::from_secs(5),
        milestones: None,
        registry: None,
    }
}

async fn run(seed: u64) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, u64>) {
    let (url, streams) = recording_app().await;
    let (_stop_tx, stop) = watch::channel(false);
    let f = calls::run(run_of(url, seed), stop, |_| {}).await;
    assert_eq!(
        f.summary.outcomes.get("ok"),
        Some(&6),
        "{:?}",
        f.summary.outcomes
    );
    // The app records a stream when its socket closes, just after the call ends.
    for _ in 0..100 {
        if streams.lock().unwrap().len() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = streams.lock().unwrap().clone();
    assert_eq!(s.len(), 6);
    (s, f.summary.faults)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_load_run_sends_the_same_bytes_twice() {
    let (a, faults_a) = run(11).await;
    let (b, faults_b) = run(11).await;
    assert_eq!(faults_a, faults_b);
    assert!(faults_a["calls with faults"] > 0, "{faults_a:?}");
    assert!(faults_a["frames duplicated"] > 0, "{faults_a:?}");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (sid, msgs) in &a {
        assert_eq!(msgs, &b[sid], "call {sid}: same seed, same bytes");
    }
    let (c, _) = run(12).await;
    assert_ne!(a, c, "another seed, other calls and faults");
}
