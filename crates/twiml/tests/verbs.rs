//! Every verb's defaults and every documented attribute, one test per verb.

mod common;

use common::one;
use dialtone_twiml::{
    Beep, ConferenceOptions, ConnectTarget, Dial, DialNoun, Enqueue, Gather, GatherInput, Method,
    NounKind, NumberOptions, Pause, Play, QueueOptions, Record, Redirect, Reject, RejectReason,
    Say, StartTarget, Stop, Stream, Task, Track, Verb,
};

#[test]
fn say_defaults_and_attributes() {
    let Verb::Say(s) = one("<Say>Hello</Say>") else {
        panic!()
    };
    assert_eq!(
        s,
        Say {
            text: "Hello".into(),
            voice: None,
            language: None,
            loop_count: 1
        }
    );
    let Verb::Say(s) = one(r#"<Say voice="alice" language="en-GB" loop="0">x</Say>"#) else {
        panic!()
    };
    assert_eq!(
        (s.voice.as_deref(), s.language.as_deref(), s.loop_count),
        (Some("alice"), Some("en-GB"), 0)
    );
}

#[test]
fn play_defaults_and_attributes() {
    let Verb::Play(p) = one("<Play>https://x/a.wav</Play>") else {
        panic!()
    };
    assert_eq!(
        p,
        Play {
            url: Some("https://x/a.wav".into()),
            loop_count: 1,
            digits: None
        }
    );
    let Verb::Play(p) = one(r#"<Play loop="0" digits="1w2W#*">/rel.mp3</Play>"#) else {
        panic!()
    };
    assert_eq!(
        p,
        Play {
            url: Some("/rel.mp3".into()),
            loop_count: 0,
            digits: Some("1w2W#*".into())
        }
    );
    let Verb::Play(p) = one(r#"<Play digits="9"/>"#) else {
        panic!()
    };
    assert_eq!(p.url, None);
}

#[test]
fn pause_defaults_and_length() {
    assert_eq!(one("<Pause/>"), Verb::Pause(Pause { length_secs: 1 }));
    assert_eq!(
        one(r#"<Pause length="40"></Pause>"#),
        Verb::Pause(Pause { length_secs: 40 })
    );
    assert_eq!(
        one(r#"<Pause length=" 3 "/>"#),
        Verb::Pause(Pause { length_secs: 3 })
    );
}

#[test]
fn gather_defaults() {
    let Verb::Gather(g) = one("<Gather/>") else {
        panic!()
    };
    assert_eq!(g.input, [GatherInput::Dtmf]);
    assert_eq!(g.action, None);
    assert_eq!(g.method, Method::Post);
    assert_eq!(g.timeout_secs, 5);
    assert_eq!(g.num_digits, None);
    assert_eq!(g.finish_on_key, "#");
    assert!(!g.action_on_empty_result);
    assert_eq!(g.speech_timeout, None);
    assert!(g.barge_in && g.profanity_filter);
    assert_eq!(g.partial_result_callback_method, Method::Post);
    assert!(g.children.is_empty());
    assert_eq!(g, Gather::default());
}

#[test]
fn gather_all_documented_attributes() {
    let Verb::Gather(g) = one(
        r#"<Gather input="speech dtmf" action="/a" method="get" timeout="0" speechTimeout="3" maxSpeechTime="45" profanityFilter="false" finishOnKey="" numDigits="4" partialResultCallback="/p" partialResultCallbackMethod="GET" language="fr-FR" hints="yes, no" bargeIn="false" debug="true" actionOnEmptyResult="TRUE" speechModel="phone_call" enhanced="true"><Pause/></Gather>"#,
    ) else {
        panic!()
    };
    assert_eq!(g.input, [GatherInput::Speech, GatherInput::Dtmf]);
    assert_eq!(g.action.as_deref(), Some("/a"));
    assert_eq!(g.method, Method::Get);
    assert_eq!(g.timeout_secs, 0);
    assert_eq!(g.speech_timeout.as_deref(), Some("3"));
    assert_eq!(g.max_speech_time_secs, Some(45));
    assert!(!g.profanity_filter);
    assert_eq!(g.finish_on_key, "");
    assert_eq!(g.num_digits, Some(4));
    assert_eq!(g.partial_result_callback.as_deref(), Some("/p"));
    assert_eq!(g.partial_result_callback_method, Method::Get);
    assert_eq!(g.language.as_deref(), Some("fr-FR"));
    assert_eq!(g.hints.as_deref(), Some("yes, no"));
    assert!(!g.barge_in);
    assert!(g.action_on_empty_result);
    assert_eq!(g.speech_model.as_deref(), Some("phone_call"));
    assert_eq!(g.children.len(), 1);
}

#[test]
fn gather_input_variants() {
    for (input, want) in [
        ("dtmf", vec![GatherInput::Dtmf]),
        ("speech", vec![GatherInput::Speech]),
        ("dtmf speech", vec![GatherInput::Dtmf, GatherInput::Speech]),
        (" dtmf  dtmf ", vec![GatherInput::Dtmf]),
    ] {
        let Verb::Gather(g) = one(&format!(r#"<Gather input="{input}"/>"#)) else {
            panic!()
        };
        assert_eq!(g.input, want, "{input}");
    }
}

#[test]
fn gather_children_keep_order_and_lines() {
    let doc = common::ok(
        "<Response>\n<Gather>\n<Say>a</Say>\n<Play>/b</Play>\n<Pause/>\n</Gather>\n</Response>",
    );
    let Verb::Gather(g) = &doc.verbs[0].verb else {
        panic!()
    };
    let names: Vec<(&str, u32)> = g.children.iter().map(|n| (n.verb.name(), n.line)).collect();
    assert_eq!(names, [("Say", 3), ("Play", 4), ("Pause", 5)]);
}

#[test]
fn hangup_and_reject() {
    assert_eq!(one("<Hangup/>"), Verb::Hangup);
    assert_eq!(one("<Hangup></Hangup>"), Verb::Hangup);
    assert_eq!(
        one("<Reject/>"),
        Verb::Reject(Reject {
            reason: RejectReason::Rejected
        })
    );
    assert_eq!(
        one(r#"<Reject reason="rejected"/>"#),
        Verb::Reject(Reject::default())
    );
    assert_eq!(
        one(r#"<Reject reason="busy"/>"#),
        Verb::Reject(Reject {
            reason: RejectReason::Busy
        })
    );
}

#[test]
fn redirect_defaults_and_method() {
    assert_eq!(
        one("<Redirect> https://x/next </Redirect>"),
        Verb::Redirect(Redirect {
            url: "https://x/next".into(),
            method: Method::Post
        })
    );
    assert_eq!(
        one(r#"<Redirect method="GET">next</Redirect>"#),
        Verb::Redirect(Redirect {
            url: "next".into(),
            method: Method::Get
        })
    );
}

#[test]
fn method_is_case_insensitive() {
    for (m, want) in [
        ("GET", Method::Get),
        ("get", Method::Get),
        ("Post", Method::Post),
        ("post", Method::Post),
    ] {
        let Verb::Redirect(r) = one(&format!(r#"<Redirect method="{m}">/x</Redirect>"#)) else {
            panic!()
        };
        assert_eq!(r.method, want, "{m}");
    }
}

#[test]
fn stream_defaults_and_attributes() {
    let Verb::Connect(c) = one(r#"<Connect><Stream url="wss://h/m"/></Connect>"#) else {
        panic!()
    };
    assert_eq!((c.action, c.method), (None, Method::Post));
    let ConnectTarget::Stream(s) = c.target else {
        panic!()
    };
    assert_eq!(
        s,
        Stream {
            url: "wss://h/m".into(),
            ..Stream::default()
        }
    );
    assert_eq!(s.track, Track::Inbound);
    assert_eq!(s.status_callback_method, Method::Post);

    let Verb::Start(st) = one(
        r#"<Start action="/s" method="GET"><Stream url="/rel" name="n" track="outbound_track" statusCallback="/cb" statusCallbackMethod="GET" connectorName="c"><Parameter name="a" value="1"/><Parameter name="b"/><Parameter name="a" value="2"/></Stream></Start>"#,
    ) else {
        panic!()
    };
    assert_eq!((st.action.as_deref(), st.method), (Some("/s"), Method::Get));
    let StartTarget::Stream(s) = st.target else {
        panic!()
    };
    assert_eq!(s.url, "/rel");
    assert_eq!(s.name.as_deref(), Some("n"));
    assert_eq!(s.track, Track::Outbound);
    assert_eq!(s.status_callback.as_deref(), Some("/cb"));
    assert_eq!(s.status_callback_method, Method::Get);
    assert_eq!(s.connector_name.as_deref(), Some("c"));
    let params = [("a", "1"), ("b", ""), ("a", "2")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(s.parameters, params);
}

#[test]
fn stream_urls_and_tracks() {
    for url in [
        "wss://h/x",
        "ws://localhost:8080/x",
        "WSS://h",
        "/media",
        "media",
        "../m",
        "//h/m",
    ] {
        let Verb::Start(s) = one(&format!(r#"<Start><Stream url="{url}"/></Start>"#)) else {
            panic!()
        };
        let StartTarget::Stream(s) = s.target else {
            panic!()
        };
        assert_eq!(s.url, url);
    }
    // Twilio ignores track on a bidirectional stream, so it is accepted there too.
    let Verb::Connect(c) = one(r#"<Connect><Stream url="wss://h" track="both_tracks"/></Connect>"#)
    else {
        panic!()
    };
    let ConnectTarget::Stream(s) = c.target else {
        panic!()
    };
    assert_eq!(s.track, Track::Both);
    // A Stream Connector needs no url.
    let Verb::Start(s) = one(r#"<Start><Stream connectorName="conn"/></Start>"#) else {
        panic!()
    };
    let StartTarget::Stream(s) = s.target else {
        panic!()
    };
    assert_eq!(
        (s.url.as_str(), s.connector_name.as_deref()),
        ("", Some("conn"))
    );
}

#[test]
fn parameter_just_under_the_limit() {
    let value = "v".repeat(498);
    let Verb::Start(s) = one(&format!(
        r#"<Start><Stream url="wss://h"><Parameter name="k" value="{value}"/></Stream></Start>"#
    )) else {
        panic!()
    };
    let StartTarget::Stream(s) = s.target else {
        panic!()
    };
    assert_eq!(s.parameters[0].1.len(), 498);
}

#[test]
fn stop_stream() {
    assert_eq!(
        one(r#"<Stop><Stream name="x"/></Stop>"#),
        Verb::Stop(Stop {
            stream_name: Some("x".into()),
            ..Stop::default()
        })
    );
    assert_eq!(one("<Stop><Stream/></Stop>"), Verb::Stop(Stop::default()));
}

#[test]
fn record_defaults_and_attributes() {
    let Verb::Record(r) = one("<Record/>") else {
        panic!()
    };
    assert_eq!(r, Record::default());
    assert_eq!(r.timeout_secs, 5);
    assert_eq!(r.finish_on_key, "1234567890*#");
    assert_eq!(r.max_length_secs, 3600);
    assert!(r.play_beep);
    assert_eq!((r.action, r.method, r.trim), (None, Method::Post, None));

    let Verb::Record(r) = one(
        r#"<Record action="/r" method="GET" timeout="0" finishOnKey="*" maxLength="20" playBeep="false" trim="trim-silence" recordingStatusCallback="/rs" recordingStatusCallbackMethod="GET" recordingStatusCallbackEvent="in-progress completed" transcribe="true" transcribeCallback="/t"/>"#,
    ) else {
        panic!()
    };
    assert_eq!(
        r,
        Record {
            action: Some("/r".into()),
            method: Method::Get,
            timeout_secs: 0,
            finish_on_key: "*".into(),
            max_length_secs: 20,
            play_beep: false,
            trim: Some("trim-silence".into()),
            recording_status_callback: Some("/rs".into()),
            recording_status_callback_method: Method::Get,
            recording_status_callback_events: vec!["in-progress".into(), "completed".into()],
            transcribe: true,
            transcribe_callback: Some("/t".into()),
        }
    );
    assert!(r.transcribes() && r.trims_silence());

    // A transcribeCallback implies transcribe; do-not-trim keeps the silence.
    let Verb::Record(r) = one(r#"<Record transcribeCallback="/t" trim="do-not-trim"/>"#) else {
        panic!()
    };
    assert!(r.transcribes() && !r.trims_silence());
    assert_eq!(r.recording_status_callback_events, ["completed"]);
}

#[test]
fn record_events_and_max_length_are_bounded_to_twilio_words() {
    let Verb::Record(r) = one(
        r#"<Record maxLength="86400" recordingStatusCallbackEvent="absent  absent in-progress"/>"#,
    ) else {
        panic!()
    };
    assert_eq!(r.max_length_secs, 86_400);
    assert_eq!(
        r.recording_status_callback_events,
        ["absent", "in-progress"]
    );
    for (bad, why) in [
        (
            r#"<Record recordingStatusCallbackEvent="completed done"/>"#,
            "done is not one of",
        ),
        (r#"<Record maxLength="86401"/>"#, "at most 86400"),
        (r#"<Record maxLength="0"/>"#, "at least 1"),
    ] {
        let e = dialtone_twiml::parse(&format!("<Response>{bad}</Response>"))
            .expect_err(bad)
            .to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn dial_defaults_and_attributes() {
    let Verb::Dial(d) = one("<Dial>+15551234567</Dial>") else {
        panic!()
    };
    assert_eq!(d.timeout_secs, 30);
    assert_eq!(d.time_limit_secs, 14400);
    assert_eq!(
        (d.action.as_ref(), d.method, d.caller_id.as_ref()),
        (None, Method::Post, None)
    );
    assert!(!d.hangup_on_star && !d.answer_on_bridge);

    let Verb::Dial(d) = one(
        r#"<Dial action="/d" method="GET" timeout="12" hangupOnStar="true" timeLimit="60" callerId="+1555" record="record-from-answer" trim="trim-silence" recordingStatusCallback="/rs" recordingStatusCallbackMethod="GET" recordingStatusCallbackEvent="in-progress completed" answerOnBridge="true" ringTone="us" recordingTrack="both" sequential="true" referUrl="/ref" referMethod="POST">client:bob</Dial>"#,
    ) else {
        panic!()
    };
    assert_eq!(
        d,
        Dial {
            action: Some("/d".into()),
            method: Method::Get,
            timeout_secs: 12,
            caller_id: Some("+1555".into()),
            time_limit_secs: 60,
            target: "client:bob".into(),
            nouns: vec![],
            hangup_on_star: true,
            answer_on_bridge: true,
            record: Some("record-from-answer".into()),
            ring_tone: Some("us".into()),
            recording_status_callback: Some("/rs".into()),
            recording_status_callback_method: Method::Get,
            recording_status_callback_events: vec!["in-progress".into(), "completed".into()],
        }
    );
    assert_eq!(
        d.recording(),
        Some(dialtone_twiml::DialRecording {
            from_ringing: false,
            dual: false
        })
    );
    for (record, want) in [
        ("record-from-ringing-dual", Some((true, true))),
        ("true", Some((false, false))),
        ("false", None),
        ("do-not-record", None),
    ] {
        let Verb::Dial(d) = one(&format!(r#"<Dial record="{record}">+1555</Dial>"#)) else {
            panic!()
        };
        assert_eq!(
            d.recording().map(|r| (r.from_ringing, r.dual)),
            want,
            "{record}"
        );
    }
    for bad in [
        r#"record="yes""#,
        r#"ringTone="zz""#,
        r#"recordingStatusCallbackEvent="done""#,
    ] {
        let doc = format!(r#"<Response><Dial {bad}>+1555</Dial></Response>"#);
        assert!(dialtone_twiml::parse(&doc).is_err(), "{bad}");
    }
}

#[test]
fn verb_names() {
    let cases = [
        ("<Say>a</Say>", "Say"),
        ("<Play>/a</Play>", "Play"),
        ("<Pause/>", "Pause"),
        ("<Gather/>", "Gather"),
        ("<Hangup/>", "Hangup"),
        ("<Reject/>", "Reject"),
        ("<Redirect>/a</Redirect>", "Redirect"),
        (r#"<Connect><Stream url="wss://h"/></Connect>"#, "Connect"),
        (r#"<Start><Stream url="wss://h"/></Start>"#, "Start"),
        ("<Stop><Stream name=\"a\"/></Stop>", "Stop"),
        ("<Record/>", "Record"),
        ("<Dial>+1</Dial>", "Dial"),
        ("<Enqueue>q</Enqueue>", "Enqueue"),
        ("<Leave/>", "Leave"),
        ("<Echo/>", "Echo"),
    ];
    for (body, name) in cases {
        assert_eq!(one(body).name(), name);
    }
}

#[test]
fn enqueue_defaults_and_attributes() {
    assert_eq!(
        one("<Enqueue> support </Enqueue>"),
        Verb::Enqueue(Enqueue {
            queue: "support".into(),
            action: None,
            method: Method::Post,
            wait_url: None,
            wait_url_method: Method::Post,
            workflow_sid: None,
            task: None,
        })
    );
    assert_eq!(
        one(
            r#"<Enqueue action="/a" method="GET" waitUrl="" waitUrlMethod="get" workflowSid="WW1" maxQueueSize="50">q<Task priority="0" timeout="60">{"k": "v &amp; w"}</Task></Enqueue>"#
        ),
        Verb::Enqueue(Enqueue {
            queue: "q".into(),
            action: Some("/a".into()),
            method: Method::Get,
            wait_url: Some(String::new()),
            wait_url_method: Method::Get,
            workflow_sid: Some("WW1".into()),
            task: Some(Task {
                attributes: r#"{"k": "v & w"}"#.into(),
                priority: Some(0),
                timeout_secs: Some(60),
            }),
        })
    );
    // With a workflowSid the queue name may be omitted; so may the task's text.
    assert_eq!(
        one(r#"<Enqueue workflowSid="WW1"><Task/></Enqueue>"#),
        Verb::Enqueue(Enqueue {
            workflow_sid: Some("WW1".into()),
            task: Some(Task::default()),
            ..Enqueue::default()
        })
    );
    let name = "q".repeat(64);
    let Verb::Enqueue(e) = one(&format!("<Enqueue>{name}</Enqueue>")) else {
        panic!()
    };
    assert_eq!(e.queue, name);
}

#[test]
fn leave() {
    assert_eq!(one("<Leave/>"), Verb::Leave);
    assert_eq!(one("<Leave> </Leave>"), Verb::Leave);
}

/// The first noun of `<Dial>{nouns}</Dial>`.
fn noun(nouns: &str) -> DialNoun {
    let Verb::Dial(mut d) = one(&format!("<Dial>{nouns}</Dial>")) else {
        panic!()
    };
    d.nouns.remove(0)
}

#[test]
fn dial_noun_kinds_and_raw_attributes() {
    let kinds = [
        ("Number", NounKind::Number),
        ("Client", NounKind::Client),
        ("Sip", NounKind::Sip),
        ("Conference", NounKind::Conference),
        ("Queue", NounKind::Queue),
        ("Sim", NounKind::Sim),
        ("Application", NounKind::Application),
        ("WhatsApp", NounKind::WhatsApp),
    ];
    for (name, kind) in kinds {
        assert_eq!(noun(&format!("<{name}>x</{name}>")).kind(), kind);
        assert_eq!(NounKind::from_name(name), Some(kind));
    }
    assert_eq!(NounKind::from_name("number"), None);
    let n = noun(r#"<Number url="/w?a=1&amp;b=2" method="get">+1</Number>"#);
    assert_eq!(n.attr("url"), Some("/w?a=1&b=2"));
    // Raw values stay as written; the typed view normalizes them.
    assert_eq!(n.attr("method"), Some("get"));
    assert_eq!(n.number_options().method, Method::Get);
    assert_eq!(n.attr("sendDigits"), None);
}

#[test]
fn number_client_sip_options() {
    assert_eq!(
        noun("<Number>+1</Number>").number_options(),
        NumberOptions {
            url: None,
            method: Method::Post,
            send_digits: None,
            status_callback: None,
            status_callback_method: Method::Post,
            status_callback_events: vec!["completed".into()],
        }
    );
    let full = NumberOptions {
        url: Some("/whisper".into()),
        method: Method::Get,
        send_digits: Some("wW1#".into()),
        status_callback: Some("/status".into()),
        status_callback_method: Method::Get,
        status_callback_events: vec![
            "ringing".into(),
            "initiated".into(),
            "answered".into(),
            "completed".into(),
        ],
    };
    assert_eq!(
        noun(
            r#"<Number url="/whisper" method="GET" sendDigits="wW1#" statusCallback="/status" statusCallbackMethod="GET" statusCallbackEvent=" ringing initiated  answered completed ringing" byoc="BY1" machineDetection="Enable">+1</Number>"#
        )
        .number_options(),
        full
    );
    let sip = noun(
        r#"<Sip username="u" password="p" statusCallbackEvent="answered" statusCallback="/s">sip:a@b</Sip>"#,
    );
    assert_eq!(sip.number_options().status_callback_events, ["answered"]);
    assert_eq!(sip.number_options().status_callback.as_deref(), Some("/s"));
    let client = noun(r#"<Client url="/u" statusCallbackEvent=""><Identity>a</Identity></Client>"#);
    // A blank list means the default, like an absent one.
    assert_eq!(
        client.number_options().status_callback_events,
        ["completed"]
    );
    assert_eq!(client.number_options().url.as_deref(), Some("/u"));
}

#[test]
fn conference_options() {
    assert_eq!(
        noun("<Conference>room</Conference>").conference_options(),
        ConferenceOptions {
            muted: false,
            beep: Beep::True,
            start_conference_on_enter: true,
            end_conference_on_exit: false,
            wait_url: None,
            wait_method: Method::Post,
            max_participants: 250,
            record: None,
            status_callback: None,
            status_callback_method: Method::Post,
            status_callback_events: vec![],
            coach: None,
            participant_label: None,
        }
    );
    assert_eq!(
        noun(
            r#"<Conference muted="true" beep="false" startConferenceOnEnter="False" endConferenceOnExit="1" waitUrl="" waitMethod="GET" maxParticipants="2" record="record-from-start" region="ie1" trim="do-not-trim" coach="CA1" statusCallback="/c" statusCallbackMethod="GET" statusCallbackEvent="start end join leave mute hold modify speaker announcement" recordingStatusCallback="/r" jitterBufferSize="small" participantLabel="agent">room</Conference>"#
        )
        .conference_options(),
        ConferenceOptions {
            muted: true,
            beep: Beep::False,
            start_conference_on_enter: false,
            end_conference_on_exit: true,
            wait_url: Some(String::new()),
            wait_method: Method::Get,
            max_participants: 2,
            record: Some("record-from-start".into()),
            status_callback: Some("/c".into()),
            status_callback_method: Method::Get,
            status_callback_events: [
                "start",
                "end",
                "join",
                "leave",
                "mute",
                "hold",
                "modify",
                "speaker",
                "announcement",
            ]
            .map(String::from)
            .to_vec(),
            coach: Some("CA1".into()),
            participant_label: Some("agent".into()),
        }
    );
    for (value, beep) in [
        ("true", Beep::True),
        ("TRUE", Beep::True),
        ("false", Beep::False),
        ("onEnter", Beep::OnEnter),
        ("onExit", Beep::OnExit),
    ] {
        let n = noun(&format!(r#"<Conference beep="{value}">r</Conference>"#));
        assert_eq!(n.conference_options().beep, beep, "beep={value}");
    }
    for max in [1, 250] {
        let n = noun(&format!(
            r#"<Conference maxParticipants="{max}">r</Conference>"#
        ));
        assert_eq!(n.conference_options().max_participants, max);
    }
    let name = "r".repeat(128);
    assert_eq!(
        noun(&format!("<Conference>{name}</Conference>")).value,
        name
    );
}

#[test]
fn queue_options() {
    assert_eq!(
        noun("<Queue>support</Queue>").queue_options(),
        QueueOptions::default()
    );
    assert_eq!(
        noun(r#"<Queue url="/connecting" method="GET" reservationSid="WR1" postWorkActivitySid="WA1">support</Queue>"#)
            .queue_options(),
        QueueOptions {
            url: Some("/connecting".into()),
            method: Method::Get,
        }
    );
}

#[test]
fn typed_views_of_nouns_built_in_code_fall_back_to_defaults() {
    let n = DialNoun {
        name: "Conference".into(),
        value: "room".into(),
        attributes: vec![("maxParticipants".into(), "9999".into())],
    };
    assert_eq!(n.conference_options(), ConferenceOptions::default());
    let n = DialNoun {
        name: "Pager".into(),
        value: "x".into(),
        attributes: vec![],
    };
    assert_eq!(n.kind(), NounKind::Number);
    assert_eq!(n.number_options(), NumberOptions::default());
}
