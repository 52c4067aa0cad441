//! The REST surface through the router, without a socket: auth, validation errors in
//! Twilio's shape, 404s, numbers, paging. (Real calls over real sockets: `tests/calls.rs`.)

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use dialtone_server::config::{DEFAULT_ACCOUNT_SID as AC, DEFAULT_AUTH_TOKEN};
use dialtone_server::{ServerConfig, Simulator};
use serde_json::Value;
use tower::ServiceExt;

fn sim() -> Simulator {
    let mut config = ServerConfig::default();
    config.host_number("+15005550001", "http://127.0.0.1:9/voice");
    Simulator::new(config, "http://127.0.0.1:2010")
}

fn auth(token: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{AC}:{token}"));
    format!("Basic {b}")
}

async fn call(
    sim: &Simulator,
    method: &str,
    path: &str,
    body: &str,
    token: &str,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, auth(token))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = sim.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn calls_path() -> String {
    format!("/2010-04-01/Accounts/{AC}/Calls.json")
}

#[tokio::test]
async fn wrong_token_is_401_20003() {
    let (status, v) = call(&sim(), "GET", &calls_path(), "", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(v["code"], 20003);
    assert_eq!(v["more_info"], "https://www.twilio.com/docs/errors/20003");
    assert_eq!(v["status"], 401);
}

#[tokio::test]
async fn create_validation_codes() {
    let s = sim();
    let t = DEFAULT_AUTH_TOKEN;
    let cases = [
        ("From=%2B15005550006&Url=http://x/", 21201),
        ("To=%2B15005550001&Url=http://x/", 21213),
        ("To=555&From=%2B15005550006&Url=http://x/", 21211),
        ("To=%2B15005550001&From=%2B15005550006", 21205),
        ("To=%2B15005550001&From=%2B15005550006&Url=nope", 21205),
        (
            "To=%2B15005550001&From=%2B15005550006&Twiml=%3CResponse%3E",
            12100,
        ),
    ];
    for (body, code) in cases {
        let (status, v) = call(&s, "POST", &calls_path(), body, t).await;
        assert_eq!(
            (status.as_u16(), v["code"].as_u64()),
            (400, Some(code)),
            "{body}: {v}"
        );
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn unknown_call_and_route_are_20404() {
    let s = sim();
    let path = format!("/2010-04-01/Accounts/{AC}/Calls/CA00000000000000000000000000000000.json");
    let (status, v) = call(&s, "GET", &path, "", DEFAULT_AUTH_TOKEN).await;
    assert_eq!(status, 404);
    assert_eq!(v["code"], 20404);
    assert_eq!(
        v["message"],
        format!("The requested resource {path} was not found")
    );
    let (status, v) = call(&s, "GET", "/2010-04-01/Nope.json", "", DEFAULT_AUTH_TOKEN).await;
    assert_eq!((status.as_u16(), v["code"].as_u64()), (404, Some(20404)));
}

#[tokio::test]
async fn numbers_create_update_list() {
    let s = sim();
    let t = DEFAULT_AUTH_TOKEN;
    let path = format!("/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json");
    let (status, created) = call(
        &s,
        "POST",
        &path,
        "PhoneNumber=%2B15551230000&VoiceUrl=http://127.0.0.1:3000/voice",
        t,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["sid"].as_str().unwrap().starts_with("PN"));
    assert_eq!(created["voice_method"], "POST");
    let (status, dup) = call(&s, "POST", &path, "PhoneNumber=%2B15551230000", t).await;
    assert_eq!((status.as_u16(), dup["code"].as_u64()), (400, Some(21422)));
    let one = format!(
        "/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{}.json",
        created["sid"].as_str().unwrap()
    );
    let (status, updated) = call(
        &s,
        "POST",
        &one,
        "VoiceUrl=http://127.0.0.1:4000/v&VoiceMethod=GET",
        t,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["voice_url"], "http://127.0.0.1:4000/v");
    assert_eq!(updated["voice_method"], "GET");
    let (_, page) = call(&s, "GET", &format!("{path}?PhoneNumber=555123"), "", t).await;
    assert_eq!(page["incoming_phone_numbers"].as_array().unwrap().len(), 1);
    let (_, all) = call(&s, "GET", &path, "", t).await;
    assert_eq!(all["incoming_phone_numbers"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn queued_call_can_be_canceled_then_not_redirected() {
    // One permit, held by a first call that rings for a minute: the second stays queued.
    let config = ServerConfig {
        max_concurrent_calls: 1,
        ring: std::time::Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let s = Simulator::new(config, "http://127.0.0.1:2010");
    let t = DEFAULT_AUTH_TOKEN;
    let body = "To=%2B15551112222&From=%2B15005550006&Url=http://127.0.0.1:9/voice";
    let (status, first) = call(&s, "POST", &calls_path(), body, t).await;
    assert_eq!(status, 201);
    assert_eq!(first["status"], "queued");
    let (_, second) = call(&s, "POST", &calls_path(), body, t).await;
    let one = format!(
        "/2010-04-01/Accounts/{AC}/Calls/{}.json",
        second["sid"].as_str().unwrap()
    );
    let (status, v) = call(&s, "POST", &one, "Status=canceled", t).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "canceled");
    let (status, v) = call(&s, "POST", &one, "Url=http://127.0.0.1:9/other", t).await;
    assert_eq!((status.as_u16(), v["code"].as_u64()), (400, Some(21220)));
    let (status, _) = call(&s, "DELETE", &one, "", t).await;
    assert_eq!(status, 204);
    let first_path = format!(
        "/2010-04-01/Accounts/{AC}/Calls/{}.json",
        first["sid"].as_str().unwrap()
    );
    let (_, v) = call(&s, "POST", &first_path, "Status=completed", t).await;
    assert_eq!(
        v["status"], "canceled",
        "a ringing call hung up is canceled"
    );
    assert!(s.shutdown(std::time::Duration::from_secs(5)).await);
}

#[tokio::test]
async fn list_pages_have_exactly_twilios_keys() {
    let s = sim();
    let t = DEFAULT_AUTH_TOKEN;
    for _ in 0..3 {
        call(
            &s,
            "POST",
            &calls_path(),
            "To=%2B15551112222&From=%2B15005550006&Url=http://127.0.0.1:9/v",
            t,
        )
        .await;
    }
    let (status, page) = call(&s, "GET", &format!("{}?PageSize=2", calls_path()), "", t).await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = page
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "calls",
            "end",
            "first_page_uri",
            "next_page_uri",
            "page",
            "page_size",
            "previous_page_uri",
            "start",
            "uri"
        ]
    );
    assert_eq!(page["calls"].as_array().unwrap().len(), 2);
    let next = page["next_page_uri"].as_str().unwrap();
    let (_, page2) = call(&s, "GET", next, "", t).await;
    assert_eq!(page2["calls"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_page_uri"], Value::Null);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn ringing_past_timeout_is_no_answer() {
    let config = ServerConfig {
        ring: std::time::Duration::from_secs(30),
        ..ServerConfig::default()
    };
    let s = Simulator::new(config, "http://127.0.0.1:2010");
    let t = DEFAULT_AUTH_TOKEN;
    let body = "To=%2B15551112222&From=%2B15005550006&Url=http://127.0.0.1:9/voice&Timeout=1";
    let (status, created) = call(&s, "POST", &calls_path(), body, t).await;
    assert_eq!(status, 201);
    let one = format!(
        "/2010-04-01/Accounts/{AC}/Calls/{}.json",
        created["sid"].as_str().unwrap()
    );
    let mut last = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        last = call(&s, "GET", &one, "", t).await.1;
        if last["status"] == "no-answer" {
            break;
        }
    }
    assert_eq!(last["status"], "no-answer", "{last}");
    assert_eq!(last["duration"], "0");
    assert!(s.shutdown(std::time::Duration::from_secs(5)).await);
}
