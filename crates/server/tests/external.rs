//! Calls placed outside the server (`dialtone call`, `dialtone load`), registered through the
//! engine's `CallRegistry` hook: listed with their live status, hung up by the REST update
//! (the engine's handle told, with the update in the reason), refused once ended, and
//! forgotten beyond `history` however many a long load run places.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use base64::Engine as _;
use dialtone_call::{CallConfig, CallEvent, CallRegistry, Engine, EventKind, EventSink};
use dialtone_server::config::{DEFAULT_ACCOUNT_SID as AC, DEFAULT_AUTH_TOKEN};
use dialtone_server::{ServerConfig, Simulator};
use serde_json::Value;
use tower::ServiceExt;

async fn rest(sim: &Simulator, method: &str, path: &str, body: &str) -> (u16, Value) {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{AC}:{DEFAULT_AUTH_TOKEN}"));
    let req = Request::builder()
        .method(method)
        .uri(format!("/2010-04-01/Accounts/{AC}/{path}"))
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = sim.router().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn event(kind: EventKind) -> CallEvent {
    CallEvent {
        at: Duration::ZERO,
        kind,
    }
}

fn answered() -> CallEvent {
    event(EventKind::Answered)
}

fn ended(reason: &str) -> CallEvent {
    event(EventKind::Ended {
        status: "completed",
        reason: reason.into(),
    })
}

/// Registers a call as the engine does before running it; returns its handle and sink.
fn place(engine: &Engine, registry: &dyn CallRegistry) -> (dialtone_call::CallHandle, EventSink) {
    let cfg = CallConfig::new(
        "http://127.0.0.1:9/voice",
        Arc::new(dialtone_audio::FrameSet::silence(0)),
    );
    let prepared = engine.prepare(cfg);
    let sink = registry.register(&prepared.handle(), prepared.config());
    (prepared.handle(), sink)
}

#[tokio::test]
async fn a_registered_call_is_listed_live_and_hung_up_by_a_rest_update() {
    let sim = Simulator::new(ServerConfig::default(), "http://127.0.0.1:2010");
    let registry = sim.external_calls(true);
    let engine = Engine::new();
    let (handle, sink) = place(&engine, &registry);
    let sid = handle.call_sid().to_string();

    let (_, list) = rest(&sim, "GET", "Calls.json", "").await;
    assert_eq!(list["calls"][0]["sid"], sid.as_str());
    assert_eq!(list["calls"][0]["status"], "ringing");
    assert_eq!(list["calls"][0]["direction"], "inbound");
    sink(&answered());
    let (_, call) = rest(&sim, "GET", &format!("Calls/{sid}.json"), "").await;
    assert_eq!(call["status"], "in-progress");
    assert!(call["start_time"].is_string() && call["duration"].is_null());

    let (status, call) = rest(
        &sim,
        "POST",
        &format!("Calls/{sid}.json"),
        "Status=completed",
    )
    .await;
    assert_eq!((status, call["status"].as_str()), (200, Some("completed")));
    assert!(handle.is_ended(), "the engine's handle is told to hang up");
    // The engine ends the call with the handle's reason.
    sink(&ended("hung up through the REST API (Status=completed)"));
    let (_, call) = rest(&sim, "GET", &format!("Calls/{sid}.json"), "").await;
    assert_eq!(call["status"], "completed");
    assert_eq!(call["duration"], "0");
    let (status, err) = rest(
        &sim,
        "POST",
        &format!("Calls/{sid}.json"),
        "Status=completed",
    )
    .await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(21220)));
}

#[tokio::test]
async fn a_rest_redirect_reaches_the_engine_handle() {
    let sim = Simulator::new(ServerConfig::default(), "http://127.0.0.1:2010");
    let registry = sim.external_calls(false);
    let engine = Engine::new();
    let (handle, sink) = place(&engine, &registry);
    sink(&answered());
    let sid = handle.call_sid();
    let body = "Twiml=%3CResponse%3E%3CHangup%2F%3E%3C%2FResponse%3E";
    let (status, call) = rest(&sim, "POST", &format!("Calls/{sid}.json"), body).await;
    assert_eq!(
        (status, call["status"].as_str()),
        (200, Some("in-progress"))
    );
    assert!(!handle.is_ended(), "a redirect does not hang up");
}

#[tokio::test]
async fn a_long_run_keeps_only_history_finished_calls() {
    let config = ServerConfig {
        history: 5,
        ..ServerConfig::default()
    };
    let sim = Simulator::new(config, "http://127.0.0.1:2010");
    let registry = sim.external_calls(false);
    let engine = Engine::new();
    let (live, _live_sink) = place(&engine, &registry);
    for _ in 0..2000 {
        let (_, sink) = place(&engine, &registry);
        sink(&answered());
        sink(&ended("end of TwiML"));
    }
    let (_, list) = rest(&sim, "GET", "Calls.json?PageSize=1000", "").await;
    let calls = list["calls"].as_array().unwrap();
    // The store trims when a call is added: `history` finished calls, the one that ended
    // since the last registration, and the live one.
    assert!(calls.len() <= 7, "{} calls kept", calls.len());
    assert!(calls.iter().any(|c| c["sid"] == live.call_sid()));
}
