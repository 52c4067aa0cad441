//! Virtual time (`--fast`) is never a hollow pass: an app that paces its replies on the wall
//! clock, as production voice-AI frameworks do, fails with the reason in virtual time and
//! passes in real time; an app that answers as it reads passes in virtual time, also when it
//! leaves a turn unanswered on purpose.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use axum::serve::ListenerExt;
use dialtone_audio::FrameSet;
use dialtone_call::{CallConfig, CallResult, Engine, Failure, Turn};
use dialtone_protocol::media::{self, TwilioMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// How the app answers a caller turn, once its energy VAD has heard 200 ms of silence after
/// speech (on the audio's own time, as it reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Like a production pipeline: its "LLM" takes 150 ms of wall-clock time, then the
    /// reply's 200 ms of audio goes out at real-time pace (a 20 ms chunk every 20 ms).
    WallClock,
    /// Like the reference app: the whole reply at once, as soon as the turn's end is read.
    AsItReads,
    /// As it reads, but only the first turn: the others stay unanswered on purpose.
    FirstTurnOnly,
}

const CHUNKS: usize = 10;

/// Every text message the app received, in order (what the caller sent).
type Received = Arc<std::sync::Mutex<Vec<String>>>;

async fn start_app(answer: Answer) -> String {
    start_app_logged(answer, Received::default()).await
}

async fn start_app_logged(answer: Answer, received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let twiml =
        format!(r#"<Response><Connect><Stream url="ws://{addr}/media"/></Connect></Response>"#);
    let app = Router::new()
        .route(
            "/voice",
            post(move || async move { ([("content-type", "text/xml")], twiml) }),
        )
        .route(
            "/media",
            any(
                |State((answer, received)): State<(Answer, Received)>, ws: WebSocketUpgrade| async move {
                    ws.on_upgrade(move |socket| run_ws(socket, answer, received))
                        .into_response()
                },
            ),
        )
        .with_state((answer, received));
    // Nagle off, as app servers set it (uvicorn, Node's ws).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/voice")
}

async fn run_ws(socket: WebSocket, answer: Answer, received: Received) {
    let (tx, mut rx) = socket.split();
    let tx = Arc::new(tokio::sync::Mutex::new(tx));
    // The wall-clock pipeline: one reply at a time, each after its "LLM" latency, paced.
    let (turn_ended, mut pipeline) = mpsc::channel::<Vec<String>>(16);
    let writer = tx.clone();
    tokio::spawn(async move {
        while let Some(reply) = pipeline.recv().await {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let mut pace = tokio::time::interval(Duration::from_millis(20));
            for text in reply {
                pace.tick().await;
                if writer
                    .lock()
                    .await
                    .send(Message::Text(text.into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    let chunk = common::base64_of(&[0x10u8; 160]);
    let (mut sid, mut voiced, mut silent, mut turns) = (String::new(), 0u32, 0u32, 0u32);
    while let Some(Ok(msg)) = rx.next().await {
        // Pings are answered by the WebSocket layer itself.
        let Message::Text(text) = msg else { continue };
        received.lock().unwrap().push(text.to_string());
        match media::parse_twilio_message(text.as_str()) {
            Ok(TwilioMessage::Start { stream_sid, .. }) => sid = stream_sid,
            Ok(TwilioMessage::Media { payload, .. }) => {
                let loud = payload
                    .iter()
                    .any(|&c| dialtone_audio::mulaw::decode(c).unsigned_abs() > 2000);
                if loud {
                    voiced += 1;
                    silent = 0;
                    continue;
                }
                silent += 1;
                if voiced < 5 || silent < 10 {
                    continue;
                }
                voiced = 0;
                turns += 1;
                let reply: Vec<String> = (0..CHUNKS)
                    .map(|_| media::app_media(&sid, &chunk))
                    .chain([media::app_mark(&sid, &format!("reply-{turns}"))])
                    .collect();
                match answer {
                    Answer::WallClock => {
                        let _ = turn_ended.send(reply).await;
                    }
                    Answer::FirstTurnOnly if turns > 1 => {}
                    Answer::AsItReads | Answer::FirstTurnOnly => {
                        // Sent before reading on, as the reference app does.
                        let mut tx = tx.lock().await;
                        for text in reply {
                            let _ = tx.feed(Message::Text(text.into())).await;
                        }
                        let _ = tx.flush().await;
                    }
                }
            }
            Ok(TwilioMessage::Stop { .. }) => break,
            _ => {}
        }
    }
}

/// The caller: three 600 ms turns of a loud tone, 900 ms of silence between them.
fn caller() -> (Arc<FrameSet>, Vec<Turn>) {
    let spans = [(200u32, 800u32), (1700, 2300), (3200, 3800)];
    let pcm: Vec<i16> = (0..4000 * 8)
        .map(|i| {
            let ms = i as u32 / 8;
            if spans.iter().any(|&(a, b)| (a..b).contains(&ms)) {
                ((i as f64 / 8000.0 * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
            } else {
                0
            }
        })
        .collect();
    let turns = spans
        .iter()
        .map(|&(start_ms, end_ms)| Turn {
            start_ms,
            end_ms,
            text: String::new(),
        })
        .collect();
    (Arc::new(FrameSet::from_pcm(&pcm)), turns)
}

async fn call(url: &str, fast: bool) -> CallResult {
    let (audio, turns) = caller();
    let mut cfg = CallConfig::new(url, audio);
    cfg.caller.turns = turns;
    cfg.caller.tail = Duration::from_millis(500);
    cfg.max_duration = Duration::from_secs(20);
    cfg.no_audio_timeout = None;
    cfg.fast = fast;
    Engine::new().place_call(cfg, None).await
}

fn replies(res: &CallResult) -> Vec<Option<f64>> {
    res.report.streams[0]
        .turns
        .iter()
        .map(|t| t.reply.map(|d| d.as_micros() as f64 / 1e3))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_app_fails_in_virtual_time_and_passes_in_real_time() {
    let url = start_app(Answer::WallClock).await;

    let res = call(&url, true).await;
    let failures = &res.report.failures;
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let f = &failures[0];
    assert_eq!(f.step(), "virtual_time");
    let Failure::WallClockApp {
        unanswered,
        turns,
        media,
        audio_ms,
        ..
    } = f
    else {
        panic!("{f:?}");
    };
    assert_eq!(*turns, 3);
    assert!(*unanswered >= 1, "{f}");
    assert!(*media >= 1 && *audio_ms >= 20, "{f}");
    let words = f.to_string();
    for part in [
        "caller turns got no reply in virtual time",
        "on the wall clock",
        "the app paces its audio in real time",
        "--fast needs an app that answers as it reads the caller's audio",
        "rerun without --fast",
    ] {
        assert!(words.contains(part), "{part:?} not in {words}");
    }
    println!("FAILED at {}: {f}", f.step());
    assert!(!res.report.is_success());

    // The same app in real time: every turn answered, a clean call.
    let res = call(&url, false).await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let r = replies(&res);
    assert!(r.iter().all(Option::is_some), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_answers_as_it_reads_passes_in_virtual_time() {
    let url = start_app(Answer::AsItReads).await;
    let res = call(&url, true).await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let r = replies(&res);
    assert!(r.iter().all(Option::is_some), "{r:?}");
    // Answered after the 200 ms of silence the app's VAD waits for, on the audio's time.
    for ms in r.into_iter().flatten() {
        assert!((150.0..300.0).contains(&ms), "{ms}");
    }

    // Silent on purpose on two turns: they stay unanswered, and nothing comes late.
    let url = start_app(Answer::FirstTurnOnly).await;
    let res = call(&url, true).await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let r = replies(&res);
    assert!(r[0].is_some() && r[1].is_none() && r[2].is_none(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_seeded_fast_runs_send_the_same_bytes_to_an_app_answering_as_it_reads() {
    // Replies, marks and their echoes land between the same frames in both runs, so every
    // message the caller sent (faults, echoes and sequence numbers included) is the same.
    let run = || async {
        let received = Received::default();
        let url = start_app_logged(Answer::AsItReads, received.clone()).await;
        let (audio, turns) = caller();
        let mut cfg = CallConfig::new(url, audio);
        cfg.caller.turns = turns;
        cfg.caller.tail = Duration::from_millis(500);
        cfg.no_audio_timeout = None;
        cfg.fast = true;
        cfg.seed = Some(42);
        cfg.faults = Some(Arc::new(
            "jitter=20ms,dup=0.02,reorder=0.02,loss=0.01"
                .parse()
                .unwrap(),
        ));
        let res = Engine::new().place_call(cfg, None).await;
        assert!(res.report.is_success(), "{:#?}", res.report.failures);
        let r = replies(&res);
        assert!(r.iter().all(Option::is_some), "{r:?}");
        received.lock().unwrap().clone()
    };
    let (a, b) = (run().await, run().await);
    let echoes = a.iter().filter(|t| t.contains(r#""event":"mark""#)).count();
    assert_eq!(echoes, 3, "one echo per reply");
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "message {i} differs");
    }
}
