//! Issue 12: what an app repeats without limit costs counts, not memory or quadratic time.
//! A mark flood keeps exact counts and a bounded report; a `<Redirect>` loop fails as
//! `twiml_loop` 14106 after a bounded number of requests; long legitimate chains do not.

mod common;

use std::time::Duration;

use common::{Reply, TestApp, WsScript, call};
use dialtone_call::{Failure, LOOP_DOCUMENTS};

/// A report's JSON size: what `--json` prints for the call.
fn json_len(r: &dialtone_call::CallReport) -> usize {
    serde_json::to_vec(r).unwrap().len()
}

fn connect_app(script: WsScript) -> impl std::future::Future<Output = TestApp> {
    TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml(
                r#"<Response><Connect><Stream url="{ws}/media"/></Connect></Response>"#.into(),
            ),
        )],
        script,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue12_mark_flood_is_counted_exactly_and_the_report_stays_small() {
    const MARKS: u32 = 200_000;
    let app = connect_app(WsScript::MarkFlood {
        queued_ms: 0,
        marks: MARKS,
        expect: MARKS.into(),
    })
    .await;
    // The app closes once every echo came; the long caller only keeps the stream open.
    let res = call(&app.url("/voice"), 600_000, |c| {
        c.max_duration = Duration::from_secs(600)
    })
    .await;
    let s = &res.report.streams[0];
    assert_eq!(s.closed_by, "app", "{:?}", res.report.failures);
    assert_eq!(app.log.lock().unwrap().mark_echoes, u64::from(MARKS));
    let m = &s.mark_stats;
    assert_eq!(m.received, u64::from(MARKS));
    assert_eq!(m.echoed, u64::from(MARKS));
    assert_eq!((m.refused, m.unanswered, m.cleared), (0, 0, 0));
    assert_eq!(m.round_trip.count, u64::from(MARKS));
    // A sample: the first 50 and the last 50, in order, with their round trips.
    assert_eq!(s.marks.len(), 100);
    assert_eq!(m.omitted, u64::from(MARKS) - 100);
    assert_eq!(s.marks[0].name, "m0");
    assert_eq!(s.marks[99].name, format!("m{}", MARKS - 1));
    assert!(s.marks.iter().all(|r| r.round_trip_ms.is_some()));
    let echoes_shown = res
        .report
        .timeline
        .iter()
        .filter(|e| matches!(e.kind, dialtone_call::EventKind::MarkEchoed { .. }))
        .count();
    assert_eq!(echoes_shown, 50);
    let size = json_len(&res.report);
    assert!(size < 100_000, "report of {size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue12_marks_waiting_for_audio_are_bounded_and_refusals_counted() {
    use dialtone_call::playout::MAX_PENDING_MARKS;
    const MARKS: u32 = 25_000;
    let pending = MAX_PENDING_MARKS as u64;
    // A minute of audio queued: every mark waits (the flood takes far less), until `clear`.
    let app = connect_app(WsScript::MarkFlood {
        queued_ms: 60_000,
        marks: MARKS,
        expect: pending,
    })
    .await;
    let res = call(&app.url("/voice"), 600_000, |c| {
        c.max_duration = Duration::from_secs(600)
    })
    .await;
    let s = &res.report.streams[0];
    assert_eq!(s.closed_by, "app", "{:?}", res.report.failures);
    let m = &s.mark_stats;
    assert_eq!(m.received, u64::from(MARKS));
    // The first 10,000 waited for their audio and were echoed by the `clear`.
    assert_eq!(m.echoed, pending);
    assert_eq!(m.cleared, pending);
    assert_eq!(m.refused, u64::from(MARKS) - pending);
    assert_eq!(m.unanswered, m.refused);
    assert_eq!(app.log.lock().unwrap().mark_echoes, pending);
    // Refusals are warned once, not per mark.
    let warned: Vec<_> = res
        .report
        .warnings
        .iter()
        .filter(|(_, w)| w.contains("marks are counted, not echoed"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", res.report.warnings);
    // The sample's last marks are refused ones: never echoed.
    assert_eq!(s.marks.last().unwrap().round_trip_ms, None);
}

#[tokio::test]
async fn issue12_redirect_loop_fails_as_twiml_loop_after_a_bounded_number_of_requests() {
    let app = TestApp::start(
        vec![(
            "/loop",
            Reply::Twiml("<Response><Redirect>/loop</Redirect></Response>".into()),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/loop"), 100, |c| {
        c.max_duration = Duration::from_secs(600)
    })
    .await;
    assert!(!res.report.is_success());
    let f = &res.report.failures[0];
    assert!(
        matches!(f, Failure::TwimlLoop { documents, .. } if *documents == LOOP_DOCUMENTS),
        "{f:?}"
    );
    assert_eq!((f.step(), f.code()), ("twiml_loop", 14106));
    assert!(f.to_string().contains("loop"), "{f}");
    // Exactly the bound: the voice request and 49 redirects; none after the loop was seen.
    assert_eq!(app.http().len(), LOOP_DOCUMENTS as usize);
    assert_eq!(res.report.webhooks, u64::from(LOOP_DOCUMENTS));
    assert!(
        res.report.end_reason.contains("TwiML loop"),
        "{}",
        res.report.end_reason
    );
}

/// `n` documents `/d0` … chained by `<Redirect>`, each running `body`, the last hanging up.
fn chain(n: usize, body: &str) -> Vec<(String, Reply)> {
    (0..n)
        .map(|i| {
            let next = if i + 1 == n {
                "<Hangup/>".to_string()
            } else {
                format!("<Redirect>/d{}</Redirect>", i + 1)
            };
            (
                format!("/d{i}"),
                Reply::Twiml(format!("<Response>{body}{next}</Response>")),
            )
        })
        .collect()
}

async fn run_chain(n: usize, body: &str) -> (TestApp, dialtone_call::CallResult) {
    let routes = chain(n, body);
    let app = TestApp::start(
        routes
            .iter()
            .map(|(p, r)| (p.as_str(), r.clone()))
            .collect(),
        WsScript::Silent,
    )
    .await;
    // Virtual time: `<Say>` takes its call time without the wall clock.
    let res = call(&app.url("/d0"), 100, |c| c.fast = true).await;
    (app, res)
}

#[tokio::test]
async fn issue12_documents_that_advance_the_call_are_no_loop_and_the_timeline_is_bounded() {
    // 600 documents, each saying a word: ~2,400 steps, far past what the timeline keeps.
    let (app, res) = run_chain(600, "<Say>hi</Say>").await;
    assert!(res.report.is_success(), "{:?}", res.report.failures);
    assert_eq!(res.report.end_reason, "<Hangup>");
    assert_eq!(app.http().len(), 600);
    assert_eq!(res.report.webhooks, 600);
    assert_eq!(res.report.webhook_ms.len(), 100);
    let r = &res.report;
    assert_eq!(r.timeline.len(), 1000);
    assert!(r.timeline_omitted > 1000, "{}", r.timeline_omitted);
    // The end is kept: the last step is the call's end.
    assert!(matches!(
        r.timeline.last().unwrap().kind,
        dialtone_call::EventKind::Ended { .. }
    ));
}

#[tokio::test]
async fn issue12_a_short_chain_of_bare_redirects_is_no_loop() {
    let (app, res) = run_chain(LOOP_DOCUMENTS as usize, "").await;
    assert!(res.report.is_success(), "{:?}", res.report.failures);
    assert_eq!(app.http().len(), LOOP_DOCUMENTS as usize);
}
