//! The lean `--stream` path against a real WebSocket server on loopback: the exact Twilio
//! messages in order (connected, start, media every 20 ms with counters, stop, close), mark
//! echoes after the app's audio has played, and refused upgrades classified.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::time::Instant;

use dialtone_audio::FrameSet;
use dialtone_load::stream::{self, StreamRun};
use dialtone_load::{Finished, Shard};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What one connection saw: every text message, when the app's audio went out (if it sent
/// any), when the mark echo came back, and whether a close frame arrived.
struct Seen {
    msgs: Vec<String>,
    audio_sent: Option<Instant>,
    mark_echoed: Option<Instant>,
    closed: bool,
}

/// Accepts streams; records every text message per connection; when `mark_back`, answers
/// `start` with 40 ms of audio and a mark.
async fn server(mark_back: bool) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/stream", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
                let mut seen = Vec::new();
                let mut closed = false;
                let mut audio_sent = None;
                let mut mark_echoed = None;
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Text(t) => {
                            let t = t.to_string();
                            if mark_back && t.contains("\"event\":\"start\"") {
                                let sid: Value = serde_json::from_str(&t).unwrap();
                                let sid = sid["streamSid"].as_str().unwrap().to_string();
                                let payload = "/".repeat(424) + "//8=";
                                let media = format!(
                                    r#"{{"event":"media","streamSid":"{sid}","media":{{"payload":"{payload}"}}}}"#
                                );
                                // Stamped before the send: the audio cannot arrive earlier.
                                audio_sent = Some(Instant::now());
                                ws.send(Message::text(media)).await.unwrap();
                                let mark = format!(
                                    r#"{{"event":"mark","streamSid":"{sid}","mark":{{"name":"m1"}}}}"#
                                );
                                ws.send(Message::text(mark)).await.unwrap();
                            }
                            if t.contains("\"event\":\"mark\"") {
                                mark_echoed.get_or_insert_with(Instant::now);
                            }
                            seen.push(t);
                        }
                        Message::Close(_) => {
                            closed = true;
                        }
                        _ => {}
                    }
                }
                let _ = tx.send(Seen {
                    msgs: seen,
                    audio_sent,
                    mark_echoed,
                    closed,
                });
            });
        }
    });
    (url, rx)
}

fn plan(url: String, streams: u64, frames: u64) -> StreamRun {
    StreamRun {
        url,
        streams,
        media: Duration::from_millis(20 * frames),
        ramp: Duration::from_millis(100),
        threads: 2,
        audio: Arc::new(FrameSet::silence(0)),
        account_sid: dialtone_call::DEFAULT_ACCOUNT_SID.into(),
        auth_token: dialtone_call::DEFAULT_AUTH_TOKEN.into(),
        seed: 1,
        shard: Shard::default(),
        lateness_bound: Duration::from_millis(50),
        tunnels: Default::default(),
        drain: Duration::from_secs(5),
    }
}

async fn run(p: StreamRun) -> Finished {
    tokio::task::spawn_blocking(move || stream::run(&p, Arc::new(AtomicBool::new(false)), |_| {}))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_speak_twilio_messages_in_order() {
    let (url, mut rx) = server(false).await;
    let f = run(plan(url, 3, 10)).await;
    let s = &f.summary;
    assert_eq!(s.calls.finished, 3);
    assert_eq!(s.outcomes.get("ok"), Some(&3), "{:?}", s.outcomes);
    assert_eq!(s.frames.sent, 30);
    assert_eq!(s.metrics["frame_lateness"].count, 30);
    assert_eq!(s.metrics["ws_connect"].count, 3);
    let mut sids = Vec::new();
    for _ in 0..3 {
        let Seen { msgs, closed, .. } = rx.recv().await.unwrap();
        assert!(closed, "the client closes with a close frame");
        assert_eq!(msgs.len(), 13, "connected, start, 10 media, stop");
        assert_eq!(
            msgs[0],
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#
        );
        let start: Value = serde_json::from_str(&msgs[1]).unwrap();
        assert_eq!(start["event"], "start");
        assert_eq!(start["sequenceNumber"], "1");
        let sid = start["streamSid"].as_str().unwrap().to_string();
        // Stream i's CallSid is the one call i of a full-call run with the same seed gets.
        let index = u64::from_str_radix(&sid[2..], 16).unwrap();
        assert_eq!(
            start["start"]["callSid"],
            dialtone_load::plan::call_sid(1, index).as_str()
        );
        assert_eq!(start["start"]["mediaFormat"]["sampleRate"], 8000);
        for k in 0..10 {
            let m: Value = serde_json::from_str(&msgs[2 + k]).unwrap();
            assert_eq!(m["event"], "media");
            assert_eq!(m["sequenceNumber"], (k + 2).to_string());
            assert_eq!(m["media"]["chunk"], (k + 1).to_string());
            assert_eq!(m["media"]["timestamp"], (k * 20).to_string());
            assert_eq!(m["media"]["track"], "inbound");
            assert_eq!(m["media"]["payload"], "/".repeat(212) + "/w==");
            assert_eq!(m["streamSid"], sid.as_str());
        }
        let stop: Value = serde_json::from_str(&msgs[12]).unwrap();
        assert_eq!(stop["event"], "stop");
        assert_eq!(stop["sequenceNumber"], "12");
        sids.push(sid);
    }
    sids.sort();
    assert_eq!(
        sids,
        (0..3u64).map(|i| format!("MZ{i:032x}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_are_echoed_after_their_audio_played() {
    let (url, mut rx) = server(true).await;
    let f = run(plan(url, 1, 25)).await;
    let seen = rx.recv().await.unwrap();
    let mark = seen
        .msgs
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).unwrap())
        .find(|m| m["event"] == "mark")
        .expect("a mark echo");
    assert_eq!(mark["mark"]["name"], "m1");
    let s = &f.summary;
    assert_eq!(s.frames.app_media_received, 1);
    // 320 bytes of μ-law is 40 ms of playout: the echo waits for it. Judged from the app's
    // side (audio sent → echo back), because the mark itself may reach dialtone later than
    // the audio on a loaded machine, which shortens mark_rtt (measured from the mark).
    let waited = seen.mark_echoed.unwrap() - seen.audio_sent.unwrap();
    assert!(waited >= Duration::from_millis(40), "echo after {waited:?}");
    assert_eq!(s.metrics["mark_rtt"].count, 1);
    assert!(s.metrics["mark_rtt"].min_ms > 0.0);
    assert_eq!(s.metrics["first_audio"].count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_upgrades_and_dead_ports_are_classified() {
    // A plain HTTP server that refuses the upgrade.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let f = run(plan(format!("ws://{addr}/stream"), 2, 5)).await;
    assert_eq!(f.summary.outcomes.get("stream_connect 31920"), Some(&2));
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f = run(plan(format!("ws://{dead}/stream"), 2, 5)).await;
    assert_eq!(f.summary.calls.failed, 2);
    assert_eq!(f.summary.frames.sent, 0);
}

/// Runs `p`, setting the stop flag (Ctrl-C) after `after`.
async fn run_stopped(p: StreamRun, after: Duration) -> Finished {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    tokio::task::spawn_blocking(move || stream::run(&p, stop, |_| {}))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_streams_drain_then_counts_the_rest_interrupted() {
    let (url, _rx) = server(false).await;
    // 2 s streams stopped after 0.5 s: with a 5 s drain they finish whole and clean...
    let f = run_stopped(plan(url.clone(), 2, 100), Duration::from_millis(500)).await;
    assert!(f.summary.interrupted);
    assert_eq!(
        f.summary.outcomes.get("ok"),
        Some(&2),
        "{:?}",
        f.summary.outcomes
    );
    assert_eq!(f.summary.frames.sent, 200);
    // ...with no drain they are cut at once and say so.
    let mut p = plan(url, 2, 100);
    p.drain = Duration::ZERO;
    let f = run_stopped(p, Duration::from_millis(500)).await;
    assert_eq!(
        f.summary.outcomes.get("interrupted"),
        Some(&2),
        "{:?}",
        f.summary.outcomes
    );
    assert!(f.summary.frames.sent < 200, "{}", f.summary.frames.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_wss_url_goes_through_the_tunnel_table() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut headers = None;
        // The callback's signature is tungstenite's, large error type included.
        #[allow(clippy::result_large_err)]
        let keep = |req: &Request, resp: Response| {
            headers = Some(req.headers().clone());
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(sock, keep)
            .await
            .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
        let _ = tx.send(headers.unwrap());
    });
    let mut p = plan("wss://bot.example.test/ws".into(), 1, 5);
    p.tunnels = dialtone_call::Tunnels::new(vec![
        format!("https://bot.example.test={local}").parse().unwrap(),
    ]);
    let f = run(p).await;
    assert_eq!(
        f.summary.outcomes.get("ok"),
        Some(&1),
        "{:?}",
        f.summary.outcomes
    );
    let h = rx.recv().await.unwrap();
    assert_eq!(h["host"], "bot.example.test");
    assert_eq!(h["x-forwarded-proto"], "https");
    let sig = h["x-twilio-signature"].to_str().unwrap();
    assert!(dialtone_protocol::signing::validate(
        dialtone_call::DEFAULT_AUTH_TOKEN,
        "wss://bot.example.test/ws",
        &[],
        sig
    ));
}

/// Issue 12: an app that floods marks behind queued audio: the lean path holds at most
/// `MAX_PENDING_MARKS` of them (each mark O(1)), and the `clear` echoes exactly those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_flood_is_bounded_on_the_lean_path() {
    use dialtone_call::playout::MAX_PENDING_MARKS;
    const MARKS: usize = 25_000;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/stream", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
        let mut echoes = 0usize;
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(t) = msg else { continue };
            if t.contains("\"event\":\"start\"") {
                let v: Value = serde_json::from_str(&t).unwrap();
                let sid = v["streamSid"].as_str().unwrap().to_string();
                // A minute of audio queued (1 s a message): every mark waits, until `clear`.
                let second = "/".repeat(10_664) + "/w==";
                let media = format!(
                    r#"{{"event":"media","streamSid":"{sid}","media":{{"payload":"{second}"}}}}"#
                );
                for _ in 0..60 {
                    ws.send(Message::text(media.clone())).await.unwrap();
                }
                for i in 0..MARKS {
                    let mark = format!(
                        r#"{{"event":"mark","streamSid":"{sid}","mark":{{"name":"m{i}"}}}}"#
                    );
                    ws.send(Message::text(mark)).await.unwrap();
                }
                let clear = format!(r#"{{"event":"clear","streamSid":"{sid}"}}"#);
                ws.send(Message::text(clear)).await.unwrap();
            }
            if t.contains("\"event\":\"mark\"") {
                echoes += 1;
                if echoes == MAX_PENDING_MARKS {
                    let _ = ws.close(None).await;
                }
            }
        }
        let _ = tx.send(echoes);
    });
    // A long stream: the app ends it once the echoes came.
    let f = run(plan(url, 1, 6_000)).await;
    let s = &f.summary;
    assert_eq!(s.calls.finished, 1, "{:?}", s.outcomes);
    assert_eq!(
        s.metrics["mark_rtt"].count, MAX_PENDING_MARKS as u64,
        "{:?}",
        s.outcomes
    );
    assert_eq!(rx.recv().await.unwrap(), MAX_PENDING_MARKS);
}
