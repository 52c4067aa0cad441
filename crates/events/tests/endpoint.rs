//! The events endpoint over a real socket: records kept per call, bad ones refused with 400.

use dialtone_events::{MilestoneInbox, serve};

#[tokio::test]
async fn records_are_kept_per_call_and_bad_ones_counted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let c = MilestoneInbox::new();
    tokio::spawn(serve(listener, c.clone(), std::future::pending()));
    let http = reqwest::Client::new();
    let body = r#"{"call_sid":"CA1","name":"vad.speech_end","ts":1700000000000}
{"call_sid":"CA2","name":"transcript.final","ts":"2023-11-14T22:13:20.5Z","text":"hi"}"#;
    let r = http.post(&url).body(body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = http.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(c.counts().bad, 1);
    let one = c.take("CA1");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "vad.speech_end");
    assert_eq!(one[0].ts_ms, Some(1_700_000_000_000));
    assert!(c.take("CA1").is_empty());
    let two = c.take("CA2");
    assert_eq!(two[0].ts_ms, Some(1_700_000_000_500));
}
