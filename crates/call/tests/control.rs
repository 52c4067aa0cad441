//! Steering live calls from outside (what the REST API's call update does): hang up, redirect
//! to a URL or to inline TwiML, and calls that start from inline TwiML.

mod common;

use std::time::Duration;

use common::{Reply, TestApp, WsScript, events, tone};
use dialtone_call::{CallConfig, Engine, Redirect};

fn cfg(url: &str) -> CallConfig {
    let mut c = CallConfig::new(url, tone(20_000));
    c.max_duration = Duration::from_secs(20);
    c.no_audio_timeout = None;
    c
}

#[tokio::test]
async fn hangup_interrupts_a_pause() {
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml("<Response><Pause length=\"30\"/></Response>".into()),
        )],
        WsScript::Silent,
    )
    .await;
    let engine = Engine::new();
    let call = engine.prepare(cfg(&app.url("/voice")));
    let handle = call.handle();
    let (res, ()) = tokio::join!(call.run(None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.hangup("hung up through the API");
    });
    assert_eq!(res.report.end_reason, "hung up through the API");
    assert_eq!(res.report.status.as_str(), "completed");
    assert!(res.report.duration_ms < 5000.0);
    assert_eq!(res.report.call_sid, handle.call_sid());
}

#[tokio::test]
async fn redirect_to_url_stops_a_connect_stream_and_runs_the_new_twiml() {
    let app = TestApp::start(
        vec![
            ("/voice", Reply::Twiml(r#"<Response><Connect><Stream url="{ws}/media"/></Connect><Say>never</Say></Response>"#.into())),
            ("/moved", Reply::Twiml("<Response><Hangup/></Response>".into())),
        ],
        WsScript::Silent,
    )
    .await;
    let engine = Engine::new();
    let call = engine.prepare(cfg(&app.url("/voice")));
    let handle = call.handle();
    let moved = app.url("/moved");
    let (res, ()) = tokio::join!(call.run(None), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        handle.redirect(Redirect::Url {
            url: moved,
            method: dialtone_call::HttpMethod::Post,
        });
    });
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    assert_eq!(res.report.end_reason, "<Hangup>");
    let http = app.http();
    assert_eq!(http.last().unwrap().uri, "/moved");
    assert_eq!(events(&app.ws_messages()[0].1).last().unwrap(), "stop");
}

#[tokio::test]
async fn redirect_to_inline_twiml_and_calls_that_start_from_inline_twiml() {
    let engine = Engine::new();
    let mut c = cfg("http://127.0.0.1:9/unused");
    c.twiml = Some("<Response><Pause length=\"30\"/></Response>".into());
    let call = engine.prepare(c);
    let handle = call.handle();
    let (res, ()) = tokio::join!(call.run(None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.redirect(Redirect::Twiml(
            "<Response><Say>moved</Say><Hangup/></Response>".into(),
        ));
    });
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    assert_eq!(res.report.end_reason, "<Hangup>");
    assert!(res.report.webhook_ms.is_empty(), "no HTTP request was made");
    assert!(res.report.duration_ms < 3000.0);
}

#[tokio::test]
async fn invalid_inline_twiml_is_a_12100() {
    let mut c = cfg("http://127.0.0.1:9/unused");
    c.twiml = Some("<Response><Say>".into());
    let res = Engine::new().place_call(c, None).await;
    assert_eq!(res.report.failures[0].code(), 12100);
    assert_eq!(res.report.status.as_str(), "failed");
}
