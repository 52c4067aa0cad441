//! `<Start><Transcription>` against a real app on a loopback port: the `statusCallbackUrl`
//! events in order (started, results per track in time order, stopped), Twilio's parameters,
//! signed; the caller's words from its turns and the app's `<Say>` text; partial results
//! that grow; finals no sooner than the speech's end plus the recognition delay; `<Stop>`;
//! a callback URL that fails.

mod common;

use std::time::Duration;

use common::{Reply, Seen, TestApp, WsScript, call, param};
use dialtone_call::report::EventKind;
use dialtone_call::transcription::TranscriptionEvent;
use dialtone_call::{CallResult, Turn};
use dialtone_protocol::signing;

const TOKEN: &str = "transcription-test-token";
/// The recognizer's delay from the end of speech to its final result (the default).
const DELAY_MS: u64 = 500;

fn turn(start_ms: u32, end_ms: u32, text: &str) -> Turn {
    Turn {
        start_ms,
        end_ms,
        text: text.into(),
    }
}

/// Places a call to `twiml` (at `/voice`) with these caller turns, 3 s of caller audio and a
/// 300 ms tail; returns the app and the result.
async fn run(twiml: &str, turns: Vec<Turn>) -> (TestApp, CallResult) {
    let app = TestApp::start(
        vec![
            ("/voice", Reply::Twiml(twiml.into())),
            ("/tx", Reply::Raw(204, "text/plain", String::new())),
            ("/tx2", Reply::Raw(200, "text/plain", "ok".into())),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 3000, |cfg| {
        cfg.auth_token = TOKEN.into();
        cfg.caller.turns = turns;
        cfg.seed = Some(7);
    })
    .await;
    (app, res)
}

/// The requests to `path`, in arrival order.
fn callbacks(app: &TestApp, path: &str) -> Vec<Seen> {
    app.http()
        .into_iter()
        .filter(|s| s.uri.split('?').next() == Some(path))
        .collect()
}

fn event(s: &Seen) -> &str {
    param(s, "TranscriptionEvent").unwrap_or("")
}

/// (track, transcript, final) of a `transcription-content` event.
fn content(s: &Seen) -> (String, String, bool) {
    let data: serde_json::Value =
        serde_json::from_str(param(s, "TranscriptionData").expect("TranscriptionData")).unwrap();
    (
        param(s, "Track").unwrap().to_owned(),
        data["transcript"].as_str().unwrap().to_owned(),
        match param(s, "Final") {
            Some("true") => true,
            Some("false") => false,
            other => panic!("Final={other:?}"),
        },
    )
}

/// Final transcripts of one track, in order.
fn finals(seen: &[Seen], track: &str) -> Vec<String> {
    seen.iter()
        .filter(|s| event(s) == "transcription-content")
        .map(content)
        .filter(|(t, _, f)| t == track && *f)
        .map(|(_, text, _)| text)
        .collect()
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[tokio::test]
async fn both_tracks_in_order_signed_with_partials_that_grow() {
    let twiml = r#"<Response><Start><Transcription name="live" partialResults="true" statusCallbackUrl="/tx"/></Start><Say>hello caller</Say><Pause length="4"/></Response>"#;
    let turns = vec![
        turn(1000, 1800, "pay my bill"),
        turn(2000, 2600, "thank you"),
    ];
    let (app, res) = run(twiml, turns).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    assert!(r.end_reason.contains("caller hung up"), "{}", r.end_reason);
    let seen = callbacks(&app, "/tx");
    let events: Vec<&str> = seen.iter().map(event).collect();
    assert_eq!(events.first(), Some(&"transcription-started"), "{events:?}");
    assert_eq!(events.last(), Some(&"transcription-stopped"), "{events:?}");
    assert!(
        events[1..events.len() - 1]
            .iter()
            .all(|e| *e == "transcription-content"),
        "{events:?}"
    );

    // Twilio's parameters on every event, one transcription SID, numbered in order, signed.
    let sid = param(&seen[0], "TranscriptionSid").unwrap().to_owned();
    assert!(dialtone_protocol::sid::is_valid("GT", &sid), "{sid}");
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.method, "POST");
        assert_eq!(param(s, "TranscriptionSid"), Some(sid.as_str()));
        assert_eq!(param(s, "CallSid"), Some(r.call_sid.as_str()));
        assert_eq!(
            param(s, "AccountSid"),
            Some(dialtone_call::DEFAULT_ACCOUNT_SID)
        );
        assert_eq!(param(s, "SequenceId"), Some((i + 1).to_string().as_str()));
        let stamp = param(s, "Timestamp").unwrap();
        assert!(
            stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
        let sig = s.headers["x-twilio-signature"].to_str().unwrap();
        assert!(signing::validate(TOKEN, &app.url("/tx"), &s.params, sig));
    }
    assert_eq!(param(&seen[0], "ProviderName"), Some("Google"));
    assert_eq!(param(&seen[0], "LanguageCode"), Some("en-US"));
    assert_eq!(param(&seen[0], "Track"), Some("both_tracks"));
    assert_eq!(param(&seen[0], "PartialResults"), Some("true"));
    assert_eq!(param(&seen[1], "LanguageCode"), Some("en-US"));

    // The words: the caller's turns on the inbound track, the <Say> on the outbound one.
    assert_eq!(finals(&seen, "inbound_track"), ["pay my bill", "thank you"]);
    assert_eq!(finals(&seen, "outbound_track"), ["hello caller"]);
    let final_data = seen
        .iter()
        .find(|s| event(s) == "transcription-content" && param(s, "Final") == Some("true"))
        .unwrap();
    let data: serde_json::Value =
        serde_json::from_str(param(final_data, "TranscriptionData").unwrap()).unwrap();
    assert!(data["confidence"].as_f64().unwrap() > 0.5, "{data}");

    // Partials grow word by word, each a prefix of its utterance's final.
    for track in ["inbound_track", "outbound_track"] {
        let mut last = String::new();
        for (t, text, fin) in seen
            .iter()
            .filter(|s| event(s) == "transcription-content")
            .map(content)
        {
            if t != track {
                continue;
            }
            if fin {
                assert!(text.starts_with(&last), "{last:?} then final {text:?}");
                last.clear();
            } else {
                assert!(
                    text.starts_with(&last) && text.len() > last.len(),
                    "{last:?} then partial {text:?}"
                );
                last = text;
            }
        }
    }
    let partials: Vec<(String, String, bool)> = seen
        .iter()
        .filter(|s| event(s) == "transcription-content")
        .map(content)
        .filter(|c| !c.2)
        .collect();
    assert!(
        partials.contains(&("inbound_track".into(), "pay my".into(), false)),
        "{partials:?}"
    );
    assert!(
        partials.contains(&("outbound_track".into(), "hello".into(), false)),
        "{partials:?}"
    );

    // Timing: each caller final comes no sooner than its turn's end plus the delay, counted
    // from the start (the caller starts talking when the transcription first listens).
    let t0 = seen[0].at;
    for (text, end_ms) in [("pay my bill", 1800), ("thank you", 2600)] {
        let s = seen
            .iter()
            .find(|s| {
                event(s) == "transcription-content" && param(s, "Final") == Some("true") && {
                    content(s).1 == text
                }
            })
            .unwrap();
        let after = ms(s.at - t0);
        // The started event itself took a few ms to arrive: allow for it below, not above.
        assert!(after + 30 >= end_ms + DELAY_MS, "{text:?} after {after} ms");
        assert!(after < end_ms + DELAY_MS + 400, "{text:?} after {after} ms");
    }

    // The report and the timeline.
    let t = &r.transcriptions;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].sid, sid);
    assert_eq!(t[0].name.as_deref(), Some("live"));
    assert_eq!(t[0].stopped_by, "call end");
    assert_eq!(t[0].final_count, 3);
    assert_eq!(t[0].partial_count as usize, partials.len());
    let steps: Vec<&TranscriptionEvent> = r
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Transcription(t) => Some(t),
            _ => None,
        })
        .collect();
    assert!(matches!(steps[0], TranscriptionEvent::Started { .. }));
    assert!(matches!(
        steps.last(),
        Some(TranscriptionEvent::Stopped { finals: 3, .. })
    ));
    let finals_on_timeline = steps
        .iter()
        .filter(|s| matches!(s, TranscriptionEvent::Final { after_speech_ms, .. } if *after_speech_ms >= DELAY_MS as f64))
        .count();
    assert_eq!(finals_on_timeline, 3);
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(
        json["transcriptions"][0]["finals"][0]["track"],
        "outbound_track"
    );
    assert_eq!(
        json["transcriptions"][0]["finals"][0]["transcript"],
        "hello caller"
    );
}

#[tokio::test]
async fn stop_by_name_ends_it_and_later_words_go_unheard() {
    let twiml = r#"<Response><Start><Transcription name="t1" track="inbound_track" statusCallbackUrl="/tx"/></Start><Pause length="1"/><Stop><Transcription name="other"/></Stop><Pause length="1"/><Stop><Transcription name="t1"/></Stop><Pause length="2"/></Response>"#;
    let turns = vec![
        turn(300, 1200, "first words here"),
        turn(2600, 2900, "never sent"),
    ];
    let (app, res) = run(twiml, turns).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    let seen = callbacks(&app, "/tx");
    let events: Vec<&str> = seen.iter().map(event).collect();
    assert_eq!(
        events,
        [
            "transcription-started",
            "transcription-content",
            "transcription-stopped"
        ]
    );
    assert_eq!(
        content(&seen[1]),
        ("inbound_track".into(), "first words here".into(), true)
    );
    // Stopped by the <Stop> two seconds in, not at the call's end (about 3.3 s).
    let stopped_after = ms(seen[2].at - seen[0].at);
    assert!(
        (1900..2600).contains(&stopped_after),
        "stopped after {stopped_after} ms"
    );
    assert_eq!(r.transcriptions[0].stopped_by, "<Stop>");
    assert_eq!(r.transcriptions[0].final_count, 1);
}

#[tokio::test]
async fn the_outbound_track_transcribes_each_say() {
    let twiml = r#"<Response><Start><Transcription track="outbound_track" statusCallbackUrl="/tx" statusCallbackMethod="GET"/></Start><Say>one two three</Say><Say loop="2">again</Say><Pause length="3"/></Response>"#;
    let (app, res) = run(twiml, vec![turn(100, 400, "caller talks")]).await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let seen = callbacks(&app, "/tx");
    assert!(seen.iter().all(|s| s.method == "GET"));
    for s in &seen {
        let sig = s.headers["x-twilio-signature"].to_str().unwrap();
        assert!(
            signing::validate(TOKEN, &app.url(&s.uri), &[], sig),
            "{}",
            s.uri
        );
    }
    assert_eq!(param(&seen[0], "Track"), Some("outbound_track"));
    let contents: Vec<(String, String, bool)> = seen
        .iter()
        .filter(|s| event(s) == "transcription-content")
        .map(content)
        .collect();
    // No partials by default; the caller's words are not on this track.
    assert_eq!(
        contents,
        [
            ("outbound_track".into(), "one two three".into(), true),
            ("outbound_track".into(), "again".into(), true),
            ("outbound_track".into(), "again".into(), true),
        ]
    );
    // Each <Say> is timed over its own duration: 1.2 s of three words, then two 0.5 s loops.
    let t0 = seen[0].at;
    let arrivals: Vec<u64> = seen[1..4].iter().map(|s| ms(s.at - t0)).collect();
    for (got, due) in arrivals
        .iter()
        .zip([1200 + DELAY_MS, 1700 + DELAY_MS, 2200 + DELAY_MS])
    {
        assert!(*got + 30 >= due && *got < due + 400, "{arrivals:?}");
    }
}

#[tokio::test]
async fn a_failing_callback_url_warns_and_loses_nothing_else() {
    let twiml = r#"<Response><Start><Transcription name="bad" track="inbound_track" statusCallbackUrl="/missing"/></Start><Start><Transcription name="good" track="inbound_track" statusCallbackUrl="/tx2"/></Start><Pause length="4"/></Response>"#;
    let (app, res) = run(twiml, vec![turn(500, 1000, "still heard")]).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    let good = callbacks(&app, "/tx2");
    let bad = callbacks(&app, "/missing");
    let events = |seen: &[Seen]| {
        seen.iter()
            .map(event)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let expected = [
        "transcription-started",
        "transcription-content",
        "transcription-stopped",
    ];
    assert_eq!(events(&good), expected);
    // Every event still went to the failing URL, each answered 404.
    assert_eq!(events(&bad), expected);
    assert_eq!(finals(&good, "inbound_track"), ["still heard"]);
    let warnings: Vec<&str> = r
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Transcription(TranscriptionEvent::CallbackFailed { code, message }) => {
                assert_eq!(*code, 94100);
                Some(message.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("/missing") && w.contains("404")),
        "{warnings:?}"
    );
    let text = r
        .timeline
        .iter()
        .find(|e| {
            matches!(
                e.kind,
                EventKind::Transcription(TranscriptionEvent::CallbackFailed { .. })
            )
        })
        .unwrap()
        .kind
        .text();
    assert_eq!((text.step, text.level), ("warning", "warn"));
    assert!(text.words.starts_with("94100 "), "{}", text.words);
    assert_eq!(r.transcriptions.len(), 2);
}

#[tokio::test]
async fn virtual_time_starts_and_stops_with_a_warning() {
    let app = TestApp::start(
        vec![
            (
                "/voice",
                Reply::Twiml(
                    r#"<Response><Start><Transcription statusCallbackUrl="/tx"/></Start><Say>not heard</Say></Response>"#
                        .into(),
                ),
            ),
            ("/tx", Reply::Raw(204, "text/plain", String::new())),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 1000, |cfg| {
        cfg.fast = true;
        cfg.caller.turns = vec![turn(100, 500, "not heard either")];
    })
    .await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let seen = callbacks(&app, "/tx");
    let events: Vec<&str> = seen.iter().map(event).collect();
    assert_eq!(events, ["transcription-started", "transcription-stopped"]);
    assert!(
        res.report
            .warnings
            .iter()
            .any(|(_, w)| w.contains("virtual time")),
        "{:?}",
        res.report.warnings
    );
}
