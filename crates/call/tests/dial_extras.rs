//! `<Dial>`'s finer points against a real app on loopback: a `<Number url>` whisper that
//! plays to the callee before the bridge (or hangs up, or gathers the callee's key),
//! `record` in one or two channels with its status callbacks, the ringback a `ringTone`
//! names, and `answerOnBridge` holding the caller's answer until the callee's.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::noise;
use common::{Reply, Seen, TestApp, WsScript, param};
use dialtone_audio::mulaw::SILENCE;
use dialtone_call::dial::{CalleeAnswer, DialEvent, Numbers, SimulatedCallee};
use dialtone_call::recordings::{NewRecording, RecordingStore};
use dialtone_call::{CallConfig, CallResult, Engine, EventKind};
use dialtone_protocol::webhook::CallStatus;

/// Keeps what it is given, as serve's Recordings resource would.
#[derive(Debug, Default)]
struct Kept(Mutex<Vec<NewRecording>>);

impl RecordingStore for Kept {
    fn keep(&self, rec: NewRecording) -> String {
        let url = format!("http://127.0.0.1:9/Recordings/{}", rec.sid);
        self.0.lock().unwrap().push(rec);
        url
    }
}

struct Run {
    result: CallResult,
    app: TestApp,
    kept: Arc<Kept>,
}

impl Run {
    fn requests(&self, path: &str) -> Vec<Seen> {
        self.app
            .http()
            .into_iter()
            .filter(|s| s.uri.split('?').next() == Some(path))
            .collect()
    }

    fn action(&self) -> Seen {
        self.requests("/done").pop().expect("the dial's action")
    }
}

const CALLEE: &str = "+15551234567";

/// A call whose first document is `twiml`, dialing a simulated callee that rings 300 ms and
/// says 1 s of noise (keying `keys` to a whisper); the app serves `routes`.
async fn dial(
    twiml: &str,
    routes: Vec<(&str, Reply)>,
    keys: &str,
    tweak: impl FnOnce(&mut CallConfig, &mut SimulatedCallee),
) -> Run {
    let mut routes = routes;
    routes.push((
        "/done",
        Reply::Twiml("<Response><Hangup/></Response>".into()),
    ));
    routes.push(("/rec", Reply::Twiml(String::new())));
    let app = TestApp::start(routes, WsScript::Silent).await;
    let mut cfg = CallConfig::new(app.url("/voice"), Arc::new(noise(4000, 11)));
    cfg.twiml = Some(twiml.to_string());
    cfg.caller.tail = Duration::from_millis(300);
    cfg.max_duration = Duration::from_secs(20);
    cfg.webhook_timeout = Duration::from_secs(3);
    cfg.no_audio_timeout = None;
    let kept = Arc::new(Kept::default());
    cfg.recordings = Some(kept.clone());
    let mut callee = SimulatedCallee::answering(Arc::new(noise(1000, 3)));
    callee.ring = Duration::from_millis(300);
    callee.tail = Duration::from_millis(200);
    callee.keys = keys.to_string();
    tweak(&mut cfg, &mut callee);
    cfg.directory = Arc::new(Numbers::simulated(callee));
    let result = Engine::new().place_call(cfg, None).await;
    Run { result, app, kept }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// When (ms into the call) the timeline first has an event `pick` likes.
fn first_at(r: &CallResult, pick: impl Fn(&EventKind) -> bool) -> Option<f64> {
    r.report
        .timeline
        .iter()
        .find(|e| pick(&e.kind))
        .map(|e| e.at.as_secs_f64() * 1e3)
}

#[tokio::test]
async fn a_whisper_plays_to_the_callee_then_the_bridge_is_recorded_in_two_channels() {
    let twiml = format!(
        "<Response><Dial action=\"/done\" record=\"record-from-answer-dual\" \
         recordingStatusCallback=\"/rec\" recordingStatusCallbackEvent=\"in-progress completed\">\
         <Number url=\"/whisper\">{CALLEE}</Number></Dial></Response>"
    );
    let routes = vec![(
        "/whisper",
        Reply::Twiml("<Response><Say>You have a call</Say></Response>".into()),
    )];
    let run = dial(&twiml, routes, "", |_, _| {}).await;
    let r = &run.result;
    assert!(r.report.failures.is_empty(), "{:?}", r.report.failures);

    // The whisper is the dialed leg's own request.
    let whisper = run.requests("/whisper");
    assert_eq!(whisper.len(), 1);
    let action = run.action();
    let leg = param(&action, "DialCallSid").unwrap();
    assert_eq!(param(&whisper[0], "CallSid"), Some(leg));
    assert_eq!(
        param(&whisper[0], "ParentCallSid"),
        Some(r.report.call_sid.as_str())
    );
    assert_eq!(param(&whisper[0], "Direction"), Some("outbound-dial"));
    assert_eq!(param(&whisper[0], "CallStatus"), Some("in-progress"));
    assert_eq!(param(&whisper[0], "To"), Some(CALLEE));

    // Bridged only after the whisper's four words (1.6 s) and the 300 ms of ringing.
    assert_eq!(param(&action, "DialCallStatus"), Some("completed"));
    assert_eq!(param(&action, "DialBridged"), Some("true"));
    let answer_ms = r.report.dials[0].answer_ms.unwrap();
    assert!(answer_ms >= 1900.0, "bridged at {answer_ms} ms");

    // The recording: the caller in channel 1, the callee's words in channel 2.
    let kept = run.kept.0.lock().unwrap();
    assert_eq!(kept.len(), 1);
    let rec = &kept[0];
    assert_eq!(rec.channels, 2);
    assert_eq!(rec.call_sid, r.report.call_sid);
    assert_eq!(param(&action, "RecordingSid"), Some(rec.sid.as_str()));
    let url = format!("http://127.0.0.1:9/Recordings/{}", rec.sid);
    assert_eq!(param(&action, "RecordingUrl"), Some(url.as_str()));
    assert_eq!(rec.first.len(), rec.second.len());
    let callee = noise(1000, 3);
    assert_eq!(
        find(&rec.second, &callee.mulaw()[..4000]),
        Some(0),
        "the callee talks from the bridge"
    );
    let caller = noise(4000, 11);
    assert!(
        find(&rec.first, &caller.mulaw()[..800]).is_some(),
        "the caller's own audio is channel 1"
    );
    // Callee audio 1 s + tail 0.2 s.
    let secs = param(&action, "RecordingDuration").unwrap();
    assert_eq!(secs, "2", "{} bytes", rec.first.len());

    // in-progress at the bridge, then completed, each signed with the recording's fields.
    let cbs = run.requests("/rec");
    let statuses: Vec<&str> = cbs
        .iter()
        .map(|s| param(s, "RecordingStatus").unwrap())
        .collect();
    assert_eq!(statuses, ["in-progress", "completed"]);
    for cb in &cbs {
        assert_eq!(param(cb, "RecordingSid"), Some(rec.sid.as_str()));
        assert_eq!(param(cb, "RecordingSource"), Some("DialVerb"));
        assert_eq!(param(cb, "RecordingChannels"), Some("2"));
        assert_eq!(param(cb, "CallSid"), Some(r.report.call_sid.as_str()));
        assert!(cb.headers.contains_key("x-twilio-signature"));
    }
    assert_eq!(param(&cbs[1], "RecordingDuration"), Some("2"));
    assert_eq!(param(&cbs[1], "RecordingUrl"), Some(url.as_str()));
}

/// A whisper that asks the callee to press 1, else hangs up; its wait outlasts the
/// callee's own audio (1 s), which must not hang the callee up.
const SCREEN: &str = "<Response><Gather numDigits=\"1\" timeout=\"4\" action=\"/accepted\">\
                      <Say>Press 1</Say></Gather><Hangup/></Response>";

#[tokio::test]
async fn a_whisper_that_hangs_up_leaves_the_leg_unbridged_and_a_key_accepts() {
    let twiml = format!(
        "<Response><Dial action=\"/done\"><Number url=\"/whisper\">{CALLEE}</Number></Dial>\
         </Response>"
    );
    let routes = || {
        vec![
            ("/whisper", Reply::Twiml(SCREEN.into())),
            ("/accepted", Reply::Twiml("<Response/>".into())),
        ]
    };
    // Nobody presses anything: the whisper hangs up.
    let run = dial(&twiml, routes(), "", |_, _| {}).await;
    let action = run.action();
    assert_eq!(param(&action, "DialCallStatus"), Some("completed"));
    assert_eq!(param(&action, "DialBridged"), Some("false"));
    assert!(run.requests("/accepted").is_empty());
    assert!(
        run.result.report.dials[0].ended_by.contains("<Hangup>"),
        "{}",
        run.result.report.dials[0].ended_by
    );

    // The callee presses 1: the gather's action runs on the leg, then the bridge.
    let run = dial(&twiml, routes(), "1", |_, _| {}).await;
    let accepted = run.requests("/accepted");
    assert_eq!(accepted.len(), 1);
    assert_eq!(param(&accepted[0], "Digits"), Some("1"));
    assert_eq!(param(&accepted[0], "Direction"), Some("outbound-dial"));
    let action = run.action();
    assert_eq!(param(&action, "DialBridged"), Some("true"));
    assert_eq!(param(&action, "DialCallStatus"), Some("completed"));
}

#[tokio::test]
async fn a_whisper_cannot_dial_13201() {
    let twiml = format!(
        "<Response><Dial action=\"/done\"><Number url=\"/whisper\">{CALLEE}</Number></Dial>\
         </Response>"
    );
    let routes = vec![(
        "/whisper",
        Reply::Twiml("<Response><Dial>+15550000000</Dial></Response>".into()),
    )];
    let run = dial(&twiml, routes, "", |_, _| {}).await;
    assert_eq!(param(&run.action(), "DialBridged"), Some("false"));
    let codes: Vec<u16> = run
        .result
        .report
        .failures
        .iter()
        .map(|f| f.code())
        .collect();
    assert_eq!(codes, [13201]);
}

#[tokio::test]
async fn record_from_ringing_holds_the_ring_tone_then_the_callee_mixed_in_one_channel() {
    // The caller is answered first (a <Say>), so it hears the ringback.
    let twiml = format!(
        "<Response><Say>Hi</Say><Dial action=\"/done\" record=\"record-from-ringing\" \
         ringTone=\"uk\">{CALLEE}</Dial></Response>"
    );
    let run = dial(&twiml, Vec::new(), "", |c, _| c.record = true).await;
    let kept = run.kept.0.lock().unwrap();
    assert_eq!(kept.len(), 1, "{:#?}", run.result.report);
    let rec = &kept[0];
    assert_eq!(rec.channels, 1);
    // 300 ms of UK ringback (400+450 Hz), byte for byte, then the callee.
    let uk = dialtone_audio::tones::ringback_cycle("uk");
    assert_eq!(&rec.second[..2000], &uk.mulaw()[..2000]);
    let us = dialtone_audio::tones::ringback_cycle("us");
    assert_ne!(&rec.second[..2000], &us.mulaw()[..2000]);
    let callee = noise(1000, 3);
    let at = find(&rec.second, &callee.mulaw()[..4000]).expect("the callee after the ring");
    assert!((2300..=2800).contains(&at), "answered at byte {at}");
    // The caller is silent while it rings (it talks into the bridge).
    assert!(rec.first[..2000].iter().all(|&b| b == SILENCE));
    // The call's own recording heard the same ringback.
    let heard = &run.result.call_audio.as_ref().unwrap().heard;
    assert!(find(heard, &uk.mulaw()[..1600]).is_some());
}

#[tokio::test]
async fn answer_on_bridge_answers_the_caller_with_the_callee() {
    let twiml = format!(
        "<Response><Dial answerOnBridge=\"true\" action=\"/done\">{CALLEE}</Dial></Response>"
    );
    let run = dial(&twiml, Vec::new(), "", |_, _| {}).await;
    let r = &run.result;
    let answered = first_at(r, |k| matches!(k, EventKind::Answered)).expect("answered");
    let bridged = first_at(r, |k| {
        matches!(k, EventKind::Dial(DialEvent::Answered { .. }))
    })
    .unwrap();
    let ringing = first_at(r, |k| {
        matches!(k, EventKind::Dial(DialEvent::Ringing { .. }))
    })
    .unwrap();
    assert!(
        answered >= ringing + 250.0,
        "answered {answered} ms, rang {ringing} ms"
    );
    assert!(
        answered <= bridged,
        "answered {answered} ms, bridged {bridged} ms"
    );
    assert_eq!(r.report.status, CallStatus::Completed);

    // Without answerOnBridge the caller is answered before the dial rings.
    let plain = format!("<Response><Dial action=\"/done\">{CALLEE}</Dial></Response>");
    let run = dial(&plain, Vec::new(), "", |_, _| {}).await;
    let r = &run.result;
    let answered = first_at(r, |k| matches!(k, EventKind::Answered)).unwrap();
    let ringing = first_at(r, |k| {
        matches!(k, EventKind::Dial(DialEvent::Ringing { .. }))
    })
    .unwrap();
    assert!(answered <= ringing);

    // A busy callee under answerOnBridge: the caller was never answered, and its call
    // ends busy (no action: the document ends).
    let busy = format!("<Response><Dial answerOnBridge=\"true\">{CALLEE}</Dial></Response>");
    let run = dial(&busy, Vec::new(), "", |_, c| c.answer = CalleeAnswer::Busy).await;
    let r = &run.result;
    assert!(first_at(r, |k| matches!(k, EventKind::Answered)).is_none());
    assert_eq!(r.report.status, CallStatus::Busy);

    // ...but a verb after it answers the call.
    let then_say = format!(
        "<Response><Dial answerOnBridge=\"true\">{CALLEE}</Dial><Say>Sorry</Say></Response>"
    );
    let run = dial(&then_say, Vec::new(), "", |_, c| {
        c.answer = CalleeAnswer::Busy
    })
    .await;
    assert!(first_at(&run.result, |k| matches!(k, EventKind::Answered)).is_some());
    assert_eq!(run.result.report.status, CallStatus::Completed);
}

#[tokio::test]
async fn a_redirect_loop_around_a_recorded_dial_keeps_a_bounded_number_of_recordings() {
    // Each pass dials, records the callee's 40 ms and goes on to the next document: a loop
    // an app can fall into. The store gets the first 100; the rest are warned about.
    const PASSES: usize = 104;
    let doc = |next: String| {
        format!(
            "<Response><Dial action=\"{next}\" record=\"record-from-answer\">\
             <Number>{CALLEE}</Number></Dial></Response>"
        )
    };
    let paths: Vec<String> = (1..=PASSES).map(|i| format!("/p{i}")).collect();
    let mut routes: Vec<(&str, Reply)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let next = paths.get(i + 1).cloned().unwrap_or_else(|| "/done".into());
            (p.as_str(), Reply::Twiml(doc(next)))
        })
        .collect();
    routes.push(("/voice", Reply::Twiml(doc("/p1".into()))));
    let run = dial(&doc("/p1".into()), routes, "", |cfg, callee| {
        cfg.caller.tail = Duration::from_secs(120);
        cfg.max_duration = Duration::from_secs(120);
        *callee = SimulatedCallee::answering(Arc::new(noise(40, 3)));
        callee.ring = Duration::from_millis(5);
        callee.tail = Duration::ZERO;
    })
    .await;
    let r = &run.result;
    assert_eq!(run.requests("/done").len(), 1, "every pass ran");
    assert_eq!(run.kept.0.lock().unwrap().len(), 100);
    let not_kept = r
        .report
        .warnings
        .iter()
        .filter(|(_, m)| m.contains("is not kept: this call already made 100 recordings"))
        .count();
    assert_eq!(not_kept, PASSES + 1 - 100, "{:?}", r.report.warnings);
    // Past the limit the action still learns of the recording, without a URL to fetch.
    let last = run.action();
    assert!(param(&last, "RecordingSid").is_some());
    assert_eq!(param(&last, "RecordingUrl"), None);
    let earlier = run.requests("/p100").pop().unwrap();
    assert!(param(&earlier, "RecordingUrl").is_some());
}

#[tokio::test]
async fn a_whispered_party_that_loses_the_race_completes_as_an_answered_call() {
    // Both parties pick up together and hear the same whisper: one is bridged, the other,
    // told `in-progress` already, is hung up and ends completed, never canceled.
    let twiml = format!(
        "<Response><Dial action=\"/done\">\
         <Number url=\"/whisper\" statusCallback=\"/leg\" \
         statusCallbackEvent=\"answered completed\">{CALLEE}</Number>\
         <Number url=\"/whisper\" statusCallback=\"/leg\" \
         statusCallbackEvent=\"answered completed\">+15551234568</Number></Dial></Response>"
    );
    let routes = vec![
        (
            "/whisper",
            Reply::Twiml("<Response><Say>A call for you</Say></Response>".into()),
        ),
        ("/leg", Reply::Twiml(String::new())),
    ];
    let run = dial(&twiml, routes, "", |_, _| {}).await;
    let action = run.action();
    assert_eq!(param(&action, "DialBridged"), Some("true"));
    let legs = run.requests("/leg");
    let mut by_leg: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for l in &legs {
        by_leg
            .entry(param(l, "CallSid").unwrap().to_string())
            .or_default()
            .push(param(l, "CallStatus").unwrap().to_string());
    }
    assert_eq!(by_leg.len(), 2, "{by_leg:?}");
    for (leg, statuses) in &by_leg {
        assert_eq!(statuses, &["in-progress", "completed"], "{leg}: {by_leg:?}");
    }
    // Each leg's CallDuration counts from its pick-up, the whisper (1.6 s) included: the
    // loser's too, though it was never bridged.
    for l in legs
        .iter()
        .filter(|l| param(l, "CallStatus") == Some("completed"))
    {
        let secs: u64 = param(l, "CallDuration").unwrap().parse().unwrap();
        assert!(secs >= 1, "{:?}", l.params);
    }
}
