//! Real TLS on loopback with a certificate the test's own CA issues: requests and
//! WebSockets through the tunnel table, and certificate errors in words.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get, post};
use dialtone_net::testing::{TestCa, TlsListener, Validity};
use dialtone_net::{HttpError, Net, Request, SocketOptions, TlsOptions, Tunnels, WsError};
use futures_util::StreamExt;

fn headers_text(h: &HeaderMap) -> String {
    [
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-twilio-signature",
    ]
    .iter()
    .map(|n| {
        format!(
            "{n}={}",
            h.get(*n).and_then(|v| v.to_str().ok()).unwrap_or("-")
        )
    })
    .collect::<Vec<_>>()
    .join(" ")
}

/// An app serving TLS on loopback with a certificate for `names`.
async fn tls_app(ca: &TestCa, names: &[&str], validity: Validity) -> u16 {
    let listener = TlsListener::bind(ca.server_config(names, validity)).await;
    let port = listener.addr().port();
    let app = axum::Router::new()
        .route(
            "/voice",
            post(|h: HeaderMap| async move { headers_text(&h) }),
        )
        .route(
            "/moved",
            post(|| async { Redirect::to("https://bot.example.test/voice") }),
        )
        .route(
            "/ws",
            any(|h: HeaderMap, ws: WebSocketUpgrade| async move {
                let seen = headers_text(&h);
                ws.on_upgrade(move |mut s| async move {
                    let _ = s.send(Message::Text(seen.into())).await;
                })
                .into_response()
            }),
        )
        .route("/health", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn post_to(url: &str) -> Request {
    Request {
        method: http::Method::POST,
        url: url::Url::parse(url).unwrap(),
        headers: vec![("X-Twilio-Signature", "sig".into())],
        body: Some("CallSid=CA1".into()),
        timeout: Duration::from_secs(5),
    }
}

fn tunnels(spec: &str) -> Tunnels {
    Tunnels::new(vec![spec.parse().unwrap()])
}

#[tokio::test]
async fn tunnelled_https_request_names_the_public_host_and_follows_public_redirects() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let port = tls_app(&ca, &["localhost"], Validity::Current).await;
    let net = Net::new(&TlsOptions {
        cacerts: vec![ca.write_pem(dir.path())],
        insecure: false,
    })
    .unwrap();
    let table = tunnels(&format!(
        "https://bot.example.test=https://localhost:{port}"
    ));

    let resp = net
        .send(&table, post_to("https://bot.example.test/voice"))
        .await
        .unwrap();
    assert_eq!(resp.route.via().unwrap(), format!("localhost:{port}"));
    let body = resp.inner.text().await.unwrap();
    assert_eq!(
        body,
        "host=bot.example.test x-forwarded-for=54.172.60.1 x-forwarded-proto=https \
         x-forwarded-host=bot.example.test x-twilio-signature=sig"
    );

    // The app redirects to its public URL: followed through the tunnel, POST becomes GET…
    // and GET /voice is not routed, so the 405 proves the hop went to the local app.
    let resp = net
        .send(&table, post_to("https://bot.example.test/moved"))
        .await
        .unwrap();
    assert_eq!(resp.redirects, 1);
    assert_eq!(resp.route.public.as_str(), "https://bot.example.test/voice");
    assert_eq!(resp.inner.status().as_u16(), 405);
}

#[tokio::test]
async fn tunnelled_wss_upgrade_goes_to_the_local_tls_port() {
    let ca = TestCa::new();
    let port = tls_app(&ca, &["127.0.0.1"], Validity::Current).await;
    let net = Net::new(&TlsOptions {
        cacerts: vec![ca.write_pem(tempfile::tempdir().unwrap().path())],
        insecure: false,
    })
    .unwrap();
    let table = tunnels(&format!(
        "https://bot.example.test=https://127.0.0.1:{port}"
    ));
    let (mut ws, route) = net
        .connect_ws(
            &table,
            "wss://bot.example.test/ws",
            &[("X-Twilio-Signature", "s".into())],
            SocketOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(route.connect.as_str(), format!("wss://127.0.0.1:{port}/ws"));
    let first = ws.next().await.unwrap().unwrap();
    assert_eq!(
        first.into_text().unwrap().as_str(),
        "host=bot.example.test x-forwarded-for=54.172.60.1 x-forwarded-proto=https \
         x-forwarded-host=bot.example.test x-twilio-signature=s"
    );
    ws.close(None).await.ok();
}

#[tokio::test]
async fn certificate_problems_are_named() {
    let ca = TestCa::new();
    let good = tls_app(&ca, &["localhost"], Validity::Current).await;
    let expired = tls_app(&ca, &["localhost"], Validity::Expired).await;
    let trusted = Net::new(&TlsOptions {
        cacerts: vec![ca.write_pem(tempfile::tempdir().unwrap().path())],
        insecure: false,
    })
    .unwrap();
    let none = Tunnels::default();
    let err = |r: Result<dialtone_net::Response, HttpError>| match r {
        Err(HttpError::Unreachable(words)) => words,
        other => panic!("expected a TLS failure, got {other:?}"),
    };

    // Unknown issuer: the system roots do not know the test CA.
    let words = err(Net::system()
        .send(&none, post_to(&format!("https://localhost:{good}/voice")))
        .await);
    assert!(
        words.contains("unknown issuer") && words.contains("--cacert"),
        "{words}"
    );

    // Wrong host: the certificate names localhost, not 127.0.0.1.
    let words = err(trusted
        .send(&none, post_to(&format!("https://127.0.0.1:{good}/voice")))
        .await);
    assert!(words.contains("not valid for host 127.0.0.1"), "{words}");

    let words = err(trusted
        .send(
            &none,
            post_to(&format!("https://localhost:{expired}/voice")),
        )
        .await);
    assert!(words.contains("expired"), "{words}");

    // The same failures on a WebSocket.
    match Net::system()
        .connect_ws(
            &none,
            &format!("wss://localhost:{good}/ws"),
            &[],
            SocketOptions::default(),
        )
        .await
    {
        Err(WsError::Connect(words)) => assert!(words.contains("unknown issuer"), "{words}"),
        other => panic!("expected a TLS failure, got {:?}", other.map(|_| ())),
    }

    // --insecure accepts all of them.
    let insecure = Net::new(&TlsOptions {
        cacerts: vec![],
        insecure: true,
    })
    .unwrap();
    for port in [good, expired] {
        let resp = insecure
            .send(&none, post_to(&format!("https://127.0.0.1:{port}/voice")))
            .await
            .unwrap();
        assert_eq!(resp.inner.status().as_u16(), 200);
    }
}

#[test]
fn bad_cacert_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = Net::new(&TlsOptions {
        cacerts: vec![junk],
        insecure: false,
    })
    .unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE block"), "{e}");
    let e = Net::new(&TlsOptions {
        cacerts: vec![dir.path().join("missing.pem")],
        insecure: false,
    })
    .unwrap_err();
    assert!(e.to_string().starts_with("--cacert"), "{e}");
}
