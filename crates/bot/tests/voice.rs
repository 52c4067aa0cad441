//! `/voice` and `/health` over a real socket: signature checks, registered callers,
//! and the TwiML the bot answers with.

mod common;

use dialtone_bot::{BotConfig, DEFAULT_AUTH_TOKEN};
use dialtone_protocol::signing;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

fn params(from: &str) -> Vec<(String, String)> {
    [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", CALL_SID),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", from),
        ("To", "+15005550001"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect()
}

fn form(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// POSTs a form to `url`, with `signature` as `X-Twilio-Signature` if given.
async fn post(
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(params));
    if let Some(sig) = signature {
        req = req.header(signing::HEADER, sig);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.expect("body"))
}

#[tokio::test]
async fn signed_post_gets_connect_stream() {
    let bot = common::start(BotConfig::default()).await;
    let url = format!("http://{}/voice", bot.addr);
    let p = params("+15005550006");
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, &url, &p);
    let (status, ctype, body) = post(&url, &p, Some(&sig)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ctype, "text/xml");
    let expected = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>{}</Say>"#,
            r#"<Connect><Stream url="ws://{}/media"><Parameter name="caller" value="+15005550006"/>"#,
            r#"<Parameter name="callSid" value="{}"/></Stream></Connect></Response>"#
        ),
        BotConfig::default().greeting,
        bot.addr,
        CALL_SID
    );
    assert_eq!(body, expected);
}

#[tokio::test]
async fn bad_or_missing_signature_is_403() {
    let bot = common::start(BotConfig::default()).await;
    let url = format!("http://{}/voice", bot.addr);
    let p = params("+15005550006");
    let wrong = signing::signature("another-token", &url, &p);
    for sig in [Some(wrong.as_str()), Some("garbage"), None] {
        let (status, _, body) = post(&url, &p, sig).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body, "invalid X-Twilio-Signature");
    }
    // A correct signature over different parameters (tampered body) is refused too.
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, &url, &p);
    let (status, _, _) = post(&url, &params("+19995550000"), Some(&sig)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unregistered_caller_hears_sorry_and_hangup() {
    let config = BotConfig {
        registered: Some(vec!["+15005550006".into()]),
        ..BotConfig::default()
    };
    let bot = common::start(config).await;
    let url = format!("http://{}/voice", bot.addr);

    let p = params("+14155550100");
    let (status, ctype, body) = post(
        &url,
        &p,
        Some(&signing::signature(DEFAULT_AUTH_TOKEN, &url, &p)),
    )
    .await;
    assert_eq!((status, ctype.as_str()), (StatusCode::OK, "text/xml"));
    assert_eq!(
        body,
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Sorry, this number is not registered.</Say><Hangup/></Response>"#
    );

    let p = params("+15005550006");
    let (_, _, body) = post(
        &url,
        &p,
        Some(&signing::signature(DEFAULT_AUTH_TOKEN, &url, &p)),
    )
    .await;
    assert!(body.contains("<Connect><Stream"), "{body}");
}

#[tokio::test]
async fn signed_get_and_public_url() {
    let config = BotConfig {
        auth_token: "s3cret".into(),
        public_url: Some("https://bot.example.com/".into()),
        greeting: "Tom & Jerry's <line>".into(),
        ..BotConfig::default()
    };
    let bot = common::start(config).await;
    let query = form(&params("+15005550006"));
    // Twilio signs the public URL it called, query included, with no extra params.
    let signed_url = format!("https://bot.example.com/voice?{query}");
    let sig = signing::signature("s3cret", &signed_url, &[]);
    let resp = reqwest::Client::new()
        .get(format!("http://{}/voice?{query}", bot.addr))
        .header(signing::HEADER, sig)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("<Say>Tom &amp; Jerry&apos;s &lt;line&gt;</Say>"),
        "{body}"
    );
    assert!(
        body.contains(r#"<Stream url="wss://bot.example.com/media">"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<Parameter name="callSid" value="CA0123456789abcdef0123456789abcdef"/>"#),
        "{body}"
    );
}

#[tokio::test]
async fn health_is_ok() {
    let bot = common::start(BotConfig::default()).await;
    let resp = reqwest::get(format!("http://{}/health", bot.addr))
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("body"), "ok");
    bot.shutdown.send(()).expect("bot running");
    bot.task.await.expect("join").expect("serve");
}
