//! Issue 11: what a load run says about the conversation itself, from real calls on loopback
//! against the reference app with the corpus's `barge_in` script (three turns with ground
//! truth; the caller talks over the app's first reply). A VAD that re-fires inside a turn
//! (`--misbehave split_vad`) gives split turns and no extra `vad_start` samples; a reply over
//! the caller (`talk_over`) is talk-over; a well-behaved app's barge-ins are clears, not
//! talk-over.

use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::AudioCache;
use dialtone_corpus::Corpus;
use dialtone_load::calls::{self, CallRun};
use dialtone_load::output::{OutputFormat, print_report};
use dialtone_load::scenario::{Callers, Profile};
use dialtone_load::{Arrival, Extent, Shard, Summary, Workload};
use tokio::sync::watch;

const CALLS: u64 = 2;
/// The `barge_in` script's turns.
const TURNS: u64 = 3;

/// The reference app with `misbehave`, reporting milestones to a fresh events endpoint;
/// returns its voice URL and the endpoint's inbox.
async fn start_bot(misbehave: &str) -> (String, dialtone_events::MilestoneInbox) {
    let events = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let events_url = format!("http://{}/events", events.local_addr().unwrap());
    let inbox = dialtone_events::MilestoneInbox::new();
    tokio::spawn(dialtone_events::serve(
        events,
        inbox.clone(),
        std::future::pending(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = dialtone_bot::BotConfig {
        events_url: Some(events_url),
        misbehave: misbehave.parse().unwrap(),
        ..dialtone_bot::BotConfig::default()
    };
    tokio::spawn(dialtone_bot::serve(
        listener,
        config,
        std::future::pending(),
    ));
    (format!("http://{addr}/voice"), inbox)
}

fn barge_in_script() -> dialtone_corpus::CallerAudio {
    let corpus = Corpus::open(&Corpus::default_dir()).unwrap();
    let audio = corpus.load("barge_in", &AudioCache::new()).unwrap();
    assert_eq!(audio.turns.len() as u64, TURNS);
    audio
}

async fn run(misbehave: &str) -> Summary {
    let (url, events) = start_bot(misbehave).await;
    let run = CallRun {
        workload: Workload {
            extent: Extent::Calls(CALLS),
            arrival: Arrival::Spread {
                ramp: Duration::from_millis(200),
            },
            concurrency: 2,
            seed: 11,
            shard: Shard::default(),
        },
        callers: Callers {
            profiles: vec![Profile {
                name: "barge_in".into(),
                weight: 1,
                audio: vec![barge_in_script()],
                tail: Duration::from_millis(800),
                dtmf: String::new(),
                stream_dtmf: Vec::new(),
                hangup_after: None,
            }],
            numbers: vec!["+15005550100".into()],
        },
        template: dialtone_call::CallConfig {
            max_duration: Duration::from_secs(60),
            ..dialtone_call::CallConfig::new(url, Arc::new(dialtone_audio::FrameSet::silence(0)))
        },
        net: Default::default(),
        lateness_bound: Duration::from_millis(50),
        drain: Duration::from_secs(5),
        milestones: Some((events, Duration::from_millis(500))),
        registry: None,
    };
    let (_stop_tx, stop) = watch::channel(false);
    let s = calls::run(run, stop, |_| {}).await.summary;
    assert_eq!(s.outcomes.get("ok"), Some(&CALLS), "{:?}", s.outcomes);
    assert_eq!(s.conversation.turns, CALLS * TURNS, "{:?}", s.conversation);
    s
}

fn text(s: &Summary) -> String {
    let mut out = Vec::new();
    print_report(&mut out, s, OutputFormat::Text).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_a_vad_that_re_fires_inside_a_turn_splits_it_and_keeps_one_onset() {
    let s = run("split_vad=1").await;
    let c = &s.conversation;
    // Every turn of the script is longer than 700 ms: each is split once.
    assert_eq!(c.split_turns, CALLS * TURNS, "{c:?}");
    assert_eq!(c.vad_splits, CALLS * TURNS, "{c:?}");
    assert_eq!(c.calls_with_split_turns, CALLS, "{c:?}");
    // One onset per turn, measured from the first (the re-onsets are 700 ms in).
    let vad = &s.metrics["vad_start"];
    assert_eq!(vad.count, CALLS * TURNS, "{vad:?}");
    assert!(vad.max_ms < 400.0, "{vad:?}");
    assert_eq!(s.metrics["vad_end"].count, CALLS * TURNS);
    let t = text(&s);
    assert!(
        t.contains(&format!(
            "split turns                {} ({} VAD re-onsets; calls with split turns: {CALLS} of {CALLS})",
            CALLS * TURNS,
            CALLS * TURNS
        )),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_a_reply_over_the_caller_is_talk_over() {
    let s = run("talk_over=1").await;
    let c = &s.conversation;
    // The 600 ms reply goes out 300 ms into each turn and is heard in full over it.
    assert_eq!(c.talk_over_turns, CALLS * TURNS, "{c:?}");
    assert_eq!(c.calls_with_talk_over, CALLS, "{c:?}");
    let per_turn = c.talk_over_ms / (CALLS * TURNS) as f64;
    assert!((540.0..=601.0).contains(&per_turn), "{c:?}");
    assert_eq!(c.clears, 0, "{c:?}");
    let h = &s.metrics["talk_over"];
    assert_eq!(h.count, CALLS, "one sample per call: {h:?}");
    assert!(h.min_ms > 3.0 * 540.0, "{h:?}");
    assert!(text(&s).contains("talk-over"), "{}", text(&s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_a_handled_barge_in_counts_clears_and_no_talk_over() {
    let s = run("none").await;
    let c = &s.conversation;
    // The caller talks over the first reply in every call; the app clears.
    assert!(c.clears >= CALLS, "{c:?}");
    assert_eq!(c.calls_with_clears, CALLS, "{c:?}");
    assert_eq!(c.talk_over_turns, 0, "{c:?}");
    assert_eq!(c.calls_with_talk_over, 0, "{c:?}");
    assert_eq!(c.split_turns, 0, "{c:?}");
    assert_eq!(s.metrics["vad_start"].count, CALLS * TURNS);
    assert_eq!(s.metrics["barge_in"].count, CALLS, "{:?}", s.metrics.keys());
    let t = text(&s);
    assert!(
        t.contains(&format!("(calls with clears: {CALLS} of {CALLS})")),
        "{t}"
    );
    // The JSON carries it too.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["conversation"]["calls_with_clears"], CALLS);
}
