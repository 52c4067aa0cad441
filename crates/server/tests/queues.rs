//! The Queues and Members REST resources through the router, without a socket: create,
//! fetch, update, list, delete, members, errors in Twilio's shape. (Queues filled by live
//! calls and dequeued: `tests/python/test_queue_official.py`.)

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use dialtone_server::config::{DEFAULT_ACCOUNT_SID as AC, DEFAULT_AUTH_TOKEN};
use dialtone_server::{ServerConfig, Simulator};
use serde_json::Value;
use tower::ServiceExt;

async fn call(sim: &Simulator, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{AC}:{DEFAULT_AUTH_TOKEN}"));
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Basic {b}"))
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

fn path(rest: &str) -> String {
    format!("/2010-04-01/Accounts/{AC}/{rest}")
}

#[tokio::test]
async fn queues_are_created_fetched_updated_listed_and_deleted() {
    let s = Simulator::new(ServerConfig::default(), "http://127.0.0.1:2010");
    let (status, q) = call(&s, "POST", &path("Queues.json"), "FriendlyName=support").await;
    assert_eq!(status, 201, "{q}");
    let sid = q["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("QU") && sid.len() == 34);
    assert_eq!(q["max_size"], 1000);
    assert_eq!(q["current_size"], 0);
    assert_eq!(q["average_wait_time"], 0);
    assert_eq!(q["account_sid"], AC);
    assert_eq!(
        q["uri"],
        format!("/2010-04-01/Accounts/{AC}/Queues/{sid}.json")
    );
    let mut keys: Vec<&String> = q.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "account_sid",
            "average_wait_time",
            "current_size",
            "date_created",
            "date_updated",
            "friendly_name",
            "max_size",
            "sid",
            "uri"
        ]
    );

    // A second queue of the same name, a bad size, no name: 400s in Twilio's shape.
    for body in [
        "FriendlyName=support",
        "FriendlyName=x&MaxSize=0",
        "MaxSize=5",
    ] {
        let (status, e) = call(&s, "POST", &path("Queues.json"), body).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(e["code"].is_u64() && e["message"].is_string(), "{e}");
    }

    let (status, q) = call(
        &s,
        "POST",
        &path(&format!("Queues/{sid}.json")),
        "FriendlyName=sales&MaxSize=5",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (q["friendly_name"].as_str(), q["max_size"].as_u64()),
        (Some("sales"), Some(5))
    );
    let (_, q) = call(&s, "GET", &path(&format!("Queues/{sid}.json")), "").await;
    assert_eq!(q["friendly_name"], "sales");

    let (_, list) = call(&s, "GET", &path("Queues.json?PageSize=1"), "").await;
    assert_eq!(list["queues"][0]["sid"], sid.as_str());
    assert_eq!(list["page_size"], 1);

    let members = path(&format!("Queues/{sid}/Members.json"));
    let (status, m) = call(&s, "GET", &members, "").await;
    assert_eq!(status, 200);
    assert_eq!(m["queue_members"], serde_json::json!([]));
    // Front of an empty queue, a member that is not there, a dequeue without Url.
    let front = path(&format!("Queues/{sid}/Members/Front.json"));
    assert_eq!(call(&s, "GET", &front, "").await.0, 404);
    let other = path(&format!("Queues/{sid}/Members/CA{}.json", "0".repeat(32)));
    assert_eq!(call(&s, "GET", &other, "").await.0, 404);
    assert_eq!(call(&s, "POST", &front, "Method=POST").await.0, 400);
    assert_eq!(
        call(&s, "POST", &front, "Url=http://127.0.0.1:9/x").await.0,
        404
    );

    let one = path(&format!("Queues/{sid}.json"));
    assert_eq!(call(&s, "DELETE", &one, "").await.0, 204);
    let (status, e) = call(&s, "GET", &one, "").await;
    assert_eq!((status.as_u16(), e["code"].as_u64()), (404, Some(20404)));
    assert_eq!(call(&s, "GET", &members, "").await.0, 404);
}

#[tokio::test]
async fn queues_need_the_accounts_credentials() {
    let s = Simulator::new(ServerConfig::default(), "http://127.0.0.1:2010");
    let req = Request::builder()
        .uri(path("Queues.json"))
        .body(Body::empty())
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 401);
}
