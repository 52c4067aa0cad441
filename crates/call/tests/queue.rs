//! Call queues against real apps on loopback: a caller waits in a queue hearing its
//! `waitUrl` until an agent's call dials the queue and both are bridged (each recording
//! holds the other's caller, byte for byte); a full queue; `<Leave>`; a caller hanging up in
//! the queue; a REST dequeue; `<Dial><Queue>` on a missing or empty queue.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::noise;
use common::{Reply, Seen, TestApp, WsScript};
use dialtone_audio::FrameSet;
use dialtone_call::queue::{QueueEvent, Who};
use dialtone_call::{CallConfig, CallResult, CallerAudioStart, Engine, EventKind, Redirect};

fn config(app: &TestApp, path: &str, caller: Arc<FrameSet>) -> CallConfig {
    let mut cfg = CallConfig::new(app.url(path), caller);
    // The caller talks from the answer and hangs up half a second after its audio.
    cfg.caller.start = CallerAudioStart::Answer;
    cfg.caller.tail = Duration::from_millis(500);
    cfg.max_duration = Duration::from_secs(30);
    cfg.webhook_timeout = Duration::from_secs(5);
    cfg.no_audio_timeout = None;
    cfg
}

fn value<'a>(s: &'a Seen, name: &str) -> Option<&'a str> {
    s.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn requests(app: &TestApp, path: &str) -> Vec<Seen> {
    app.http()
        .into_iter()
        .filter(|s| s.uri.split('?').next() == Some(path))
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `heard` holds `source` from some frame on, byte for byte, for at least `min` bytes;
/// returns where in `source` it starts.
fn holds(heard: &[u8], source: &[u8], min: usize) -> usize {
    let (start, from) = (0..source.len() / 160)
        .find_map(|f| find(heard, &source[f * 160..f * 160 + 160]).map(|s| (s, f * 160)))
        .expect("the other caller's audio is in the recording");
    // Byte for byte from there until the bridge ended.
    let n = heard[start..]
        .iter()
        .zip(&source[from..])
        .take_while(|(a, b)| a == b)
        .count();
    assert!(n >= min, "only {n} bytes bridged");
    from
}

fn queue_results(r: &CallResult) -> Vec<&'static str> {
    r.report
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Queue(QueueEvent::Left { result, .. }) => Some(*result),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_dials_the_queue_and_both_callers_hear_each_other() {
    let app = TestApp::start(
        vec![
            (
                "/member",
                Reply::Twiml(
                    "<Response><Enqueue action=\"/member-done\" waitUrl=\"/wait\">support\
                     </Enqueue></Response>"
                        .into(),
                ),
            ),
            (
                "/wait",
                Reply::Twiml("<Response><Pause length=\"1\"/></Response>".into()),
            ),
            (
                "/member-done",
                Reply::Twiml("<Response><Hangup/></Response>".into()),
            ),
            (
                "/agent",
                Reply::Twiml(
                    "<Response><Dial action=\"/agent-done\"><Queue>support</Queue></Dial>\
                     </Response>"
                        .into(),
                ),
            ),
            (
                "/agent-done",
                Reply::Twiml("<Response><Hangup/></Response>".into()),
            ),
        ],
        WsScript::Silent,
    )
    .await;
    let engine = Engine::new();
    let member_audio = Arc::new(noise(7000, 11));
    let agent_audio = Arc::new(noise(3000, 22));
    let mut member = config(&app, "/member", member_audio.clone());
    member.record = true;
    let mut agent = config(&app, "/agent", agent_audio.clone());
    agent.record = true;
    let (m, a) = tokio::join!(engine.place_call(member, None), async {
        tokio::time::sleep(Duration::from_millis(2300)).await;
        engine.place_call(agent, None).await
    });
    assert!(m.report.failures.is_empty(), "{:?}", m.report.failures);
    assert!(a.report.failures.is_empty(), "{:?}", a.report.failures);

    // waitUrl was requested again each time its document ran out, QueueTime growing.
    let waits = requests(&app, "/wait");
    assert!(waits.len() >= 2, "{} waitUrl requests", waits.len());
    let times: Vec<u64> = waits
        .iter()
        .map(|w| value(w, "QueueTime").unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|t| t[1] > t[0]), "{times:?}");
    let queue_sid = value(&waits[0], "QueueSid").unwrap().to_string();
    assert!(queue_sid.starts_with("QU") && queue_sid.len() == 34);
    for w in &waits {
        assert_eq!(value(w, "QueuePosition"), Some("1"));
        assert_eq!(value(w, "CurrentQueueSize"), Some("1"));
        assert_eq!(value(w, "MaxQueueSize"), Some("1000"));
        assert_eq!(value(w, "CallSid"), Some(m.report.call_sid.as_str()));
        assert!(value(w, "AvgQueueTime").is_some());
    }

    // The member's action: bridged, after the bridge ended.
    let done = &requests(&app, "/member-done")[0];
    assert_eq!(value(done, "QueueResult"), Some("bridged"));
    assert_eq!(value(done, "QueueSid"), Some(queue_sid.as_str()));
    let waited: u64 = value(done, "QueueTime").unwrap().parse().unwrap();
    assert!((1..=3).contains(&waited), "QueueTime {waited}");

    // The agent's action: the dial to the queue, DialCallSid the member's call.
    let done = &requests(&app, "/agent-done")[0];
    assert_eq!(value(done, "DialCallStatus"), Some("completed"));
    assert_eq!(value(done, "DialBridged"), Some("true"));
    assert_eq!(value(done, "DialCallSid"), Some(m.report.call_sid.as_str()));
    assert_eq!(value(done, "QueueSid"), Some(queue_sid.as_str()));
    let secs: u64 = value(done, "DialCallDuration").unwrap().parse().unwrap();
    assert!((2..=4).contains(&secs), "DialCallDuration {secs}");
    assert_eq!(queue_results(&m), ["bridged"]);
    assert_eq!(
        a.report.dials[0].leg_sid.as_deref(),
        Some(m.report.call_sid.as_str())
    );

    // Each recording holds the other caller: the agent's from its start (it talks from
    // the bridge's first moments), the member's from where it had got to.
    let m_heard = &m.call_audio.as_ref().expect("recorded").heard;
    let a_heard = &a.call_audio.as_ref().expect("recorded").heard;
    let from = holds(m_heard, agent_audio.mulaw(), 8000 * 2);
    assert!(
        from <= 160 * 25,
        "the agent's audio from frame {}",
        from / 160
    );
    let from = holds(a_heard, member_audio.mulaw(), 8000 * 2);
    assert!(
        (160 * 100..=160 * 150).contains(&from),
        "the member's audio from frame {} (it had talked about 2.3 s)",
        from / 160
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_and_a_caller_hanging_up_leaves() {
    let app = TestApp::start(
        vec![
            (
                "/member",
                Reply::Twiml(
                    "<Response><Enqueue action=\"/done\" waitUrl=\"/wait\">tiny</Enqueue>\
                     </Response>"
                        .into(),
                ),
            ),
            ("/wait", Reply::Twiml("<Response/>".into())),
            (
                "/done",
                Reply::Twiml("<Response><Hangup/></Response>".into()),
            ),
        ],
        WsScript::Silent,
    )
    .await;
    let engine = Engine::new();
    let first = config(&app, "/member", Arc::new(noise(1500, 1)));
    let account = first.account_sid.clone();
    let sid = engine.queues().create(&account, "tiny", 1).unwrap().sid;
    let second = config(&app, "/member", Arc::new(noise(1500, 2)));
    let (a, b) = tokio::join!(engine.place_call(first, None), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        engine.place_call(second, None).await
    });
    assert_eq!(queue_results(&a), ["hangup"]);
    assert_eq!(queue_results(&b), ["queue-full"]);
    let done = requests(&app, "/done");
    let full = done
        .iter()
        .find(|s| value(s, "QueueResult") == Some("queue-full"))
        .unwrap();
    // Never enqueued: no QueueSid, no QueueTime.
    assert_eq!(value(full, "QueueSid"), None);
    assert_eq!(value(full, "CallSid"), Some(b.report.call_sid.as_str()));
    let hung = done
        .iter()
        .find(|s| value(s, "QueueResult") == Some("hangup"))
        .unwrap();
    assert_eq!(value(hung, "QueueSid"), Some(sid.as_str()));
    // An empty waitUrl document is requested about once a second, not in a loop.
    let waits = requests(&app, "/wait").len();
    assert!((1..=4).contains(&waits), "{waits} waitUrl requests in 2 s");
    // The caller that hung up is no longer a member.
    assert!(engine.queues().members(&account, &sid).unwrap().is_empty());
}

#[tokio::test]
async fn leave_goes_on_after_the_enqueue() {
    let app =
        TestApp::start(
            vec![
            (
                "/member",
                Reply::Twiml(
                    "<Response><Enqueue waitUrl=\"/wait\">q</Enqueue><Redirect>/after</Redirect>\
                     </Response>"
                        .into(),
                ),
            ),
            (
                "/wait",
                Reply::Twiml("<Response><Say>hold on</Say><Leave/></Response>".into()),
            ),
            ("/after", Reply::Twiml("<Response><Hangup/></Response>".into())),
        ],
            WsScript::Silent,
        )
        .await;
    let r = Engine::new()
        .place_call(config(&app, "/member", Arc::new(noise(5000, 3))), None)
        .await;
    assert!(r.report.failures.is_empty(), "{:?}", r.report.failures);
    assert_eq!(queue_results(&r), ["leave"]);
    assert_eq!(requests(&app, "/wait").len(), 1);
    assert_eq!(requests(&app, "/after").len(), 1);
    assert_eq!(r.report.end_reason, "<Hangup>");
}

#[tokio::test]
async fn a_rest_dequeue_redirects_the_member() {
    let app = TestApp::start(
        vec![
            (
                "/member",
                Reply::Twiml("<Response><Enqueue action=\"/done\">q</Enqueue></Response>".into()),
            ),
            (
                "/done",
                Reply::Twiml("<Response><Say>never run</Say></Response>".into()),
            ),
            (
                "/dequeued",
                Reply::Twiml("<Response><Hangup/></Response>".into()),
            ),
        ],
        WsScript::Silent,
    )
    .await;
    let engine = Engine::new();
    let cfg = config(&app, "/member", Arc::new(noise(8000, 4)));
    let account = cfg.account_sid.clone();
    let url = app.url("/dequeued");
    let (r, dequeued) = tokio::join!(engine.place_call(cfg, None), async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let q = engine.queues().by_name(&account, "q").unwrap();
        assert_eq!(q.current_size, 1);
        let members = engine.queues().members(&account, &q.sid).unwrap();
        assert_eq!(members[0].position, 1);
        engine.queues().dequeue(
            &account,
            &q.sid,
            &Who::Front,
            Redirect::Url {
                url,
                method: dialtone_call::HttpMethod::Post,
            },
        )
    });
    let member = dequeued.unwrap();
    assert_eq!(member.call_sid, r.report.call_sid);
    assert_eq!(queue_results(&r), ["redirected"]);
    let done = &requests(&app, "/done")[0];
    assert_eq!(value(done, "QueueResult"), Some("redirected"));
    assert_eq!(requests(&app, "/dequeued").len(), 1);
    // The action's answer was not run: the dequeue's TwiML hung up.
    assert_eq!(r.report.end_reason, "<Hangup>");
    assert!(r.report.duration_ms < 4000.0, "{}", r.report.duration_ms);
}

#[tokio::test]
async fn dialing_a_missing_or_empty_queue() {
    let app =
        TestApp::start(
            vec![
            (
                "/agent",
                Reply::Twiml(
                    "<Response><Dial action=\"/done\" timeout=\"1\"><Queue>nobody</Queue></Dial>\
                     </Response>"
                        .into(),
                ),
            ),
            ("/done", Reply::Twiml("<Response><Hangup/></Response>".into())),
        ],
            WsScript::Silent,
        )
        .await;
    let engine = Engine::new();
    let cfg = config(&app, "/agent", Arc::new(noise(5000, 5)));
    let account = cfg.account_sid.clone();
    engine.place_call(cfg.clone(), None).await;
    engine.queues().create(&account, "nobody", 10).unwrap();
    let started = tokio::time::Instant::now();
    engine.place_call(cfg, None).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    let statuses: Vec<String> = requests(&app, "/done")
        .iter()
        .map(|s| value(s, "DialCallStatus").unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["failed", "no-answer"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_url_runs_on_the_member_before_the_bridge() {
    let app = TestApp::start(
        vec![
            (
                "/member",
                Reply::Twiml("<Response><Enqueue>q</Enqueue><Hangup/></Response>".into()),
            ),
            (
                "/agent",
                Reply::Twiml(
                    "<Response><Dial action=\"/done\"><Queue url=\"/whisper\">q</Queue></Dial>\
                     </Response>"
                        .into(),
                ),
            ),
            (
                "/whisper",
                Reply::Twiml("<Response><Say>you are next</Say></Response>".into()),
            ),
            (
                "/done",
                Reply::Twiml("<Response><Hangup/></Response>".into()),
            ),
        ],
        WsScript::Silent,
    )
    .await;
    let engine = Engine::new();
    let member = config(&app, "/member", Arc::new(noise(6000, 6)));
    let agent = config(&app, "/agent", Arc::new(noise(2000, 7)));
    let (m, a) = tokio::join!(engine.place_call(member, None), async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        engine.place_call(agent, None).await
    });
    let whisper = &requests(&app, "/whisper")[0];
    assert_eq!(value(whisper, "CallSid"), Some(m.report.call_sid.as_str()));
    assert_eq!(
        value(whisper, "DequeingCallSid"),
        Some(a.report.call_sid.as_str())
    );
    assert!(value(whisper, "QueueSid").is_some_and(|s| s.starts_with("QU")));
    assert!(value(whisper, "QueueTime").is_some());
    assert_eq!(value(whisper, "QueueResult"), None);
    let done = &requests(&app, "/done")[0];
    assert_eq!(value(done, "DialCallStatus"), Some("completed"));
    // Without an action, the member's document goes on after the bridge: <Hangup>.
    assert_eq!(queue_results(&m), ["bridged"]);
    assert_eq!(m.report.end_reason, "<Hangup>");
    // The whisper was said before the bridge: the agent's Dial answered after it.
    assert!(
        a.report.dials[0].answer_ms.unwrap() >= 1000.0,
        "{:?}",
        a.report.dials[0].answer_ms
    );
}
