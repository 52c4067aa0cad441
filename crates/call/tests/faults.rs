//! Seeded fault injection against a real app on loopback: the same seed sends the same
//! bytes (real time or virtual time), every fault reaches the app as specified, and the
//! stream-level faults (drop, close, pause, marks, webhook timeout) do what they say.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use common::{Reply, SharedBuf, TestApp, WsScript, call};
use dialtone_call::faults::FaultSpec;
use serde_json::Value;

const CONNECT: &str = r#"<Response><Connect><Stream url="{ws}/media"/></Connect></Response>"#;

const MIX: &str = "loss=0.03,dup=0.03,reorder=0.03,seq_gap=0.03,bad_json=0.01,\
                   bad_base64=0.01,wrong_sid=0.01,jitter=15ms,burst=0.02:100ms";

/// One call with `faults` and `seed` against a fresh silent app: every message it got.
async fn run(faults: &str, seed: u64, fast: bool, audio_ms: u32) -> (Vec<String>, Value) {
    let (msgs, report, _) = run_with_end(faults, seed, fast, audio_ms).await;
    (msgs, report)
}

/// [`run`], plus how the app saw the stream end (`close` frame or `eof`).
async fn run_with_end(
    faults: &str,
    seed: u64,
    fast: bool,
    audio_ms: u32,
) -> (Vec<String>, Value, &'static str) {
    let app = TestApp::start(
        vec![("/voice", Reply::Twiml(CONNECT.into()))],
        WsScript::Silent,
    )
    .await;
    let spec: FaultSpec = faults.parse().unwrap();
    let res = call(&app.url("/voice"), audio_ms, |c| {
        c.seed = Some(seed);
        c.faults = Some(Arc::new(spec));
        c.fast = fast;
    })
    .await;
    assert!(res.report.failures.is_empty(), "{:?}", res.report.failures);
    // The app logs a stream once its socket has ended, just after the call returns.
    let mut end = "open";
    for _ in 0..100 {
        end = app.log.lock().unwrap().ws_end[0];
        if end != "open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ws = app.ws_messages();
    assert_eq!(ws.len(), 1);
    let report = serde_json::to_value(&res.report.streams[0]).unwrap();
    (ws[0].1.clone(), report, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_sends_the_same_bytes_in_real_and_virtual_time() {
    let (a, _) = run(MIX, 42, false, 1500).await;
    let (b, _) = run(MIX, 42, false, 1500).await;
    assert_eq!(a, b, "same seed, same messages byte for byte");
    let (fast, _) = run(MIX, 42, true, 1500).await;
    assert_eq!(a, fast, "virtual time sends the same messages");
    let (other, _) = run(MIX, 43, false, 1500).await;
    assert_ne!(a, other, "another seed, another schedule");
    assert!(a.last().unwrap().contains("\"event\":\"stop\""));

    // An injected end with jittered frames around it: which frames go out is decided on
    // the schedule, not on when the driver woke.
    // (Seed 21 puts frame 49, slot 980 ms, at 1000.68 ms: past the end.)
    let end = "jitter=30ms,drop=1s";
    let (a, _) = run(end, 21, false, 2000).await;
    let (b, _) = run(end, 21, false, 2000).await;
    let (fast, _) = run(end, 21, true, 2000).await;
    assert_eq!(a, b);
    assert_eq!(a, fast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_fault_reaches_the_app_as_counted() {
    let (msgs, report) = run(MIX, 7, true, 6000).await;
    let counts = &report["faults"];
    let sid = serde_json::from_str::<Value>(&msgs[1]).unwrap()["streamSid"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut bad_json, mut bad_b64, mut wrong_sid, mut dups, mut back) = (0, 0, 0, 0, 0);
    let mut seen_seq = HashSet::new();
    let mut chunks = Vec::new();
    let mut last_seq = 0u64;
    let mut gaps = 0;
    for m in &msgs[2..] {
        let Ok(v) = serde_json::from_str::<Value>(m) else {
            bad_json += 1;
            continue;
        };
        if v["event"] != "media" {
            continue;
        }
        if v["streamSid"] != sid.as_str() {
            wrong_sid += 1;
        }
        let payload = v["media"]["payload"].as_str().unwrap();
        if payload.starts_with("!*~") {
            bad_b64 += 1;
        }
        let seq: u64 = v["sequenceNumber"].as_str().unwrap().parse().unwrap();
        if !seen_seq.insert(seq) {
            dups += 1;
        } else if seq < last_seq {
            back += 1;
        } else if seq > last_seq + 2 && last_seq > 0 {
            gaps += 1;
        }
        last_seq = last_seq.max(seq);
        chunks.push(
            v["media"]["chunk"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert_eq!(bad_json, counts["bad_json"].as_u64().unwrap());
    assert_eq!(bad_b64, counts["bad_base64"].as_u64().unwrap());
    assert_eq!(wrong_sid, counts["wrong_sid"].as_u64().unwrap());
    assert_eq!(dups, counts["duplicated"].as_u64().unwrap());
    // A swapped frame shows as going back, unless the frame it waited for was lost.
    assert!(back > 0 && back <= counts["reordered"].as_u64().unwrap());
    for k in ["lost", "duplicated", "reordered", "seq_gaps", "delayed"] {
        assert!(counts[k].as_u64().unwrap() > 0, "{k}: {counts}");
    }
    assert!(gaps > 0);
    // Lost frames leave holes in the chunk numbers the app saw.
    let distinct: HashSet<_> = chunks.iter().collect();
    let max = *chunks.iter().max().unwrap();
    let lost = counts["lost"].as_u64().unwrap() + counts["bad_json"].as_u64().unwrap();
    assert_eq!(
        max - distinct.len() as u64,
        lost,
        "holes are the lost frames"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_close_end_the_stream_without_stop() {
    let (msgs, report, end) = run_with_end("drop=300ms", 1, false, 2000).await;
    assert!(!msgs.iter().any(|m| m.contains("\"event\":\"stop\"")));
    assert_eq!(end, "eof", "the connection ended without a close frame");
    assert_eq!(report["closed_by"], "dialtone");
    assert_eq!(report["close_code"], Value::Null);
    assert_eq!(report["faults"]["ended"], "drop");
    assert_eq!(report["frames_sent"], 15, "frames before 300 ms");

    let (msgs, report, end) = run_with_end("close=300ms:4001", 1, false, 2000).await;
    assert!(!msgs.iter().any(|m| m.contains("\"event\":\"stop\"")));
    assert_eq!(end, "close");
    assert_eq!(report["close_code"], 4001);
    assert_eq!(report["faults"]["ended"], "close 4001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_withholds_frames_and_time_jumps() {
    let (msgs, report) = run("pause=200ms+100ms", 1, true, 600).await;
    let media: Vec<Value> = msgs
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).unwrap())
        .filter(|v| v["event"] == "media")
        .collect();
    let ts: Vec<u64> = media
        .iter()
        .map(|v| v["media"]["timestamp"].as_str().unwrap().parse().unwrap())
        .collect();
    let i = ts.iter().position(|&t| t == 180).unwrap();
    assert_eq!(ts[i + 1], 300, "timestamps jump over the pause");
    let chunks: Vec<u64> = media
        .iter()
        .map(|v| v["media"]["chunk"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        chunks.windows(2).all(|w| w[1] == w[0] + 1),
        "chunks stay dense"
    );
    assert_eq!(report["faults"]["paused"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_are_echoed_late_or_never() {
    let app = TestApp::start(
        vec![("/voice", Reply::Twiml(CONNECT.into()))],
        WsScript::ReplyWithMark {
            chunk_ms: 100,
            n_chunks: 1,
        },
    )
    .await;
    let res = call(&app.url("/voice"), 1500, |c| {
        c.faults = Some(Arc::new("mark_delay=400ms".parse().unwrap()));
    })
    .await;
    let s = &res.report.streams[0];
    let rtt = s.marks[0].round_trip_ms.expect("echoed");
    // The echo waits for the audio (100 ms from the media's arrival) plus the delay.
    assert!(rtt >= 400.0, "{rtt}");
    assert_eq!(s.faults.as_ref().unwrap().marks_delayed, 1);

    let res = call(&app.url("/voice"), 1500, |c| {
        c.faults = Some(Arc::new("mark_loss=1".parse().unwrap()));
    })
    .await;
    let s = &res.report.streams[0];
    assert_eq!(s.marks[0].round_trip_ms, None);
    assert_eq!(s.faults.as_ref().unwrap().marks_dropped, 1);
    let ws = app.ws_messages();
    assert!(!ws[1].1.iter().any(|m| m.contains("\"event\":\"mark\"")));
    assert!(ws[0].1.iter().any(|m| m.contains("\"event\":\"mark\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_webhook_timeout_takes_twilios_timeout_path() {
    let app = TestApp::start(
        vec![
            (
                "/voice",
                Reply::Slow(Duration::from_millis(50), "<Response/>".into()),
            ),
            (
                "/fallback",
                Reply::Twiml("<Response><Hangup/></Response>".into()),
            ),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |c| {
        c.faults = Some(Arc::new("webhook_timeout=1".parse().unwrap()));
        c.fallback_url = Some(app.url("/fallback"));
    })
    .await;
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 11200);
    assert!(f.to_string().contains("timed out"), "{f}");
    assert!(app.http().iter().any(|s| s.uri == "/fallback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_time_runs_a_minute_of_audio_in_seconds() {
    let started = Instant::now();
    let (msgs, report) = run("", 3, true, 60_000).await;
    // 60 s of audio + 300 ms tail = 3015 frames, all with their real timestamps.
    assert_eq!(report["frames_sent"], 3015);
    let last: Value = serde_json::from_str(&msgs[msgs.len() - 2]).unwrap();
    assert_eq!(last["media"]["timestamp"], "60280");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_echo_is_never_credited_to_a_later_mark_of_the_same_name() {
    let app = TestApp::start(
        vec![("/voice", Reply::Twiml(CONNECT.into()))],
        WsScript::TwoMarksOneName,
    )
    .await;
    let spec: FaultSpec = "mark_loss=0.5".parse().unwrap();
    // A seed whose first echo is lost and second is sent.
    let seed = (0..1000)
        .find(|&s| {
            let f = spec.for_stream(s, 0);
            f.mark(0).is_none() && f.mark(1).is_some()
        })
        .unwrap();
    let res = call(&app.url("/voice"), 1500, |c| {
        c.seed = Some(seed);
        c.faults = Some(Arc::new(spec));
    })
    .await;
    let marks = &res.report.streams[0].marks;
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[0].round_trip_ms, None, "the lost one");
    assert!(marks[1].round_trip_ms.is_some(), "the echoed one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_takes_the_apps_messages_late() {
    let app = TestApp::start(
        vec![("/voice", Reply::Twiml(CONNECT.into()))],
        WsScript::ReplyWithMark {
            chunk_ms: 20,
            n_chunks: 20,
        },
    )
    .await;
    let buf = SharedBuf::default();
    let capture = Arc::new(dialtone_call::capture::Capture::new(Box::new(buf.clone())));
    let res = call(&app.url("/voice"), 2000, |c| {
        c.faults = Some(Arc::new("slow_read=50ms".parse().unwrap()));
        c.capture = Some(capture.clone());
    })
    .await;
    assert!(res.report.failures.is_empty(), "{:?}", res.report.failures);
    capture.finish().unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let ins: Vec<f64> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "ws_in")
        .map(|v| v["t_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(ins.len(), 21, "20 media and a mark");
    // Sent back to back by the app; read one per 50 ms.
    let spread = ins[20] - ins[0];
    assert!(spread >= 20.0 * 50.0 * 0.9, "{spread} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_virtual_time_the_callers_time_passes_to_the_next_stream() {
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml(
                r#"<Response><Connect><Stream url="{ws}/close-after-10"/></Connect><Connect><Stream url="{ws}/media"/></Connect><Pause length="600"/></Response>"#
                    .into(),
            ),
        )],
        WsScript::Silent,
    )
    .await;
    // 30 s of audio: far more than the socket buffers hold, so the first stream is still
    // sending when the app's close reaches it, however fast virtual time runs.
    let res = call(&app.url("/voice"), 30_000, |c| c.fast = true).await;
    assert!(
        res.report.end_reason.contains("caller hung up"),
        "{}",
        res.report.end_reason
    );
    let s = &res.report.streams;
    assert_eq!(s.len(), 2);
    assert!(s[0].frames_sent < 1000, "{}", s[0].frames_sent);
    // 30 s of audio + 300 ms tail = 1515 frames between the two streams.
    let total = s[0].frames_sent + s[1].frames_sent;
    assert!(
        (1512..=1518).contains(&total),
        "{} + {}",
        s[0].frames_sent,
        s[1].frames_sent
    );
}
