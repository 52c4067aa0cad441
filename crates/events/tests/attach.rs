//! Milestones matched to the turns of a real call (engine + reference app over loopback, a
//! multi-turn corpus script): the reference app's own VAD milestones arrive live, and a
//! transcript log is scored with the word error rate it deserves.

use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::AudioCache;
use dialtone_call::{CallConfig, Engine};
use dialtone_corpus::Corpus;
use dialtone_events::{MilestoneInbox, attach, serve};
use dialtone_milestones::milestone::Milestone;

#[tokio::test]
async fn live_vad_milestones_and_transcripts_land_on_the_right_turns() {
    let events = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let events_url = format!("http://{}/events", events.local_addr().unwrap());
    let inbox = MilestoneInbox::new();
    tokio::spawn(serve(events, inbox.clone(), std::future::pending()));
    let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}/voice", app.local_addr().unwrap());
    let bot = dialtone_bot::BotConfig {
        events_url: Some(events_url),
        ..dialtone_bot::BotConfig::default()
    };
    tokio::spawn(dialtone_bot::serve(app, bot, std::future::pending()));

    let corpus = Corpus::open(&Corpus::default_dir()).unwrap();
    let script = corpus.load("session", &AudioCache::new()).unwrap();
    assert!(script.turns.len() >= 3);
    let mut cfg = CallConfig::new(app_url, Arc::clone(&script.frames));
    cfg.caller.tail = Duration::from_millis(800);
    cfg.caller.turns = script.turns.clone();
    let mut result = Engine::new().place_call(cfg, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let call_sid = result.report.call_sid.clone();
    let mut milestones = inbox.take(&call_sid);
    assert!(!milestones.is_empty(), "the reference app reported nothing");

    // A transcription log as an app would write it: exact for turn 0, one word wrong in
    // turn 1's (WER = 1 / its word count), 150 ms after each true end.
    let turns = result.report.streams[0].turns.clone();
    let planted = turns[1].text.replacen("presentation", "presidential", 1);
    assert_ne!(
        planted, turns[1].text,
        "turn 1 should contain the word 'presentation'"
    );
    for (t, text) in [(&turns[0], turns[0].text.clone()), (&turns[1], planted)] {
        milestones.push(Milestone {
            call_sid: call_sid.clone(),
            name: "transcript.final".into(),
            ts_ms: Some(t.end_unix_ms + 150),
            duration_ms: None,
            text: Some(text),
        });
    }
    let unmatched = attach(&mut result.report, &milestones);
    assert!(unmatched.is_empty(), "{unmatched:?}");
    let turns = &result.report.streams[0].turns;
    for t in turns {
        let names: Vec<_> = t.milestones.iter().map(|(n, _, _)| n.as_str()).collect();
        assert!(
            names.contains(&"vad.speech_start"),
            "turn {}: {names:?}",
            t.index
        );
        assert!(
            names.contains(&"vad.speech_end"),
            "turn {}: {names:?}",
            t.index
        );
        for (name, latency, _) in &t.milestones {
            // The app noticed after the truth, and within its hangover plus slack.
            assert!(
                (0.0..1500.0).contains(latency),
                "turn {} {name}: {latency}",
                t.index
            );
        }
        assert!(t.reply.is_some(), "turn {} got no reply", t.index);
    }
    assert_eq!(turns[0].wer, Some(0.0));
    let words = turns[1].text.split_whitespace().count() as f64;
    let wer = turns[1].wer.unwrap();
    assert!((wer - 1.0 / words).abs() < 1e-9, "wer {wer}, words {words}");
    let transcript = turns[1]
        .milestones
        .iter()
        .find(|(n, _, _)| n == "transcript.final")
        .unwrap();
    assert_eq!(transcript.1, 150.0);
}
