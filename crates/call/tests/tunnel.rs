//! The app as deployed: known by a public https:// origin (its tunnel), serving TLS on
//! loopback with a certificate the test's CA issued. dialtone stands in for the tunnel with
//! a `--tunnel` mapping and must send exactly what Twilio sends to the public URL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Reply, TestApp, WsScript, call, param};
use dialtone_call::{Engine, EventKind, Net, TlsOptions, Tunnels};
use dialtone_net::testing::{TestCa, Validity};
use dialtone_protocol::signing;

const TOKEN: &str = dialtone_call::DEFAULT_AUTH_TOKEN;
const PUBLIC: &str = "https://bot.example.test";

fn twiml(body: &str) -> Reply {
    Reply::Twiml(format!("<Response>{body}</Response>"))
}

fn trusting(ca: &TestCa, dir: &std::path::Path) -> Net {
    Net::new(&TlsOptions {
        cacerts: vec![ca.write_pem(dir)],
        insecure: false,
    })
    .unwrap()
}

fn wav_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.wav");
    dialtone_audio::wav::write_8k(&path, &vec![1000i16; 1600]).unwrap();
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn a_tls_app_behind_a_tunnel_gets_what_twilio_sends_to_its_public_url() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_tls(
        vec![
            (
                "/voice",
                // Relative and absolute public URLs both go through the tunnel.
                twiml(&format!(
                    r#"<Play>{PUBLIC}/a.wav</Play><Redirect>/next</Redirect>"#
                )),
            ),
            (
                "/next",
                twiml(r#"<Connect><Stream url="wss://bot.example.test/media"/></Connect>"#),
            ),
            ("/a.wav", Reply::Bytes("audio/wav", wav_bytes())),
        ],
        WsScript::ReplyWithMark {
            chunk_ms: 20,
            n_chunks: 5,
        },
        ca.server_config(&["localhost"], Validity::Current),
    )
    .await;
    let table = Tunnels::new(vec![format!("{PUBLIC}={}", app.base).parse().unwrap()]);
    let mut cfg = dialtone_call::CallConfig::new(format!("{PUBLIC}/voice"), common::tone(300));
    cfg.caller.tail = Duration::from_millis(300);
    cfg.max_duration = Duration::from_secs(20);
    cfg.no_audio_timeout = None;
    cfg.tunnels = Arc::new(table);
    let res = Engine::with_net(trusting(&ca, dir.path()))
        .place_call(cfg, None)
        .await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);

    // Every HTTP request: Host and forwarding headers of the public origin, and a
    // signature the app validates against its public URL.
    let http = app.http();
    let uris: Vec<&str> = http.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(uris, ["/voice", "/a.wav", "/next"]);
    for seen in &http {
        assert_eq!(seen.headers["host"], "bot.example.test");
        assert_eq!(seen.headers["x-forwarded-proto"], "https");
        assert_eq!(seen.headers["x-forwarded-host"], "bot.example.test");
        assert!(seen.headers.contains_key("x-forwarded-for"));
        if seen.method == "POST" {
            let sig = seen.headers["x-twilio-signature"].to_str().unwrap();
            let url = format!("{PUBLIC}{}", seen.uri);
            assert!(
                signing::validate(TOKEN, &url, &seen.params, sig),
                "signature over {url}"
            );
            assert!(param(seen, "CallSid").is_some());
        }
    }
    // The upgrade: to the local TLS port, signed over the wss:// URL as the TwiML wrote it.
    let ws_headers = app.log.lock().unwrap().ws_headers.clone();
    assert_eq!(ws_headers[0]["host"], "bot.example.test");
    let sig = ws_headers[0]["x-twilio-signature"].to_str().unwrap();
    assert!(signing::validate(
        TOKEN,
        "wss://bot.example.test/media",
        &[],
        sig
    ));
    assert_eq!(res.report.streams[0].marks.len(), 1);

    // The timeline shows both addresses.
    let via = format!("localhost:{}", app.authority().rsplit(':').next().unwrap());
    let sent: Vec<_> = res
        .report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WebhookSent { url, via, .. } => Some((url.clone(), via.clone())),
            EventKind::StreamConnecting { url, via, .. } => Some((url.clone(), via.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            (format!("{PUBLIC}/voice"), Some(via.clone())),
            (format!("{PUBLIC}/next"), Some(via.clone())),
            ("wss://bot.example.test/media".to_string(), Some(via)),
        ]
    );
}

#[tokio::test]
async fn a_plain_local_app_behind_an_https_tunnel() {
    // The usual funnel: TLS ends at the tunnel, the app listens on plain http.
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="wss://bot.example.test/media"/></Connect>"#),
        )],
        WsScript::ReplyWithMark {
            chunk_ms: 20,
            n_chunks: 1,
        },
    )
    .await;
    let res = call(&format!("{PUBLIC}/voice"), 300, |c| {
        c.tunnels = Arc::new(Tunnels::new(vec![
            format!("{PUBLIC}={}", app.base).parse().unwrap(),
        ]));
    })
    .await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let ws_headers = app.log.lock().unwrap().ws_headers.clone();
    assert_eq!(ws_headers[0]["host"], "bot.example.test");
    assert_eq!(ws_headers[0]["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn certificate_errors_fail_the_webhook_with_the_problem_named() {
    let ca = TestCa::new();
    let app = TestApp::start_tls(
        vec![("/voice", twiml("<Hangup/>"))],
        WsScript::Silent,
        ca.server_config(&["localhost"], Validity::Current),
    )
    .await;
    // The system roots do not know the test CA.
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.step(), "webhook");
    assert!(f.to_string().contains("unknown issuer"), "{f}");
    assert!(f.to_string().contains("--cacert"), "{f}");

    // Trusted, the same app answers.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = dialtone_call::CallConfig::new(app.url("/voice"), common::tone(100));
    cfg.no_audio_timeout = None;
    let res = Engine::with_net(trusting(&ca, dir.path()))
        .place_call(cfg, None)
        .await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
}
