//! Seeded fault injection against a real app on loopback: the same seed sends the same
//! bytes (real time or virtual time), every fault reaches the app as specified, and the
//! stream-level faults (drop, close, pause, marks, webhook timeout) do what they say.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use common::{Reply, TestApp, WsScript, call};
use dialtone_call::faults::FaultSpec;
use serde_json::Value;

const CONNECT: &str = r#"<Response><Connect><Stream url="{ws}/media"/></Connect></Response>"#;

const MIX: &str = "loss=0.03,dup=0.03,reorder=0.03,seq_gap=0.03,bad_json=0.01,\
                   bad_base64=0.01,wrong_sid=0.01,jitter=15ms,burst=0.02:100ms";

/// One call with `faults` and `seed` against a fresh silent app: every message it got.
async fn run(faults: &str, seed: u64, fast: bool, audio_ms: u32) -> (Vec<String>, Value) {
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
    let ws = app.ws_messages();
    assert_eq!(ws.len(), 1);
    let report = serde_json::to_value(&res.report.streams[0]).unwrap();
    (ws[0].1.clone(), report)
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
    assert_eq!(back, counts["reordered"].as_u64().unwrap());
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
    let (msgs, report) = run("drop=300ms", 1, false, 2000).await;
    assert!(!msgs.iter().any(|m| m.contains("\"event\":\"stop\"")));
    assert_eq!(report["closed_by"], "dialtone");
    assert_eq!(report["close_code"], Value::Null);
    assert_eq!(report["faults"]["ended"], "drop");
    assert_eq!(report["frames_sent"], 15, "frames before 300 ms");

    let (msgs, report) = run("close=300ms:4001", 1, false, 2000).await;
    assert!(!msgs.iter().any(|m| m.contains("\"event\":\"stop\"")));
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
