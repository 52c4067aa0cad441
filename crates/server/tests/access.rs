//! Who may see what, and how bad requests are refused, through the router without a socket:
//! API keys never reach the Account resource; the web page needs an account's credentials and
//! shows only that account; every error of every route is Twilio's JSON; `Twiml` is held to
//! Twilio's 4000 characters; `client:`/`sip:` endpoints are checked as Twilio checks them.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use dialtone_server::config::FileConfig;
use dialtone_server::{MAX_BODY, MAX_TWIML, MAX_URI, ServerConfig, Simulator};
use serde_json::Value;
use tower::ServiceExt;

const AC1: &str = "AC11111111111111111111111111111111";
const AC2: &str = "AC22222222222222222222222222222222";
const KEY: &str = "SK33333333333333333333333333333333";

fn config(extra: &str) -> ServerConfig {
    let file: FileConfig = toml::from_str(&format!(
        r#"{extra}
        [[accounts]]
        sid = "{AC1}"
        auth_token = "token1"
        api_keys = [{{ sid = "{KEY}", secret = "keysecret" }}]
        [[accounts]]
        sid = "{AC2}"
        auth_token = "token2"
        "#
    ))
    .unwrap();
    ServerConfig::from_file(file, std::path::Path::new(".")).unwrap()
}

fn sim(extra: &str) -> Simulator {
    Simulator::new(config(extra), "http://127.0.0.1:2010")
}

/// A response: status, `WWW-Authenticate`, content type, body.
struct Resp {
    status: StatusCode,
    challenge: Option<String>,
    json: Value,
    text: String,
}

async fn send(
    sim: &Simulator,
    method: &str,
    uri: &str,
    body: String,
    who: Option<(&str, &str)>,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((user, pass)) = who {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        req = req.header(header::AUTHORIZATION, format!("Basic {b}"));
    }
    let resp = sim
        .router()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    Resp {
        status,
        challenge,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Twilio's error body, exactly its four keys, with `status` matching the HTTP status.
fn assert_twilio_error(r: &Resp, status: u16, code: u64, what: &str) {
    assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text);
    let mut keys: Vec<&str> = r
        .json
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not JSON: {:?}", r.text))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "more_info", "status"], "{what}");
    assert_eq!(r.json["code"].as_u64(), Some(code), "{what}: {}", r.text);
    assert_eq!(r.json["status"].as_u64(), Some(u64::from(status)), "{what}");
    assert!(r.json["message"].as_str().is_some_and(|m| !m.is_empty()));
}

fn calls(ac: &str) -> String {
    format!("/2010-04-01/Accounts/{ac}/Calls.json")
}

async fn create(s: &Simulator, ac: &str, token: &str) -> String {
    let body = "To=%2B15551112222&From=%2B15005550006&Twiml=%3CResponse%3E%3CPause%20length%3D%2230%22%2F%3E%3C%2FResponse%3E";
    let r = send(s, "POST", &calls(ac), body.into(), Some((ac, token))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_api_key_never_sees_the_master_token() {
    let s = sim("");
    let account = format!("/2010-04-01/Accounts/{AC1}.json");
    let by_key = send(&s, "GET", &account, String::new(), Some((KEY, "keysecret"))).await;
    // Twilio: standard keys reach "all Twilio API resources, except for API key and Account
    // resources"; the refusal is its 401/20003.
    assert_twilio_error(&by_key, 401, 20003, "API key on the Account resource");
    assert!(!by_key.text.contains("token1"));
    let by_token = send(&s, "GET", &account, String::new(), Some((AC1, "token1"))).await;
    assert_eq!(by_token.status, 200);
    assert_eq!(by_token.json["auth_token"], "token1");
    // Everything else the key reaches is its account's, and never shows a token.
    let sid = create(&s, AC1, "token1").await;
    for path in [
        calls(AC1),
        format!("/2010-04-01/Accounts/{AC1}/Calls/{sid}.json"),
        format!("/2010-04-01/Accounts/{AC1}/IncomingPhoneNumbers.json"),
        format!("/2010-04-01/Accounts/{AC1}/Recordings.json"),
        "/".to_string(),
    ] {
        let r = send(&s, "GET", &path, String::new(), Some((KEY, "keysecret"))).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(
            !r.text.contains("token1") && !r.text.contains("token2"),
            "{path}"
        );
    }
    // The key is its account's only.
    let other = send(
        &s,
        "GET",
        &calls(AC2),
        String::new(),
        Some((KEY, "keysecret")),
    )
    .await;
    assert_twilio_error(&other, 401, 20003, "API key on another account");
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_web_page_needs_credentials_and_shows_only_their_account() {
    let s = sim("");
    let one = create(&s, AC1, "token1").await;
    let two = create(&s, AC2, "token2").await;
    let anon = send(&s, "GET", "/", String::new(), None).await;
    assert_twilio_error(&anon, 401, 20003, "page without credentials");
    assert!(
        anon.challenge.is_some_and(|c| c.starts_with("Basic ")),
        "the browser must prompt"
    );
    assert!(!anon.text.contains(&one) && !anon.text.contains(&two));
    let wrong = send(&s, "GET", "/", String::new(), Some((AC1, "token2"))).await;
    assert_eq!(wrong.status, 401);
    for (who, mine, theirs) in [
        ((AC1, "token1"), &one, &two),
        ((KEY, "keysecret"), &one, &two),
        ((AC2, "token2"), &two, &one),
    ] {
        let page = send(&s, "GET", "/", String::new(), Some(who)).await;
        assert_eq!(page.status, 200);
        assert!(page.text.contains(mine.as_str()), "{} sees its call", who.0);
        assert!(
            !page.text.contains(theirs.as_str()),
            "{} must not see the other's",
            who.0
        );
    }
    // Stream audio: credentials first, and another account's call is not found.
    let audio = format!("/calls/{two}/streams/0/heard.wav");
    let r = send(&s, "GET", &audio, String::new(), None).await;
    assert_twilio_error(&r, 401, 20003, "stream audio without credentials");
    let r = send(&s, "GET", &audio, String::new(), Some((AC1, "token1"))).await;
    assert_twilio_error(&r, 404, 20404, "another account's stream audio");
    // The version counter and health stay open.
    for open in ["/health", "/_dialtone/version"] {
        assert_eq!(send(&s, "GET", open, String::new(), None).await.status, 200);
    }
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn web_auth_off_opens_the_page_to_every_account() {
    let s = sim("web_auth = false");
    let one = create(&s, AC1, "token1").await;
    let two = create(&s, AC2, "token2").await;
    let page = send(&s, "GET", "/", String::new(), None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(&one) && page.text.contains(&two));
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

/// A bad request: method, URI, body, credentials, and the status and code expected.
type Case<'a> = (
    &'a str,
    String,
    String,
    Option<(&'a str, &'a str)>,
    u16,
    u64,
);

#[tokio::test]
async fn every_router_error_is_twilios_json() {
    let s = sim("");
    let ok = Some((AC1, "token1"));
    let long_query = format!("{}?x={}", calls(AC1), "a".repeat(MAX_URI));
    let cases: Vec<Case> = vec![
        (
            "POST",
            calls(AC1),
            "To=".to_string() + &"x".repeat(MAX_BODY),
            ok,
            413,
            20413,
        ),
        ("GET", long_query, String::new(), ok, 414, 20414),
        (
            "GET",
            "/calls/CAx/streams/notanumber/heard.wav".into(),
            String::new(),
            ok,
            404,
            20404,
        ),
        (
            "GET",
            "/calls/CAx/streams/0/heard.wav".into(),
            String::new(),
            None,
            401,
            20003,
        ),
        ("DELETE", "/health".into(), String::new(), None, 405, 20004),
        ("PUT", calls(AC1), String::new(), ok, 405, 20004),
        ("PATCH", "/".into(), String::new(), ok, 405, 20004),
        ("GET", "/nope".into(), String::new(), None, 404, 20404),
        (
            "GET",
            "/audio/..%2F..%2Fetc%2Fpasswd".into(),
            String::new(),
            None,
            404,
            20404,
        ),
        (
            "GET",
            "/audio/missing.wav".into(),
            String::new(),
            None,
            404,
            20404,
        ),
        (
            "GET",
            "/2010-04-01/Nope.json".into(),
            String::new(),
            None,
            404,
            20404,
        ),
        ("GET", calls(AC1), String::new(), None, 401, 20003),
        (
            "GET",
            format!("{}?PageSize=0", calls(AC1)),
            String::new(),
            ok,
            400,
            20002,
        ),
        ("POST", calls(AC1), "%%%=%zz".into(), ok, 400, 21201),
        (
            "GET",
            format!("/2010-04-01/Accounts/{AC1}/Calls/nope"),
            String::new(),
            ok,
            404,
            20404,
        ),
        (
            "GET",
            format!("/2010-04-01/Accounts/{AC1}/Recordings/RE1.wav"),
            String::new(),
            None,
            404,
            20404,
        ),
    ];
    for (method, uri, body, who, status, code) in cases {
        let what = format!("{method} {}", &uri[..uri.len().min(60)]);
        let r = send(&s, method, &uri, body, who).await;
        assert_twilio_error(&r, status, code, &what);
    }
}

#[tokio::test]
async fn twiml_is_held_to_twilios_4000_characters() {
    let s = sim("");
    let ok = Some((AC1, "token1"));
    let doc = |len: usize| {
        let frame = "<Response><Say></Say></Response>";
        format!(
            "<Response><Say>{}</Say></Response>",
            "é".repeat(len - frame.len())
        )
    };
    let body = |t: &str| {
        format!(
            "To=%2B15551112222&From=%2B15005550006&Twiml={}",
            url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        )
    };
    // Characters, not bytes: 4000 two-byte characters are within the limit.
    let at = doc(MAX_TWIML);
    assert_eq!(at.chars().count(), 4000);
    let r = send(&s, "POST", &calls(AC1), body(&at), ok).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let over = send(&s, "POST", &calls(AC1), body(&doc(MAX_TWIML + 1)), ok).await;
    assert_twilio_error(&over, 400, 32018, "Twiml over 4000 characters");
    // The same on a call update.
    let sid = r.json["sid"].as_str().unwrap();
    let one = format!("/2010-04-01/Accounts/{AC1}/Calls/{sid}.json");
    let twiml_only = |t: &str| body(t).split('&').next_back().unwrap().to_string();
    let upd = send(&s, "POST", &one, twiml_only(&doc(MAX_TWIML + 1)), ok).await;
    assert_twilio_error(&upd, 400, 32018, "Twiml update over 4000 characters");
    // Within the limit, too many attributes on one element is a parse failure (12100).
    let attrs: String = (0..150).map(|i| format!(" a{i}=\"\"")).collect();
    let r = send(
        &s,
        "POST",
        &calls(AC1),
        body(&format!("<Response><Say{attrs}>x</Say></Response>")),
        ok,
    )
    .await;
    assert_twilio_error(&r, 400, 12100, "150 attributes");
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn client_and_sip_endpoints_are_checked_as_twilio_does() {
    let s = sim("");
    let ok = Some((AC1, "token1"));
    let post = |to: &str, from: &str| {
        let q = [
            ("To", to),
            ("From", from),
            ("Twiml", "<Response><Hangup/></Response>"),
        ];
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish()
    };
    let long_client = format!("client:{}", "a".repeat(257));
    for bad in [
        "client:al\r\nice",
        "client:<b>x</b>",
        "client:bob smith",
        "client:a\"b",
        long_client.as_str(),
        "sip:bob@ex\r\nample.com",
        "sip:<script>@example.com",
        "sip:bob@example.com\n<x>",
        "sip:example.com",
    ] {
        let r = send(&s, "POST", &calls(AC1), post(bad, "+15005550006"), ok).await;
        assert_twilio_error(&r, 400, 21211, &format!("To={bad:?}"));
        let r = send(&s, "POST", &calls(AC1), post("+15551112222", bad), ok).await;
        assert_twilio_error(&r, 400, 21212, &format!("From={bad:?}"));
    }
    for good in ["client:alice_1", "sip:bob@example.com;transport=tls?X-Id=1"] {
        let r = send(&s, "POST", &calls(AC1), post(good, "+15005550006"), ok).await;
        assert_eq!(r.status, 201, "{good}: {}", r.text);
    }
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

/// `/audio/{file}` serves the operator's folder, but never holds more than any `<Play>`
/// reads: an endless file is refused with Twilio's 20413, not read whole.
#[tokio::test]
async fn served_audio_is_read_under_the_play_bound() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.wav")).unwrap();
    std::fs::write(dir.path().join("small.wav"), b"RIFF").unwrap();
    let s = sim(&format!(
        "audio_dir = {:?}",
        dir.path().display().to_string()
    ));
    let r = send(&s, "GET", "/audio/zero.wav", String::new(), None).await;
    assert_twilio_error(&r, 413, 20413, "endless audio");
    let r = send(&s, "GET", "/audio/small.wav", String::new(), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, "RIFF");
}
