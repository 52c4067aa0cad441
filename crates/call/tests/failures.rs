//! Each failure class of the call path: the step named, Twilio's code, a plain-words cause,
//! and the rest of the call handled as Twilio would.

mod common;

use std::time::Duration;

use common::{Reply, TestApp, WsScript, call, param};
use dialtone_call::Failure;

fn twiml(body: &str) -> Reply {
    Reply::Twiml(format!("<Response>{body}</Response>"))
}

async fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn webhook_connection_refused_is_11205() {
    let port = closed_port().await;
    let res = call(&format!("http://127.0.0.1:{port}/voice"), 100, |_| {}).await;
    assert_eq!(res.report.status.as_str(), "failed");
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 11205);
    assert_eq!(f.step(), "webhook");
    assert!(f.to_string().to_lowercase().contains("refused"), "{f}");
}

#[tokio::test]
async fn webhook_http_errors_are_11200_with_hints() {
    let app = TestApp::start(
        vec![
            ("/500", Reply::Raw(500, "text/plain", "boom".into())),
            (
                "/403",
                Reply::Raw(403, "text/plain", "invalid signature".into()),
            ),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/500"), 100, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 11200);
    assert!(f.to_string().contains("HTTP 500"), "{f}");
    if let Failure::WebhookStatus { body, .. } = f {
        assert_eq!(body, "boom");
    } else {
        panic!("{f:?}");
    }
    let res = call(&app.url("/403"), 100, |_| {}).await;
    let f = res.report.failures[0].to_string();
    assert!(f.contains("HTTP 403") && f.contains("signature"), "{f}");
    let res = call(&app.url("/missing"), 100, |_| {}).await;
    assert!(res.report.failures[0].to_string().contains("HTTP 404"));
}

#[tokio::test]
async fn webhook_timeout_is_reported_with_its_bound() {
    let app = TestApp::start(
        vec![(
            "/slow",
            Reply::Slow(Duration::from_secs(3), "<Response/>".into()),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/slow"), 100, |c| {
        c.webhook_timeout = Duration::from_millis(500)
    })
    .await;
    let f = &res.report.failures[0];
    assert!(matches!(f, Failure::WebhookTimeout { .. }), "{f:?}");
    assert_eq!(f.code(), 11200);
}

#[tokio::test]
async fn json_answer_is_12300_invalid_content_type() {
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Raw(200, "application/json", "{\"ok\":true}".into()),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 12300);
    assert!(f.to_string().contains("application/json"), "{f}");
}

#[tokio::test]
async fn malformed_xml_is_12100_with_its_line() {
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml(
                "<Response>\n<Say>a</Say>\n<Redirect>/x?a=1&b=2</Redirect>\n</Response>".into(),
            ),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 12100);
    assert_eq!(f.step(), "twiml");
    assert!(f.to_string().contains("line 3"), "{f}");
}

#[tokio::test]
async fn unknown_verb_is_12200_naming_element_and_line() {
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml("<Response>\n  <Say>hi</Say>\n  <Speak>hi</Speak>\n</Response>".into()),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    let f = res.report.failures[0].to_string();
    assert_eq!(res.report.failures[0].code(), 12200);
    assert!(f.contains("Speak") && f.contains("line 3"), "{f}");
}

#[tokio::test]
async fn fallback_url_gets_error_code_and_continues_the_call() {
    let app = TestApp::start(
        vec![
            ("/voice", Reply::Raw(500, "text/plain", "down".into())),
            ("/fallback", twiml("<Hangup/>")),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |c| {
        c.fallback_url = Some(app.url("/fallback"))
    })
    .await;
    assert_eq!(res.report.status.as_str(), "completed");
    assert_eq!(res.report.end_reason, "<Hangup>");
    let http = app.http();
    assert_eq!(http[1].uri, "/fallback");
    assert_eq!(param(&http[1], "ErrorCode"), Some("11200"));
    assert_eq!(
        param(&http[1], "ErrorUrl"),
        Some(app.url("/voice").as_str())
    );
    // The voice URL's failure is still reported.
    assert_eq!(res.report.failures.len(), 1);
}

#[tokio::test]
async fn refused_upgrade_is_31920_and_twiml_continues() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/refuse"/></Connect><Say>after</Say>"#),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    let f = &res.report.failures[0];
    assert!(
        matches!(f, Failure::StreamUpgradeRefused { status: 404, .. }),
        "{f:?}"
    );
    assert_eq!(f.code(), 31920);
    assert!(f.to_string().contains("refused with HTTP 404"), "{f}");
    assert_eq!(res.report.end_reason, "end of TwiML");
    assert!(
        res.report.timeline.iter().any(
            |e| matches!(&e.kind, dialtone_call::EventKind::Verb { verb, .. } if verb == "Say")
        )
    );
}

#[tokio::test]
async fn unreachable_stream_is_reported() {
    let port = closed_port().await;
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml(format!(
                r#"<Response><Connect><Stream url="ws://127.0.0.1:{port}/m"/></Connect></Response>"#
            )),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.step(), "stream_connect");
    assert!(f.to_string().to_lowercase().contains("refused"), "{f}");
}

#[tokio::test]
async fn dropped_socket_without_close_is_31903() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/media"/></Connect>"#),
        )],
        WsScript::DropAfter { frames: 5 },
    )
    .await;
    let res = call(&app.url("/voice"), 2000, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 31903, "{f:?}");
    assert_eq!(res.report.streams[0].closed_by, "dropped");
}

#[tokio::test]
async fn silent_app_fails_with_no_audio_back() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/media"/></Connect>"#),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 800, |c| {
        c.no_audio_timeout = Some(Duration::from_millis(500))
    })
    .await;
    assert_eq!(res.report.status.as_str(), "completed");
    let f = &res.report.failures[0];
    assert_eq!(f.step(), "app_audio");
    assert!(f.to_string().contains("no audio back"), "{f}");
}

#[tokio::test]
async fn oversized_twiml_is_11750() {
    let big = format!("<Response><Say>{}</Say></Response>", "word ".repeat(20_000));
    let app = TestApp::start(vec![("/voice", Reply::Twiml(big))], WsScript::Silent).await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    assert_eq!(
        res.report.failures[0].code(),
        11750,
        "{:?}",
        res.report.failures
    );
}

#[tokio::test]
async fn caller_still_hangs_up_when_the_first_stream_was_refused() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(
                r#"<Connect><Stream url="{ws}/refuse"/></Connect><Connect><Stream url="{ws}/media"/></Connect><Pause length="30"/>"#,
            ),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 500, |_| {}).await;
    assert!(
        res.report.end_reason.contains("caller hung up"),
        "{}",
        res.report.end_reason
    );
    assert!(res.report.duration_ms < 5000.0);
    assert_eq!(res.report.streams.len(), 2);
    assert_eq!(res.report.streams[0].closed_by, "never_opened");
    assert_eq!(res.report.streams[1].closed_by, "dialtone");
}

#[tokio::test]
async fn https_to_a_plain_http_app_says_it_did_not_answer_with_tls() {
    let app = TestApp::start(vec![], WsScript::Silent).await;
    let https = app.url("/voice").replace("http://", "https://");
    let res = call(&https, 100, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 11205);
    assert!(f.to_string().contains("did not answer with TLS"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_stops_reading_is_found_stalled_within_seconds() {
    // An app that upgrades, then never reads its socket again: its buffers fill and the
    // writes block. dialtone's small socket send buffer makes that show in seconds, not
    // after minutes of filling the kernel's default loopback buffer.
    // A small receive buffer, so the test does not depend on the host's tcp_rmem default.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            if let Ok(ws) = tokio_tungstenite::accept_async(sock).await {
                held.push(ws);
            }
        }
    });
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml(format!(
                r#"<Response><Connect><Stream url="ws://{addr}/media"/></Connect></Response>"#
            )),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 60_000, |c| {
        c.max_duration = Duration::from_secs(60)
    })
    .await;
    let f = &res.report.failures[0];
    assert!(matches!(f, Failure::StreamStalled { .. }), "{f:?}");
    assert_eq!(res.report.streams[0].closed_by, "stalled");
    // Stalled long before the 60 s of audio ran out: at most ~20 s of frames went out.
    assert!(
        res.report.streams[0].frames_sent < 1000,
        "{}",
        res.report.streams[0].frames_sent
    );
}
