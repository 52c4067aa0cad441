//! Full-call load runs against the real reference voice app on a loopback port: every call
//! goes through the engine, outcomes are classified, histograms add up, and a dead target
//! costs counted failures, never a hang or a panic.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;

use dialtone_corpus::caller::{CallerSource, resolve};
use dialtone_load::calls::{self, CallRun};
use dialtone_load::scenario::{Callers, Profile};
use dialtone_load::tally::read_hlog;
use dialtone_load::{Arrival, Extent, Metric, Shard, Workload};
use tokio::sync::watch;

async fn start_bot() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dialtone_bot::serve(
        listener,
        dialtone_bot::BotConfig::default(),
        std::future::pending(),
    ));
    format!("http://{addr}/voice")
}

fn hello() -> dialtone_corpus::CallerAudio {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../audio/hello.wav"
    ))
    .unwrap();
    let pcm = dialtone_audio::wav::load_8k_from_bytes(&bytes, "hello.wav").unwrap();
    dialtone_corpus::from_frames("test".into(), Arc::new(FrameSet::from_pcm(&pcm)))
}

fn run_of(url: String, calls: u64, concurrency: usize) -> CallRun {
    CallRun {
        workload: Workload {
            extent: Extent::Calls(calls),
            arrival: Arrival::Spread {
                ramp: Duration::from_millis(500),
            },
            concurrency,
            seed: 3,
            shard: Shard::default(),
        },
        callers: Callers {
            profiles: vec![Profile {
                name: "hello".into(),
                weight: 1,
                audio: vec![hello()],
                tail: Duration::from_millis(500),
                dtmf: String::new(),
                stream_dtmf: Vec::new(),
                hangup_after: None,
            }],
            numbers: vec!["+15005550100".into(), "+15005550101".into()],
        },
        template: dialtone_call::CallConfig {
            max_duration: Duration::from_secs(60),
            ..dialtone_call::CallConfig::new(url, Arc::new(dialtone_audio::FrameSet::silence(0)))
        },
        net: Default::default(),
        lateness_bound: Duration::from_millis(50),
        drain: Duration::from_secs(5),
        milestones: None,
        registry: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_calls_against_the_reference_app_are_measured() {
    let url = start_bot().await;
    let (_stop_tx, stop) = watch::channel(false);
    let f = calls::run(run_of(url, 4, 2), stop, |_| {}).await;
    let s = &f.summary;
    assert_eq!(s.mode, "call");
    assert_eq!(s.calls.scheduled, 4);
    assert_eq!(s.calls.started, 4);
    assert_eq!(s.calls.finished, 4);
    assert_eq!(s.outcomes.get("ok"), Some(&4), "{:?}", s.outcomes);
    assert_eq!(s.metrics["webhook"].count, 4);
    assert_eq!(s.metrics["ws_connect"].count, 4);
    assert_eq!(s.metrics["start_delay"].count, 4);
    assert!(
        s.metrics.contains_key("turn_latency"),
        "{:?}",
        s.metrics.keys()
    );
    assert_eq!(s.metrics["frame_lateness"].count, s.frames.sent);
    assert!(s.frames.sent > 4 * 100);
    // The interval log holds every sample: its intervals add up to the totals.
    let h = read_hlog(&f.hlog).unwrap();
    for m in Metric::ALL {
        assert_eq!(
            h.totals.get(*m).len(),
            f.totals.get(*m).len(),
            "{}",
            m.name()
        );
    }
}

#[test]
fn a_corpus_folder_gives_ground_truth_turns_and_a_wav_folder_detected_ones() {
    let cache = dialtone_audio::AudioCache::new();
    let corpus = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../audio"));
    let utterances = resolve(&CallerSource::Path(corpus.into()), None, &cache).unwrap();
    assert!(utterances.len() > 1);
    assert!(
        utterances
            .iter()
            .any(|u| u.turns.len() > 1 && u.turns.iter().all(|t| !t.text.is_empty())),
        "multi-turn scripts with their words"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(corpus.join("hello.wav"), dir.path().join("a.wav")).unwrap();
    let wavs = resolve(&CallerSource::Path(dir.path().into()), None, &cache).unwrap();
    assert_eq!(wavs.len(), 1);
    assert!(!wavs[0].turns.is_empty() && wavs[0].turns[0].text.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_app_costs_classified_failures() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (_stop_tx, stop) = watch::channel(false);
    let f = calls::run(run_of(format!("http://{dead}/voice"), 3, 3), stop, |_| {}).await;
    let s = &f.summary;
    assert_eq!(s.calls.finished, 3);
    assert_eq!(s.calls.failed, 3);
    assert_eq!(
        s.outcomes.get("webhook 11205"),
        Some(&3),
        "{:?}",
        s.outcomes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_run_and_keeps_results() {
    let url = start_bot().await;
    let (stop_tx, stop) = watch::channel(false);
    let mut run = run_of(url, 50, 2);
    run.workload.arrival = Arrival::Spread {
        ramp: Duration::from_secs(30),
    };
    run.drain = Duration::from_millis(200);
    let mut seconds = 0;
    let f = calls::run(run, stop, move |_| {
        seconds += 1;
        if seconds == 2 {
            let _ = stop_tx.send(true);
        }
    })
    .await;
    let s = &f.summary;
    assert!(s.interrupted);
    assert!(s.calls.started < 50);
    assert_eq!(s.calls.finished, s.calls.started);
    assert_eq!(s.calls.not_started, 50 - s.calls.started);
}

/// Issue 12: a `<Redirect>` loop is its own outcome class, each call bounded in requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_counted_as_twiml_loop() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let requests = Arc::new(AtomicU64::new(0));
    let seen = requests.clone();
    let app = axum::Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::Relaxed);
        async {
            (
                [("content-type", "text/xml")],
                "<Response><Redirect>/loop</Redirect></Response>",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (_stop_tx, stop) = watch::channel(false);
    let f = calls::run(run_of(format!("http://{addr}/loop"), 3, 3), stop, |_| {}).await;
    let s = &f.summary;
    assert_eq!(s.calls.finished, 3);
    assert_eq!(s.calls.failed, 3);
    assert_eq!(
        s.outcomes.get("twiml_loop 14106"),
        Some(&3),
        "{:?}",
        s.outcomes
    );
    let bound = u64::from(dialtone_call::LOOP_DOCUMENTS);
    assert_eq!(requests.load(Ordering::Relaxed), 3 * bound);
    assert_eq!(s.metrics["webhook"].count, 3 * bound);
}

/// Issue 13: call-level fault counts come from the report's typed fields (not timeline
/// text), and every call gets a per-call record under the CallSid it was placed with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_webhooks_are_counted_and_every_call_is_recorded() {
    let url = start_bot().await;
    let (_stop_tx, stop) = watch::channel(false);
    let mut run = run_of(url, 3, 3);
    run.template.faults = Some(Arc::new("webhook_timeout=1".parse().unwrap()));
    let f = calls::run(run, stop, |_| {}).await;
    let s = &f.summary;
    assert_eq!(s.calls.finished, 3);
    assert_eq!(
        s.faults.get("calls with faults"),
        Some(&3),
        "{:?}",
        s.faults
    );
    assert_eq!(
        s.faults.get("webhooks abandoned"),
        Some(&3),
        "{:?}",
        s.faults
    );
    let calls = f.calls.expect("a run keeps its per-call records");
    assert_eq!(calls.omitted, 0);
    let got: Vec<(u64, String, String)> = calls
        .calls
        .iter()
        .map(|c| (c.index, c.call_sid.clone(), c.outcome.to_string()))
        .collect();
    // Abandoned 1 ms after it was sent, with no fallback URL: the call fails with 11200.
    let want: Vec<(u64, String, String)> = (0..3)
        .map(|i| {
            let sid = dialtone_load::plan::call_sid(3, i);
            (i, sid, "webhook 11200".to_string())
        })
        .collect();
    assert_eq!(got, want);
    // The SIDs the calls were placed with (the summary's examples carry the reports').
    for e in &s.examples["webhook 11200"] {
        assert!(got.iter().any(|(_, sid, _)| *sid == e.call_sid), "{e:?}");
    }
}
