//! The call path end to end against real axum apps on loopback ports: every verb, both
//! stream kinds, mark/clear, DTMF, and each failure class with its message.

mod common;

use std::time::Duration;

use common::{Reply, SharedBuf, TestApp, WsScript, call, events, param};
use dialtone_call::{EventKind, Failure};
use dialtone_protocol::signing;

const TOKEN: &str = dialtone_call::DEFAULT_AUTH_TOKEN;

fn twiml(body: &str) -> Reply {
    Reply::Twiml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n{body}\n</Response>"
    ))
}

fn json(msg: &str) -> serde_json::Value {
    serde_json::from_str(msg).unwrap()
}

#[tokio::test]
async fn connect_stream_speaks_twilio_protocol_and_echoes_marks_after_playout() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/media"><Parameter name="FirstName" value="Jane &quot;J&quot;"/></Stream></Connect>"#),
        )],
        WsScript::ReplyWithMark { chunk_ms: 200, n_chunks: 2 },
    )
    .await;
    let res = call(&app.url("/voice"), 800, |_| {}).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    assert_eq!(r.status.as_str(), "completed");
    assert!(r.end_reason.contains("caller hung up"), "{}", r.end_reason);

    // The webhook: Twilio's parameters, signed over the URL and form body.
    let http = app.http();
    assert_eq!(http.len(), 1);
    let seen = &http[0];
    assert_eq!(seen.method, "POST");
    for name in [
        "AccountSid",
        "ApiVersion",
        "CallSid",
        "CallStatus",
        "Called",
        "Caller",
        "Direction",
        "From",
        "To",
    ] {
        assert!(param(seen, name).is_some(), "missing {name}");
    }
    assert_eq!(param(seen, "CallStatus"), Some("ringing"));
    assert_eq!(param(seen, "Direction"), Some("inbound"));
    assert_eq!(param(seen, "ApiVersion"), Some("2010-04-01"));
    let call_sid = param(seen, "CallSid").unwrap().to_string();
    assert!(dialtone_protocol::sid::is_valid("CA", &call_sid));
    assert_eq!(call_sid, r.call_sid);
    let sig = seen.headers["x-twilio-signature"].to_str().unwrap();
    assert!(signing::validate(
        TOKEN,
        &app.url("/voice"),
        &seen.params,
        sig
    ));
    assert!(!signing::validate(
        "wrong-token",
        &app.url("/voice"),
        &seen.params,
        sig
    ));
    assert_eq!(seen.headers["user-agent"], "TwilioProxy/1.1");
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );

    // The upgrade carries a signature over the stream URL with no params.
    let ws_headers = app.log.lock().unwrap().ws_headers.clone();
    let ws_sig = ws_headers[0]["x-twilio-signature"].to_str().unwrap();
    assert!(signing::validate(
        TOKEN,
        &format!("{}/media", app.base_ws),
        &[],
        ws_sig
    ));

    // The messages: connected, start, media..., mark echo, stop; sequence numbers count
    // every message after connected.
    let ws = app.ws_messages();
    assert_eq!(ws.len(), 1);
    let msgs = &ws[0].1;
    let ev = events(msgs);
    assert_eq!(ev[0], "connected");
    assert_eq!(ev[1], "start");
    assert_eq!(ev.last().unwrap(), "stop");
    assert_eq!(ev.iter().filter(|e| *e == "mark").count(), 1);
    let start = json(&msgs[1]);
    assert_eq!(start["sequenceNumber"], "1");
    assert_eq!(start["start"]["callSid"], call_sid.as_str());
    assert_eq!(start["start"]["tracks"], serde_json::json!(["inbound"]));
    assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");
    assert_eq!(start["start"]["mediaFormat"]["sampleRate"], 8000);
    assert_eq!(
        start["start"]["customParameters"]["FirstName"],
        "Jane \"J\""
    );
    let stream_sid = start["streamSid"].as_str().unwrap().to_string();
    assert!(dialtone_protocol::sid::is_valid("MZ", &stream_sid));
    let mut chunk = 0;
    for (i, m) in msgs.iter().enumerate().skip(1) {
        let v = json(m);
        assert_eq!(
            v["sequenceNumber"],
            (i as u64).to_string(),
            "message {i}: {m}"
        );
        assert_eq!(v["streamSid"], stream_sid.as_str());
        if v["event"] == "media" {
            chunk += 1;
            assert_eq!(v["media"]["chunk"], chunk.to_string());
            assert_eq!(v["media"]["timestamp"], ((chunk - 1) * 20).to_string());
            assert_eq!(v["media"]["track"], "inbound");
            assert_eq!(v["media"]["payload"].as_str().unwrap().len(), 216);
        }
    }
    // 0.8 s of audio + 0.3 s tail at 50 frames/s.
    assert!((50..=65).contains(&chunk), "{chunk} frames");

    // The mark waited for 400 ms of queued audio to play out.
    let s = &r.streams[0];
    assert_eq!(s.media_received, 2);
    assert_eq!(s.audio_received_ms, 400);
    assert_eq!(s.marks.len(), 1);
    // The echo waits until the 400 ms queued from the first audio have played out, however
    // late the mark message itself was processed.
    let at = |pred: &dyn Fn(&EventKind) -> bool| {
        r.timeline
            .iter()
            .find(|e| pred(&e.kind))
            .map(|e| e.at)
            .unwrap()
    };
    let first_audio = at(&|k| matches!(k, EventKind::FirstAudioBack { .. }));
    let echoed = at(&|k| matches!(k, EventKind::MarkEchoed { .. }));
    let played = (echoed - first_audio).as_secs_f64() * 1e3;
    assert!(
        (399.0..600.0).contains(&played),
        "mark echoed {played} ms after first audio"
    );
    assert!(s.marks[0].round_trip_ms.unwrap() > 300.0);
    assert!(!s.marks[0].cleared);
    assert!(s.time_to_first_audio.is_some());
    assert_eq!(s.closed_by, "dialtone");
    assert_eq!(s.frames_sent, chunk);
}

#[tokio::test]
async fn clear_drops_queued_audio_and_echoes_pending_marks_at_once() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/media"/></Connect>"#),
        )],
        WsScript::ClearAfter {
            clear_after: Duration::from_millis(300),
        },
    )
    .await;
    let res = call(&app.url("/voice"), 1200, |_| {}).await;
    let s = &res.report.streams[0];
    assert_eq!(s.clears, 1);
    assert_eq!(s.marks.len(), 2);
    for m in &s.marks {
        assert!(m.cleared, "{m:?}");
        let rtt = m.round_trip_ms.unwrap();
        assert!((250.0..900.0).contains(&rtt), "rtt {rtt}");
    }
    // 2 s queued, about 0.3 s played before the clear.
    assert!(
        (1200..1800).contains(&s.audio_cleared_ms),
        "{}",
        s.audio_cleared_ms
    );
    let ev = events(&app.ws_messages()[0].1);
    let marks: Vec<_> = app.ws_messages()[0]
        .1
        .iter()
        .filter(|m| m.contains("\"event\":\"mark\""))
        .map(|m| json(m)["mark"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(marks, ["a", "b"], "{ev:?}");
}

#[tokio::test]
async fn twiml_continues_after_the_app_closes_a_connect_stream() {
    let app = TestApp::start(
        vec![
            (
                "/voice",
                twiml(r#"<Connect action="/after"><Stream url="{ws}/media"/></Connect><Say>never reached</Say>"#),
            ),
            ("/after", twiml("<Say>Goodbye now</Say><Hangup/>")),
        ],
        WsScript::CloseAfter { frames: 10 },
    )
    .await;
    let res = call(&app.url("/voice"), 3000, |_| {}).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    assert_eq!(r.end_reason, "<Hangup>");
    assert_eq!(r.streams[0].closed_by, "app");
    let http = app.http();
    assert_eq!(http.len(), 2);
    assert_eq!(http[1].uri, "/after");
    assert_eq!(param(&http[1], "CallStatus"), Some("in-progress"));
    let verbs: Vec<_> = r
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Verb { verb, .. } => Some(verb.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(verbs, ["Connect", "Say", "Hangup"]);
    // The app closed: no stop was sent.
    assert!(!events(&app.ws_messages()[0].1).contains(&"stop".to_string()));
}

#[tokio::test]
async fn start_stream_forks_both_tracks_and_stop_ends_it() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(
                r#"<Start><Stream name="fork1" url="{ws}/fork" track="both_tracks" statusCallback="/stream-status"/></Start>
<Say>one two three</Say>
<Stop><Stream name="fork1"/></Stop>
<Pause length="1"/>
<Hangup/>"#,
            ),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 5000, |_| {}).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    assert_eq!(r.end_reason, "<Hangup>");
    let msgs = &app.ws_messages()[0].1;
    let start = json(&msgs[1]);
    assert_eq!(
        start["start"]["tracks"],
        serde_json::json!(["inbound", "outbound"])
    );
    let media: Vec<_> = msgs
        .iter()
        .map(|m| json(m))
        .filter(|v| v["event"] == "media")
        .collect();
    let inbound = media
        .iter()
        .filter(|v| v["media"]["track"] == "inbound")
        .count();
    let outbound: Vec<_> = media
        .iter()
        .filter(|v| v["media"]["track"] == "outbound")
        .collect();
    assert_eq!(inbound, outbound.len());
    // <Say> lasts 1.2 s: the fork stops right after it.
    assert!((50..=80).contains(&inbound), "{inbound}");
    // Outbound carries the <Say> audio, not silence.
    let silence = dialtone_audio::frames::silence_b64();
    assert!(
        outbound
            .iter()
            .filter(|v| v["media"]["payload"] != silence)
            .count()
            > 40
    );
    assert_eq!(outbound[0]["media"]["chunk"], "1");
    assert_eq!(events(msgs).last().unwrap(), "stop");
    assert!(r.duration_ms >= 2200.0, "{}", r.duration_ms);
    // The stream's identity and statusCallback are announced for whoever sends stream
    // status callbacks (the REST server).
    let announced = r.timeline.iter().find_map(|e| match &e.kind {
        EventKind::StreamConnecting {
            name,
            status_callback,
            stream_sid,
            ..
        } => Some((name.clone(), status_callback.clone(), stream_sid.clone())),
        _ => None,
    });
    let (name, cb, sid) = announced.unwrap();
    assert_eq!(name.as_deref(), Some("fork1"));
    assert_eq!(cb, Some(app.url("/stream-status")));
    assert_eq!(json(&msgs[1])["streamSid"], sid.as_str());
}

#[tokio::test]
async fn gather_posts_digits_to_its_action() {
    let app = TestApp::start(
        vec![
            ("/voice", twiml(r#"<Gather action="/digits" numDigits="3"><Say>Enter your code</Say></Gather><Say>no input</Say>"#)),
            ("/digits", twiml(r#"<Gather action="/more" timeout="1"><Pause length="1"/></Gather><Hangup/>"#)),
            ("/more", twiml("<Hangup/>")),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |c| {
        c.caller.gather_digits = "12342#".into()
    })
    .await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let http = app.http();
    assert_eq!(http.len(), 3);
    assert_eq!(http[1].uri, "/digits");
    assert_eq!(param(&http[1], "Digits"), Some("123"));
    assert_eq!(param(&http[1], "FinishedOnKey"), Some(""));
    assert_eq!(param(&http[2], "Digits"), Some("42"));
    assert_eq!(param(&http[2], "FinishedOnKey"), Some("#"));
}

#[tokio::test]
async fn gather_without_input_falls_through_to_the_next_verb() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Gather action="/digits" timeout="1"/><Say>no input</Say>"#),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    assert!(res.report.is_success());
    assert_eq!(app.http().len(), 1, "no request without input");
    assert_eq!(res.report.end_reason, "end of TwiML");
    assert!(res.report.duration_ms >= 1000.0);
}

#[tokio::test]
async fn redirect_follows_relative_urls_with_post_and_get() {
    let app = TestApp::start(
        vec![
            ("/voice", twiml("<Redirect>next</Redirect><Say>never</Say>")),
            (
                "/next",
                twiml(r#"<Redirect method="GET">/third?x=1</Redirect>"#),
            ),
            ("/third", twiml("<Hangup/>")),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    let http = app.http();
    assert_eq!(http.len(), 3);
    assert_eq!(http[1].method, "POST");
    assert_eq!(http[2].method, "GET");
    assert!(http[2].uri.starts_with("/third?x=1&"), "{}", http[2].uri);
    // A GET is signed over the full URL including Twilio's query parameters.
    let sig = http[2].headers["x-twilio-signature"].to_str().unwrap();
    assert!(signing::validate(TOKEN, &app.url(&http[2].uri), &[], sig));
    assert_eq!(param(&http[2], "x"), Some("1"));
    assert_eq!(param(&http[2], "CallStatus"), Some("in-progress"));
}

#[tokio::test]
async fn voice_webhook_with_get_puts_params_in_the_query() {
    let app = TestApp::start(vec![("/voice", twiml("<Hangup/>"))], WsScript::Silent).await;
    let res = call(&app.url("/voice"), 100, |c| {
        c.method = dialtone_call::HttpMethod::Get
    })
    .await;
    assert!(res.report.is_success());
    let seen = &app.http()[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(param(seen, "CallStatus"), Some("ringing"));
    let sig = seen.headers["x-twilio-signature"].to_str().unwrap();
    assert!(signing::validate(TOKEN, &app.url(&seen.uri), &[], sig));
}

#[tokio::test]
async fn play_fetches_wav_and_loops_and_pause_takes_its_time() {
    let wav = common_wav(300);
    let app = TestApp::start(
        vec![
            (
                "/voice",
                twiml(r#"<Play loop="2">/clip.wav</Play><Pause length="1"/>"#),
            ),
            ("/clip.wav", Reply::Bytes("audio/wav", wav)),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    // 2 × 0.3 s + 1 s.
    assert!(
        res.report.duration_ms >= 1600.0,
        "{}",
        res.report.duration_ms
    );
    assert!(
        res.report.duration_ms < 4000.0,
        "{}",
        res.report.duration_ms
    );
}

#[tokio::test]
async fn play_of_a_bad_wav_is_reported_and_the_document_goes_on() {
    let app = TestApp::start(
        vec![
            ("/voice", twiml(r#"<Play>/clip.wav</Play><Hangup/>"#)),
            (
                "/clip.wav",
                Reply::Bytes("audio/wav", b"this is not audio".to_vec()),
            ),
        ],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    assert_eq!(res.report.end_reason, "<Hangup>");
    match &res.report.failures[..] {
        [Failure::PlayFailed { url, cause }] => {
            assert!(url.ends_with("/clip.wav"));
            assert!(cause.contains("not a WAV"), "{cause}");
        }
        other => panic!("{other:#?}"),
    }
}

#[tokio::test]
async fn reject_ends_an_inbound_call_busy() {
    let app = TestApp::start(
        vec![("/voice", twiml(r#"<Reject reason="busy"/>"#))],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |_| {}).await;
    assert_eq!(res.report.status.as_str(), "busy");
    assert!(!res.report.is_success());
    assert!(matches!(res.report.failures[0], Failure::Rejected { .. }));
}

#[tokio::test]
async fn stream_dtmf_is_sent_as_twilio_dtmf_messages() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/media"/></Connect>"#),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 600, |c| {
        c.caller.stream_dtmf = vec![
            (Duration::from_millis(200), '5'),
            (Duration::from_millis(300), '#'),
        ]
    })
    .await;
    assert_eq!(res.report.streams[0].dtmf_sent, 2);
    let dtmf: Vec<_> = app.ws_messages()[0]
        .1
        .iter()
        .map(|m| json(m))
        .filter(|v| v["event"] == "dtmf")
        .collect();
    assert_eq!(dtmf.len(), 2);
    assert_eq!(dtmf[0]["dtmf"]["digit"], "5");
    assert_eq!(dtmf[0]["dtmf"]["track"], "inbound_track");
    assert_eq!(dtmf[1]["dtmf"]["digit"], "#");
}

#[tokio::test]
async fn invalid_app_messages_are_ignored_counted_and_the_call_goes_on() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/media"/></Connect>"#),
        )],
        WsScript::Garbage,
    )
    .await;
    let res = call(&app.url("/voice"), 500, |_| {}).await;
    let s = &res.report.streams[0];
    assert_eq!(s.invalid_messages, 4, "{:#?}", s.invalid_samples);
    assert!(s.invalid_samples[0].raw.contains("not json"));
    assert!(
        s.invalid_samples
            .iter()
            .any(|m| m.reason.to_lowercase().contains("streamsid")),
        "{:#?}",
        s.invalid_samples
    );
    assert_eq!(
        s.marks.len(),
        1,
        "the valid mark after the garbage still counts"
    );
    assert_eq!(s.closed_by, "dialtone");
    assert!(res.report.is_success());
}

fn common_wav(ms: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.wav");
    let pcm: Vec<i16> = (0..ms * 16)
        .map(|i| ((i as f64 / 16000.0 * 300.0 * std::f64::consts::TAU).sin() * 9000.0) as i16)
        .collect();
    // Written at 8 kHz by our writer, then the test app serves the bytes.
    dialtone_audio::wav::write_8k(&path, &pcm[..(ms * 8) as usize]).unwrap();
    std::fs::read(&path).unwrap()
}

#[tokio::test]
async fn finish_key_alone_is_no_input() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Gather action="/digits" timeout="1"/><Hangup/>"#),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 100, |c| {
        c.caller.gather_digits = "#".into()
    })
    .await;
    assert_eq!(res.report.end_reason, "<Hangup>");
    assert_eq!(app.http().len(), 1);
}

#[tokio::test]
async fn capture_records_every_exchange_byte_for_byte() {
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(r#"<Connect><Stream url="{ws}/media"/></Connect>"#),
        )],
        WsScript::ReplyWithMark {
            chunk_ms: 100,
            n_chunks: 1,
        },
    )
    .await;
    let buf = SharedBuf::default();
    let capture = std::sync::Arc::new(dialtone_call::capture::Capture::new(Box::new(buf.clone())));
    let res = call(&app.url("/voice"), 300, |c| {
        c.capture = Some(capture.clone())
    })
    .await;
    assert!(res.report.is_success(), "{:#?}", res.report.failures);
    capture.finish().unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(json).collect();
    assert_eq!(lines.len() as u64, capture.records());
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..3], ["http_request", "http_response", "ws_open"]);
    assert_eq!(kinds.last(), Some(&"ws_close"));
    assert!(
        lines
            .iter()
            .all(|l| l["call_sid"] == res.report.call_sid.as_str())
    );
    let times: Vec<f64> = lines.iter().map(|l| l["t_ms"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times go forward");
    assert!(lines[1]["body"].as_str().unwrap().contains("<Connect>"));
    // What dialtone sent is exactly what the app received, in order.
    let sent: Vec<String> = lines
        .iter()
        .filter(|l| l["kind"] == "ws_out")
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, app.ws_messages()[0].1);
    // And the app's messages are there too: its media and its mark.
    let got: Vec<String> = lines
        .iter()
        .filter(|l| l["kind"] == "ws_in")
        .map(|l| {
            json(l["text"].as_str().unwrap())["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, ["media", "mark"]);
}

/// An app that starts forks and never stops them gets at most four live WebSockets per call;
/// the rest are skipped with a warning that says why.
#[tokio::test]
async fn at_most_four_forks_run_at_once() {
    let forks = (0..6)
        .map(|i| format!(r#"<Start><Stream name="f{i}" url="{{ws}}/fork{i}"/></Start>"#))
        .collect::<String>();
    let app = TestApp::start(
        vec![(
            "/voice",
            twiml(&format!("{forks}<Pause length=\"1\"/><Hangup/>")),
        )],
        WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 2000, |_| {}).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    assert_eq!(app.ws_messages().len(), 4, "four forks connected");
    let skipped: Vec<_> = r
        .warnings
        .iter()
        .filter(|(_, w)| w.contains("forks are already running"))
        .collect();
    assert_eq!(skipped.len(), 2, "{:?}", r.warnings);
}
