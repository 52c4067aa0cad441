//! A real call (engine + the embedded reference app over loopback) whose milestones are put
//! into its report: the app's own land on turns; a record for another call, a malformed one
//! and one no turn takes each become a warning; under --fast nothing is matched.

use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::AudioCache;
use dialtone_call::{CallConfig, CallReport, DEFAULT_AUTH_TOKEN, Engine};
use dialtone_corpus::Corpus;
use dialtone_milestones::milestone::Milestone;
use dialtone_setup::{Target, TargetOptions, put_milestones};

async fn call(target: &Target) -> CallReport {
    let corpus = Corpus::open(&Corpus::default_dir()).unwrap();
    let script = corpus.load("hello", &AudioCache::new()).unwrap();
    let mut cfg = CallConfig::new(target.url().to_string(), Arc::clone(&script.frames));
    cfg.caller.tail = Duration::from_millis(800);
    cfg.caller.turns = script.turns.clone();
    let report = Engine::new().place_call(cfg, None).await.report;
    // The app reports asynchronously.
    tokio::time::sleep(Duration::from_millis(300)).await;
    report
}

async fn post(url: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn warnings(report: &CallReport) -> Vec<&str> {
    report.warnings.iter().map(|(_, w)| w.as_str()).collect()
}

async fn embedded() -> Target {
    Target::start(TargetOptions {
        webhook: None,
        auth_token: DEFAULT_AUTH_TOKEN,
        events_listen: "127.0.0.1:0".parse().unwrap(),
        capture: None,
        embedded_app: Default::default(),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_apps_milestones_land_on_turns_and_strays_become_warnings() {
    let target = embedded().await;
    let mut report = call(&target).await;
    assert!(report.is_success(), "{:?}", report.failures);
    let other = r#"{"call_sid":"CAother","name":"vad.speech_end","ts":1732460000123}"#;
    assert_eq!(post(target.events_url(), other).await, 202);
    assert_eq!(post(target.events_url(), r#"{"name":1}"#).await, 400);
    // A log line for this call long before it began: no turn takes it.
    let stray = Milestone {
        call_sid: report.call_sid.clone(),
        name: "transcript.final".into(),
        ts_ms: Some(1),
        duration_ms: None,
        text: None,
    };
    put_milestones(&mut report, target.milestones(), &[stray], false);

    let names: Vec<&str> = report.streams[0].turns[0]
        .milestones
        .iter()
        .map(|(n, _, _)| n.as_str())
        .collect();
    assert!(names.contains(&"vad.speech_end"), "{names:?}");
    let w = warnings(&report);
    assert!(
        w.iter()
            .any(|w| w.starts_with("1 milestone record(s) for unknown call SID \"CAother\"")),
        "{w:?}"
    );
    assert!(
        w.contains(&"1 malformed milestone record(s) were refused with HTTP 400"),
        "{w:?}"
    );
    assert!(
        w.contains(&"milestone transcript.final matched no caller turn"),
        "{w:?}"
    );
    target.finish();
}

#[tokio::test]
async fn under_fast_milestones_are_counted_not_matched() {
    let target = embedded().await;
    let mut report = call(&target).await;
    let mine = format!(
        r#"{{"call_sid":"{}","name":"vad.speech_end","ts":1732460000123}}"#,
        report.call_sid
    );
    assert_eq!(post(target.events_url(), &mine).await, 202);
    put_milestones(&mut report, target.milestones(), &[], true);
    assert!(report.streams[0].turns[0].milestones.is_empty());
    let w = warnings(&report);
    assert!(
        w.iter().any(|w| w
            .ends_with("milestone record(s) not matched to turns: --fast runs on virtual time")),
        "{w:?}"
    );
    target.finish();
}
