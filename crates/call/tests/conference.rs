//! `<Dial><Conference>` against a real app on loopback: two callers meet in one room on one
//! engine, each hears the other byte for byte from where that caller had got to, the
//! conference's status callbacks come in order, and each caller's `action` gets
//! `DialCallStatus=answered`. Also: a participant with `endConferenceOnExit` sends the
//! others out, a lone participant waits, and a duplicate label is refused (16025).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::noise;
use common::{Reply, TestApp, WsScript};
use dialtone_audio::FrameSet;
use dialtone_call::{CallConfig, CallResult, Engine};

/// The mixer re-encodes once: a lone speaker passes byte for byte except μ-law's negative
/// zero (0x7F), which comes out as positive zero (0xFF).
fn canonical(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c == 0x7F { 0xFF } else { c })
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn value<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn config(app: &TestApp, path: &str, caller: Arc<FrameSet>, sid: &str) -> CallConfig {
    let mut cfg = CallConfig::new(app.url(path), caller);
    cfg.caller.tail = Duration::from_millis(300);
    cfg.max_duration = Duration::from_secs(30);
    cfg.webhook_timeout = Duration::from_secs(5);
    cfg.no_audio_timeout = None;
    cfg.record = true;
    cfg.call_sid = Some(sid.to_string());
    cfg
}

const ROOM: &str = "<Response><Dial action=\"/done\"><Conference beep=\"false\" \
    statusCallback=\"/events\" statusCallbackEvent=\"start end join leave\">room</Conference>\
    </Dial></Response>";

async fn two_callers(
    a_doc: &str,
    b_doc: &str,
    a_ms: usize,
    b_ms: usize,
) -> (
    TestApp,
    CallResult,
    CallResult,
    Arc<FrameSet>,
    Arc<FrameSet>,
) {
    let app = TestApp::start(
        vec![
            ("/a", Reply::Twiml(a_doc.into())),
            ("/b", Reply::Twiml(b_doc.into())),
            ("/done", Reply::Twiml("<Response/>".into())),
            ("/events", Reply::Raw(200, "text/plain", String::new())),
        ],
        WsScript::Silent,
    )
    .await;
    let (a_voice, b_voice) = (Arc::new(noise(a_ms, 11)), Arc::new(noise(b_ms, 22)));
    let engine = Engine::new();
    let a = engine.place_call(config(&app, "/a", a_voice.clone(), "CAaaaa"), None);
    let b = async {
        // B joins 300 ms after A: A has said 15 frames by then.
        tokio::time::sleep(Duration::from_millis(300)).await;
        engine
            .place_call(config(&app, "/b", b_voice.clone(), "CAbbbb"), None)
            .await
    };
    let (a, b) = tokio::join!(a, b);
    (app, a, b, a_voice, b_voice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_hear_each_other_and_the_callbacks_tell_the_story() {
    let (app, a, b, a_voice, b_voice) = two_callers(ROOM, ROOM, 4000, 3000).await;
    for r in [&a, &b] {
        assert!(r.report.failures.is_empty(), "{:?}", r.report.failures);
        assert_eq!(r.report.dials.len(), 1);
        assert_eq!(r.report.dials[0].to, ["conference:room"]);
    }

    // A hears B from B's first frame (B joined the conference as it started), byte for
    // byte; the room's 20 ms grid need not line up with the call's, so search by byte.
    let a_heard = &a.call_audio.as_ref().unwrap().heard;
    let b_said = canonical(b_voice.mulaw());
    let n = 8000 * 2;
    let at = find(a_heard, &b_said[160..480]).expect("A hears B");
    assert_eq!(&a_heard[at..at + n], &b_said[160..160 + n]);

    // B hears A from where A had got to: about 300 ms in.
    let b_heard = &b.call_audio.as_ref().unwrap().heard;
    let a_said = canonical(a_voice.mulaw());
    let start = find_voiced(b_heard) + 320;
    let from = find(&a_said, &b_heard[start..start + 320]).expect("B hears A");
    assert!(
        (160 * 12..=160 * 30).contains(&from),
        "B first heard A's frame {}",
        from / 160
    );
    assert_eq!(&b_heard[start..start + n], &a_said[from..from + n]);

    // The conference's status callbacks, in order, one conference.
    let http = app.http();
    let events: Vec<_> = http.iter().filter(|s| s.uri == "/events").collect();
    let names: Vec<&str> = events
        .iter()
        .map(|s| value(&s.params, "StatusCallbackEvent").unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "participant-join",
            "participant-join",
            "conference-start",
            "participant-leave",
            "participant-leave",
            "conference-end"
        ]
    );
    let sid = value(&events[0].params, "ConferenceSid").unwrap();
    assert!(sid.starts_with("CF") && sid.len() == 34);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(value(&e.params, "ConferenceSid"), Some(sid));
        assert_eq!(value(&e.params, "FriendlyName"), Some("room"));
        assert_eq!(
            value(&e.params, "SequenceNumber"),
            Some((i + 1).to_string().as_str())
        );
    }
    assert_eq!(value(&events[0].params, "CallSid"), Some("CAaaaa"));
    // B's audio is shorter: B hangs up first.
    assert_eq!(value(&events[3].params, "CallSid"), Some("CAbbbb"));
    assert_eq!(
        value(&events[3].params, "ReasonParticipantLeft"),
        Some("participant_hung_up")
    );
    assert_eq!(
        value(&events[5].params, "ReasonConferenceEnded"),
        Some("last-participant-left")
    );
    assert_eq!(
        value(&events[5].params, "CallSidEndingConference"),
        Some("CAaaaa")
    );

    // Each caller's action: answered, with no DialCallSid/Duration after a conference.
    let done: Vec<_> = http.iter().filter(|s| s.uri == "/done").collect();
    assert_eq!(done.len(), 2);
    for d in done {
        assert_eq!(value(&d.params, "DialCallStatus"), Some("answered"));
        assert_eq!(value(&d.params, "DialBridged"), Some("true"));
        assert_eq!(value(&d.params, "DialCallSid"), None);
    }
}

/// Where audio starts in what a participant heard (before it, the silence of waiting).
fn find_voiced(heard: &[u8]) -> usize {
    heard
        .chunks(160)
        .position(|f| f.iter().any(|&c| c != 0xFF && c != 0x7F))
        .map_or(heard.len(), |i| i * 160)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_leaving_sends_the_others_out() {
    let moderator = "<Response><Dial action=\"/done\"><Conference beep=\"false\" \
        endConferenceOnExit=\"true\" statusCallback=\"/events\" statusCallbackEvent=\"end leave\">\
        room</Conference></Dial></Response>";
    // A (long audio) waits; B (the moderator, short audio) leaves first and ends it.
    let (app, a, _b, _, _) = two_callers(ROOM, moderator, 6000, 1000).await;
    let http = app.http();
    let leaves: Vec<_> = http
        .iter()
        .filter(|s| value(&s.params, "StatusCallbackEvent") == Some("participant-leave"))
        .map(|s| {
            (
                value(&s.params, "CallSid").unwrap().to_string(),
                value(&s.params, "ReasonParticipantLeft")
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        leaves,
        [
            ("CAbbbb".to_string(), "participant_hung_up".to_string()),
            (
                "CAaaaa".to_string(),
                "moderator_ended_conference".to_string()
            )
        ]
    );
    let end = http
        .iter()
        .find(|s| value(&s.params, "StatusCallbackEvent") == Some("conference-end"))
        .unwrap();
    assert_eq!(
        value(&end.params, "ReasonConferenceEnded"),
        Some("participant-with-end-conference-on-exit-left")
    );
    // A was sent out well before its own audio ended, and went on to its action.
    assert!(a.report.dials[0].duration_ms < 4000.0);
    assert!(
        a.report.dials[0]
            .ended_by
            .contains("moderator_ended_conference")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_label_is_refused_with_16025_and_the_call_goes_on() {
    let labelled = "<Response><Dial><Conference beep=\"false\" participantLabel=\"agent\">room\
        </Conference></Dial><Say>not added</Say></Response>";
    let (_app, a, b, _, _) = two_callers(labelled, labelled, 2000, 1000).await;
    assert!(a.report.warnings.is_empty(), "{:?}", a.report.warnings);
    assert!(
        b.report
            .warnings
            .iter()
            .any(|(c, m)| *c == 16025 && m.contains("agent")),
        "{:?}",
        b.report.warnings
    );
    assert!(b.report.dials.is_empty());
}
