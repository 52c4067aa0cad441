//! A load run where part of the calls hit a faulty app (the reference bot with `misbehave`:
//! HTTP 500s, invalid TwiML, a refused upgrade, abrupt closes, a handler that never reads)
//! completes, classifies every failure as the fault predicts, keeps the healthy calls'
//! measurements, and stays within a bounded memory footprint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_bot::{Behaviour, BotConfig, Misbehave};

use dialtone_load::calls::{self, CallRun};
use dialtone_load::scenario::{Callers, Profile};
use dialtone_load::{Arrival, Extent, Shard, Workload};
use dialtone_protocol::sid;
use tokio::sync::watch;

const CALLS: u64 = 40;
const SEED: u64 = 11;
/// Every fault at 10 %, plus the duplicate-frame crash (which dialtone's in-order frames must
/// never trip).
const SPEC: &str = "http500=0.1,bad_twiml=0.1,refuse_upgrade=0.1,abrupt_close=0.1,never_read=0.1,mute=0.1,crash_on_duplicate";
/// Far above what 40 short calls plus the in-process bot need (tens of MiB), far below what
/// buffering a stalled stream's frames without bound would cost.
const RSS_BOUND_KIB: u64 = 256 * 1024;

/// 200 ms of silence, 600 ms of a loud 1 kHz square wave, 200 ms of silence: one short
/// caller turn the bot's VAD closes at ~1.3 s, so its reply comes well inside the 2 s
/// no-audio bound and after an `abrupt_close` stream has already been dropped (1 s).
fn short_turn() -> dialtone_corpus::CallerAudio {
    let silence = std::iter::repeat_n(0i16, 1600);
    let tone = (0..4800).map(|i| if i % 8 < 4 { 6000i16 } else { -6000 });
    let pcm: Vec<i16> = silence.clone().chain(tone).chain(silence).collect();
    dialtone_corpus::from_frames("test".into(), Arc::new(FrameSet::from_pcm(&pcm)))
}

/// The outcome class dialtone must give each fault.
fn expected_class(b: Option<Behaviour>) -> &'static str {
    match b {
        None => "ok",
        Some(Behaviour::Http500) => "webhook 11200",
        Some(Behaviour::BadTwiml) => "twiml 12100",
        Some(Behaviour::RefuseUpgrade) => "stream_connect 31920",
        Some(Behaviour::AbruptClose) => "stream 31903",
        // The bot holds the socket unread, so no reply comes: `app_audio` once the no-audio
        // bound passes, or `stream stalled` if dialtone's write blocks first. Which one
        // depends on the socket buffers (see docs/load.md, "Faulty apps").
        Some(Behaviour::NeverRead) => "app_audio|stream stalled",
        // Reads but never answers: `app_audio` (it shares the key above, whose count is the
        // sum of both classes).
        Some(Behaviour::Mute) => "app_audio|stream stalled",
        // Conversation defects, not failures (not in this test's spec).
        Some(Behaviour::SplitVad | Behaviour::TalkOver) => "ok",
        // Hostile apps: crates/cli/tests/hostile.rs.
        Some(other) => panic!("{other} is not in this test's spec"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_app_costs_classified_failures_and_nothing_else() {
    let misbehave: Misbehave = SPEC.parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = BotConfig {
        misbehave: misbehave.clone(),
        // dialtone plays `<Say>` at speaking pace: a short greeting keeps the test short.
        greeting: "Hi.".into(),
        ..BotConfig::default()
    };
    tokio::spawn(dialtone_bot::serve(
        listener,
        config,
        std::future::pending(),
    ));

    // Predict every call's fault from the SIDs the run will use (seeded by index).
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..CALLS {
        let call_sid = sid::seeded("CA", SEED, i);
        *expected
            .entry(expected_class(misbehave.for_call(&call_sid)))
            .or_default() += 1;
    }
    assert_eq!(
        expected.len(),
        6,
        "the seed must hit every fault: {expected:?}"
    );

    let run = CallRun {
        workload: Workload {
            extent: Extent::Calls(CALLS),
            arrival: Arrival::Spread {
                ramp: Duration::from_secs(1),
            },
            concurrency: 20,
            seed: SEED,
            shard: Shard::default(),
        },
        callers: Callers {
            profiles: vec![Profile {
                name: "short".into(),
                weight: 1,
                audio: vec![short_turn()],
                tail: Duration::from_secs(2),
                dtmf: String::new(),
                stream_dtmf: Vec::new(),
                hangup_after: None,
            }],
            numbers: vec!["+15005550100".into()],
        },
        template: dialtone_call::CallConfig {
            max_duration: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(5),
            no_audio_timeout: Some(Duration::from_secs(2)),
            ..dialtone_call::CallConfig::new(
                format!("http://{addr}/voice"),
                Arc::new(dialtone_audio::FrameSet::silence(0)),
            )
        },
        net: Default::default(),
        lateness_bound: Duration::from_millis(50),
        drain: Duration::from_secs(5),
        milestones: None,
        registry: None,
    };
    let (_stop_tx, stop) = watch::channel(false);
    let f = calls::run(run, stop, |_| {}).await;
    let s = &f.summary;

    // The run completed and every call has exactly one class.
    assert!(!s.interrupted);
    assert_eq!(s.calls.finished, CALLS, "{:?}", s.calls);
    assert_eq!(s.outcomes.values().sum::<u64>(), CALLS, "{:?}", s.outcomes);
    // Each fault maps to its class, call for call.
    let got = |class: &str| s.outcomes.get(class).copied().unwrap_or(0);
    for (class, &n) in &expected {
        let measured: u64 = class.split('|').map(got).sum();
        assert_eq!(measured, n, "{class}: outcomes {:?}", s.outcomes);
    }
    let ok = expected["ok"];
    assert_eq!(s.calls.succeeded, ok);
    assert_eq!(s.calls.failed, CALLS - ok);

    // The healthy calls kept their measurements: one turn each, answered and heard.
    assert_eq!(s.metrics["first_audio"].count, ok, "{:?}", s.metrics.keys());
    assert_eq!(s.metrics["turn_latency"].count, ok);
    assert_eq!(s.metrics["turn_heard"].count, ok);
    assert!(s.metrics["mark_rtt"].count >= ok);
    // VAD hangover (500 ms) plus a little: nothing queued behind the faulty calls.
    assert!(
        s.metrics["turn_latency"].max_ms < 1500.0,
        "{:?}",
        s.metrics["turn_latency"]
    );
    // Every upgrade that was not refused connected.
    let refused = expected["stream_connect 31920"];
    let no_stream = expected["webhook 11200"] + expected["twiml 12100"];
    assert_eq!(s.metrics["ws_connect"].count, CALLS - refused - no_stream);

    // Bounded: the unread streams' frames waited in the kernel's socket buffers, not in
    // dialtone, and each stream sent no more than its schedule (3 s of 20 ms frames).
    let streams = CALLS - refused - no_stream;
    assert!(
        s.frames.sent <= streams * 3200 / 20,
        "{} frames",
        s.frames.sent
    );
    let rss = s.generator.max_rss_kib.expect("Linux reports VmHWM");
    assert!(rss < RSS_BOUND_KIB, "max RSS {rss} KiB");

    // Every failed class names up to three of its calls, each a call of this run whose
    // class is the predicted one (so it can be found in a capture and replayed).
    for (class, list) in &s.examples {
        assert!(!list.is_empty() && list.len() <= 3, "{class}: {list:?}");
        for e in list {
            let index = (0..CALLS)
                .find(|&i| sid::seeded("CA", SEED, i) == e.call_sid)
                .expect("a call of this run");
            let predicted = expected_class(misbehave.for_call(&e.call_sid));
            assert!(
                predicted.split('|').any(|c| c == class),
                "call {index} {}: {class} vs {predicted}",
                e.call_sid
            );
            assert!(!e.error.is_empty());
        }
    }
    let failed_classes = s.outcomes.keys().filter(|k| *k != "ok").count();
    assert_eq!(s.examples.len(), failed_classes, "{:?}", s.examples.keys());
}
