//! `parse(to_xml(doc))` gives back `doc`: a hand-built rich document, and a property test over
//! random valid documents whose strings include characters that need escaping.

mod common;

use dialtone_twiml::{
    Beep, ConferenceOptions, Connect, ConnectTarget, ConversationRelay, Dial, DialNoun, Document,
    Enqueue, Gather, GatherInput, Method, Node, NounKind, NumberOptions, Pause, Play, Record,
    Redirect, Reject, RejectReason, RelayInput, RelayLanguage, Say, Start, StartTarget, Stop,
    Stream, Task, Track, Transcription, Verb, parse,
};
use proptest::prelude::*;

fn rich() -> Document {
    let verbs = vec![
        Verb::Start(Start {
            action: Some("/started?a=1&b=2".into()),
            method: Method::Get,
            target: StartTarget::Stream(Stream {
                url: "wss://h/fork?x=\"1\"".into(),
                name: Some("fork <1>".into()),
                track: Track::Both,
                status_callback: Some("https://h/ss".into()),
                status_callback_method: Method::Get,
                connector_name: None,
                parameters: vec![
                    ("k&".into(), "v'\"<>\n\t\r".into()),
                    ("empty".into(), String::new()),
                ],
            }),
        }),
        Verb::Say(Say {
            text: "Tom & Jerry <3 \"quotes\" 'apos' €".into(),
            voice: Some("Polly.Joanna".into()),
            language: Some("en-US".into()),
            loop_count: 0,
        }),
        Verb::Gather(Gather {
            input: vec![GatherInput::Speech, GatherInput::Dtmf],
            action: Some("/g".into()),
            method: Method::Get,
            timeout_secs: 0,
            num_digits: Some(4),
            finish_on_key: String::new(),
            action_on_empty_result: true,
            speech_timeout: Some("auto".into()),
            language: Some("fr-FR".into()),
            hints: Some("a, b".into()),
            barge_in: false,
            profanity_filter: false,
            speech_model: Some("phone_call".into()),
            partial_result_callback: Some("/p".into()),
            partial_result_callback_method: Method::Get,
            max_speech_time_secs: Some(30),
            children: vec![
                Node::new(Verb::Say(Say {
                    text: "Press 1".into(),
                    ..Say::default()
                })),
                Node::new(Verb::Play(Play {
                    url: Some("/a.wav".into()),
                    loop_count: 3,
                    digits: None,
                })),
                Node::new(Verb::Pause(Pause { length_secs: 2 })),
            ],
        }),
        Verb::Play(Play {
            url: Some("https://h/a.wav?x=1&y=2".into()),
            loop_count: 2,
            digits: Some("ww1#".into()),
        }),
        Verb::Play(Play {
            url: None,
            loop_count: 1,
            digits: Some("9".into()),
        }),
        Verb::Record(Record {
            action: Some("/rec".into()),
            method: Method::Get,
            timeout_secs: 0,
            finish_on_key: String::new(),
            max_length_secs: 30,
            play_beep: false,
            trim: Some("do-not-trim".into()),
            recording_status_callback: Some("/rs".into()),
            recording_status_callback_method: Method::Get,
            recording_status_callback_events: vec!["absent".into(), "completed".into()],
            transcribe: true,
            transcribe_callback: Some("/t".into()),
        }),
        Verb::Stop(Stop {
            stream_name: Some("fork <1>".into()),
            ..Stop::default()
        }),
        Verb::Stop(Stop {
            other: Some("Siprec".into()),
            ..Stop::default()
        }),
        Verb::Stop(Stop {
            other: Some("Transcription".into()),
            name: Some("live & <1>".into()),
            ..Stop::default()
        }),
        Verb::Stop(Stop {
            other: Some("Transcription".into()),
            ..Stop::default()
        }),
        Verb::Stop(Stop::default()),
        Verb::Dial(Dial {
            action: Some("/d".into()),
            method: Method::Get,
            timeout_secs: 10,
            caller_id: Some("+15550000000".into()),
            time_limit_secs: 60,
            target: "+15551112222".into(),
            nouns: vec![
                DialNoun {
                    name: "Number".into(),
                    value: "+15551112222".into(),
                    attributes: vec![
                        ("sendDigits".into(), "ww1".into()),
                        ("url".into(), "/w?a&b".into()),
                    ],
                },
                DialNoun {
                    name: "Client".into(),
                    value: "alice & bob".into(),
                    attributes: vec![],
                },
                DialNoun {
                    name: "Conference".into(),
                    value: "room <1>".into(),
                    attributes: vec![
                        ("beep".into(), "onExit".into()),
                        ("waitUrl".into(), String::new()),
                        ("statusCallbackEvent".into(), "join leave".into()),
                    ],
                },
            ],
            hangup_on_star: true,
            answer_on_bridge: true,
            record: Some("record-from-answer".into()),
            ring_tone: Some("us".into()),
            recording_status_callback: Some("/drs".into()),
            recording_status_callback_method: Method::Get,
            recording_status_callback_events: vec!["absent".into()],
        }),
        Verb::Dial(Dial {
            target: "+1 (555) <x>".into(),
            ..Dial::default()
        }),
        Verb::Connect(Connect {
            action: Some("/after".into()),
            method: Method::Post,
            target: ConnectTarget::Stream(Stream {
                url: "/relative/media".into(),
                parameters: vec![("token".into(), "abc".into())],
                ..Stream::default()
            }),
        }),
        Verb::Connect(Connect {
            action: None,
            method: Method::Get,
            target: ConnectTarget::Other {
                name: "Room".into(),
            },
        }),
        Verb::Start(Start {
            action: None,
            method: Method::Post,
            target: StartTarget::Transcription(Box::new(Transcription {
                name: Some("live & <1>".into()),
                track: Track::Inbound,
                status_callback_url: Some("https://h/t?a=1&b=2".into()),
                status_callback_method: Method::Get,
                inbound_track_label: Some("caller \"1\"".into()),
                outbound_track_label: Some("agent".into()),
                partial_results: true,
                language_code: Some("fr-FR".into()),
                transcription_engine: Some("deepgram".into()),
                profanity_filter: false,
                speech_model: Some("nova-2".into()),
                hints: Some("a, b".into()),
                enable_automatic_punctuation: false,
                intelligence_service: Some("GA1".into()),
                config: vec![("k".into(), "v<>".into())],
                parameters: vec![("p".into(), String::new())],
            })),
        }),
        Verb::Start(Start {
            action: None,
            method: Method::Post,
            target: StartTarget::Transcription(Box::default()),
        }),
        Verb::Start(Start {
            action: None,
            method: Method::Post,
            target: StartTarget::Other {
                name: "Recording".into(),
            },
        }),
        Verb::Enqueue(Enqueue {
            queue: "sales & <support>".into(),
            action: Some("/left?a=1&b=2".into()),
            method: Method::Get,
            wait_url: Some(String::new()),
            wait_url_method: Method::Get,
            workflow_sid: Some("WW1".into()),
            task: Some(Task {
                attributes: r#"{"k": "<v & w>"}"#.into(),
                priority: Some(0),
                timeout_secs: Some(30),
            }),
        }),
        Verb::Enqueue(Enqueue {
            workflow_sid: Some("WW2".into()),
            ..Enqueue::default()
        }),
        Verb::Leave,
        Verb::Unsupported { name: "Pay".into() },
        Verb::Redirect(Redirect {
            url: "/next?a=1&b=2".into(),
            method: Method::Get,
        }),
        Verb::Reject(Reject {
            reason: RejectReason::Busy,
        }),
        Verb::Reject(Reject {
            reason: RejectReason::Rejected,
        }),
        Verb::Hangup,
    ];
    Document {
        verbs: verbs.into_iter().map(Node::new).collect(),
    }
}

#[test]
fn rich_document_round_trips() {
    let doc = rich();
    let xml = doc.to_xml();
    assert!(
        xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#),
        "{xml}"
    );
    assert!(xml.ends_with("</Response>"));
    assert!(!xml.contains('\n'), "one line: {xml}");
    let back = parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(back, doc);
    // Idempotent: serializing the parsed document gives the same bytes.
    assert_eq!(back.to_xml(), xml);
}

#[test]
fn to_xml_omits_defaults_and_escapes() {
    let doc = Document {
        verbs: vec![
            Node::new(Verb::Say(Say {
                text: "a & b".into(),
                ..Say::default()
            })),
            Node::new(Verb::Pause(Pause::default())),
            Node::new(Verb::Gather(Gather::default())),
            Node::new(Verb::Hangup),
        ],
    };
    assert_eq!(
        doc.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>a &amp; b</Say><Pause/><Gather></Gather><Hangup/></Response>"#
    );
    assert_eq!(
        Document::default().to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
    );
}

#[test]
fn enqueue_and_leave_are_written_as_an_app_would() {
    let doc = Document {
        verbs: vec![
            Node::new(Verb::Enqueue(Enqueue {
                queue: "support".into(),
                action: Some("/done".into()),
                wait_url: Some("/wait".into()),
                ..Enqueue::default()
            })),
            Node::new(Verb::Enqueue(Enqueue {
                workflow_sid: Some("WW1".into()),
                task: Some(Task {
                    attributes: r#"{"a": 1}"#.into(),
                    priority: Some(5),
                    timeout_secs: None,
                }),
                ..Enqueue::default()
            })),
            Node::new(Verb::Leave),
        ],
    };
    assert_eq!(
        doc.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Enqueue action="/done" waitUrl="/wait">support</Enqueue><Enqueue workflowSid="WW1"><Task priority="5">{"a": 1}</Task></Enqueue><Leave/></Response>"#
    );
}

#[test]
fn node_equality_ignores_line() {
    let a = Node {
        line: 3,
        verb: Verb::Hangup,
    };
    let b = Node {
        line: 9,
        verb: Verb::Hangup,
    };
    assert_eq!(a, b);
    assert_ne!(a, Node::new(Verb::Reject(Reject::default())));
}

// ---------------------------------------------------------------- property test

/// Free text with XML-special characters; whitespace-normalized like `Say::text`.
fn text() -> impl Strategy<Value = String> {
    r#"[a-zA-Z0-9 &<>"'é€;#]{0,16}"#
        .prop_map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Non-empty content that survives trimming (URLs, numbers, noun values).
fn word() -> impl Strategy<Value = String> {
    r#"[a-zA-Z0-9/&<>"'?=.+_-][a-zA-Z0-9/&<>"'?=.+_ -]{0,10}[a-zA-Z0-9/&<>"'?=._-]"#
}

/// Attribute values keep everything, including tabs and newlines.
fn attr() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 &<>\"'\t\n\r/:?=é]{0,12}"
}

fn opt_attr() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(attr())
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![Just(Method::Get), Just(Method::Post)]
}

fn say() -> impl Strategy<Value = Verb> {
    (text(), opt_attr(), opt_attr(), 0u32..5).prop_map(|(text, voice, language, loop_count)| {
        Verb::Say(Say {
            text,
            voice,
            language,
            loop_count,
        })
    })
}

fn play(digits_allowed: bool) -> impl Strategy<Value = Verb> {
    let digits = if digits_allowed {
        proptest::option::of("[0-9*#wW]{1,6}").boxed()
    } else {
        Just(None).boxed()
    };
    (proptest::option::of(word()), 0u32..4, digits).prop_map(|(url, loop_count, digits)| {
        let url = if url.is_none() && digits.is_none() {
            Some("/a.wav".to_owned())
        } else {
            url
        };
        Verb::Play(Play {
            url,
            loop_count,
            digits,
        })
    })
}

fn pause() -> impl Strategy<Value = Verb> {
    (1u32..100).prop_map(|length_secs| Verb::Pause(Pause { length_secs }))
}

fn gather() -> impl Strategy<Value = Verb> {
    let input = prop_oneof![
        Just(vec![GatherInput::Dtmf]),
        Just(vec![GatherInput::Speech]),
        Just(vec![GatherInput::Dtmf, GatherInput::Speech]),
        Just(vec![GatherInput::Speech, GatherInput::Dtmf]),
    ];
    let speech_timeout = proptest::option::of(prop_oneof![
        Just("auto".to_owned()),
        (0u32..20).prop_map(|n| n.to_string())
    ]);
    let children = proptest::collection::vec(prop_oneof![say(), play(false), pause()], 0..4);
    let a = (
        input,
        opt_attr(),
        method(),
        0u32..20,
        proptest::option::of(1u32..10),
        "[0-9*#]?",
        any::<bool>(),
        speech_timeout,
    );
    let b = (
        opt_attr(),
        opt_attr(),
        any::<bool>(),
        any::<bool>(),
        opt_attr(),
        opt_attr(),
        method(),
        proptest::option::of(1u32..60),
    );
    (a, b, children).prop_map(|(a, b, children)| {
        Verb::Gather(Gather {
            input: a.0,
            action: a.1,
            method: a.2,
            timeout_secs: a.3,
            num_digits: a.4,
            finish_on_key: a.5,
            action_on_empty_result: a.6,
            speech_timeout: a.7,
            language: b.0,
            hints: b.1,
            barge_in: b.2,
            profanity_filter: b.3,
            speech_model: b.4,
            partial_result_callback: b.5,
            partial_result_callback_method: b.6,
            max_speech_time_secs: b.7,
            children: children.into_iter().map(Node::new).collect(),
        })
    })
}

fn relay_input() -> impl Strategy<Value = RelayInput> {
    prop_oneof![
        Just(RelayInput::None),
        Just(RelayInput::Dtmf),
        Just(RelayInput::Speech),
        Just(RelayInput::Any)
    ]
}

fn relay() -> impl Strategy<Value = ConversationRelay> {
    let inputs = (relay_input(), relay_input(), relay_input());
    let flags = (any::<bool>(), any::<bool>(), any::<bool>());
    let texts = (
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
    );
    // Distinct keys: an attribute appears once.
    let settings = (opt_attr(), opt_attr(), opt_attr()).prop_map(|(p, v, m)| {
        [("ttsProvider", p), ("voice", v), ("speechModel", m)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect::<Vec<_>>()
    });
    let language =
        (word(), opt_attr(), opt_attr()).prop_map(|(code, tts_provider, voice)| RelayLanguage {
            code,
            tts_provider,
            voice,
            ..RelayLanguage::default()
        });
    let languages = proptest::collection::vec(language, 0..3);
    let params = proptest::collection::vec(("[a-z&<\"]{1,8}", attr()), 0..3);
    (word(), inputs, flags, texts, settings, languages, params).prop_map(
        |(url, inputs, flags, texts, settings, languages, parameters)| ConversationRelay {
            url: format!("wss://h/{url}"),
            welcome_greeting: texts.0,
            welcome_greeting_interruptible: inputs.0,
            interruptible: inputs.1,
            report_input_during_agent_speech: inputs.2,
            preemptible: flags.0,
            dtmf_detection: flags.1,
            partial_prompts: flags.2,
            language: texts.1,
            tts_language: texts.2,
            transcription_language: texts.3,
            hints: texts.4,
            debug: texts.5,
            settings,
            languages,
            parameters,
        },
    )
}

fn transcription() -> impl Strategy<Value = Transcription> {
    let track = prop_oneof![
        Just(Track::Inbound),
        Just(Track::Outbound),
        Just(Track::Both)
    ];
    let engine = proptest::option::of(prop_oneof![
        Just("google".to_owned()),
        Just("deepgram".to_owned()),
        Just("Google".to_owned())
    ]);
    let texts = (
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
        opt_attr(),
    );
    let flags = (any::<bool>(), any::<bool>(), any::<bool>());
    let pairs = || proptest::collection::vec(("[a-z&<\"]{1,8}", attr()), 0..3);
    (track, engine, method(), texts, flags, pairs(), pairs()).prop_map(
        |(track, transcription_engine, status_callback_method, t, f, config, parameters)| {
            Transcription {
                name: t.0,
                track,
                status_callback_url: t.1,
                status_callback_method,
                inbound_track_label: t.2,
                outbound_track_label: t.3,
                partial_results: f.0,
                language_code: t.4,
                transcription_engine,
                profanity_filter: f.1,
                speech_model: t.5,
                hints: t.6,
                enable_automatic_punctuation: f.2,
                intelligence_service: t.7,
                config,
                parameters,
            }
        },
    )
}

fn stream() -> impl Strategy<Value = Stream> {
    let url = prop_oneof![
        word().prop_map(|w| format!("wss://h/{w}")),
        word().prop_map(|w| format!("/{w}"))
    ];
    let track = prop_oneof![
        Just(Track::Inbound),
        Just(Track::Outbound),
        Just(Track::Both)
    ];
    let params = proptest::collection::vec(("[a-z&<\"]{1,8}", attr()), 0..3);
    (
        url,
        opt_attr(),
        track,
        opt_attr(),
        method(),
        opt_attr(),
        params,
    )
        .prop_map(
            |(
                url,
                name,
                track,
                status_callback,
                status_callback_method,
                connector_name,
                parameters,
            )| Stream {
                url,
                name,
                track,
                status_callback,
                status_callback_method,
                connector_name,
                parameters,
            },
        )
}

fn record() -> impl Strategy<Value = Verb> {
    let trim = proptest::option::of(prop_oneof![
        Just("trim-silence".to_owned()),
        Just("do-not-trim".to_owned())
    ]);
    let a = (
        opt_attr(),
        method(),
        0u32..30,
        "[0-9*#]{0,4}",
        1u32..4000,
        any::<bool>(),
    );
    let b = (
        trim,
        opt_attr(),
        method(),
        prop::sample::subsequence(vec!["in-progress", "completed", "absent"], 1..=3),
        any::<bool>(),
        opt_attr(),
    );
    (a, b).prop_map(|(a, b)| {
        Verb::Record(Record {
            action: a.0,
            method: a.1,
            timeout_secs: a.2,
            finish_on_key: a.3,
            max_length_secs: a.4,
            play_beep: a.5,
            trim: b.0,
            recording_status_callback: b.1,
            recording_status_callback_method: b.2,
            recording_status_callback_events: b.3.into_iter().map(String::from).collect(),
            transcribe: b.4,
            transcribe_callback: b.5,
        })
    })
}

fn dial() -> impl Strategy<Value = Verb> {
    let noun = (
        prop_oneof![Just("Number"), Just("Client"), Just("Sip"), Just("Queue")],
        word(),
        opt_attr(),
        opt_attr(),
    )
        .prop_map(|(name, value, url, status)| {
            let mut attributes = Vec::new();
            if let Some(url) = url {
                attributes.push(("url".to_owned(), url));
            }
            if name != "Queue"
                && let Some(status) = status
            {
                attributes.push(("statusCallback".to_owned(), status));
            }
            DialNoun {
                name: name.to_owned(),
                value,
                attributes,
            }
        });
    let nouns = proptest::collection::vec(noun, 0..3);
    let a = (
        opt_attr(),
        method(),
        0u32..100,
        opt_attr(),
        0u32..20000,
        word(),
        nouns,
    );
    // `record` and `ringTone` take listed values only.
    let pick = |values: &'static [&'static str]| {
        prop::option::of(prop::sample::select(values).prop_map(String::from))
    };
    let b = (
        any::<bool>(),
        any::<bool>(),
        pick(&["do-not-record", "record-from-ringing-dual", "true"]),
        pick(&["us", "uk", "us-old"]),
        opt_attr(),
        method(),
        prop::sample::subsequence(vec!["in-progress", "completed", "absent"], 1..=3),
    );
    (a, b).prop_map(|(a, b)| {
        let target = a.6.first().map_or(a.5, |n| n.value.clone());
        Verb::Dial(Dial {
            action: a.0,
            method: a.1,
            timeout_secs: a.2,
            caller_id: a.3,
            time_limit_secs: a.4,
            target,
            nouns: a.6,
            hangup_on_star: b.0,
            answer_on_bridge: b.1,
            record: b.2,
            ring_tone: b.3,
            recording_status_callback: b.4,
            recording_status_callback_method: b.5,
            recording_status_callback_events: b.6.into_iter().map(String::from).collect(),
        })
    })
}

fn enqueue() -> impl Strategy<Value = Verb> {
    let task = proptest::option::of((
        prop_oneof![Just(String::new()), word()],
        proptest::option::of(0u32..10),
        proptest::option::of(1u32..1000),
    ));
    // Either a queue name, or a workflow with no name (a name is then optional).
    let target = prop_oneof![
        (word(), proptest::option::of(word())),
        word().prop_map(|sid| (String::new(), Some(sid))),
    ];
    (target, opt_attr(), method(), opt_attr(), method(), task).prop_map(
        |((queue, workflow_sid), action, method, wait_url, wait_url_method, task)| {
            Verb::Enqueue(Enqueue {
                queue,
                action,
                method,
                wait_url,
                wait_url_method,
                workflow_sid,
                task: task.map(|(attributes, priority, timeout_secs)| Task {
                    attributes,
                    priority,
                    timeout_secs,
                }),
            })
        },
    )
}

fn verb() -> impl Strategy<Value = Verb> {
    let other =
        |names: &'static [&'static str]| proptest::sample::select(names).prop_map(str::to_owned);
    prop_oneof![
        say(),
        play(true),
        pause(),
        gather(),
        Just(Verb::Hangup),
        prop_oneof![Just(RejectReason::Rejected), Just(RejectReason::Busy)]
            .prop_map(|reason| Verb::Reject(Reject { reason })),
        (word(), method()).prop_map(|(url, method)| Verb::Redirect(Redirect { url, method })),
        (
            opt_attr(),
            method(),
            prop_oneof![
                stream().prop_map(ConnectTarget::Stream),
                relay().prop_map(|r| ConnectTarget::ConversationRelay(Box::new(r))),
                other(&["Room", "VirtualAgent"]).prop_map(|name| ConnectTarget::Other { name }),
            ]
        )
            .prop_map(|(action, method, target)| Verb::Connect(Connect {
                action,
                method,
                target
            })),
        (
            opt_attr(),
            method(),
            prop_oneof![
                stream().prop_map(StartTarget::Stream),
                transcription().prop_map(|t| StartTarget::Transcription(Box::new(t))),
                other(&["Siprec", "Recording"]).prop_map(|name| StartTarget::Other { name }),
            ]
        )
            .prop_map(|(action, method, target)| Verb::Start(Start {
                action,
                method,
                target
            })),
        prop_oneof![
            opt_attr().prop_map(|stream_name| Stop {
                stream_name,
                ..Stop::default()
            }),
            other(&["Siprec", "Recording"]).prop_map(|name| Stop {
                other: Some(name),
                ..Stop::default()
            }),
            opt_attr().prop_map(|name| Stop {
                other: Some("Transcription".into()),
                name,
                ..Stop::default()
            }),
        ]
        .prop_map(Verb::Stop),
        record(),
        dial(),
        enqueue(),
        Just(Verb::Leave),
        other(&["Pay", "Refer", "Echo", "Sms", "Queue"])
            .prop_map(|name| Verb::Unsupported { name }),
    ]
}

const CONFERENCE_EVENTS: [&str; 9] = [
    "start",
    "end",
    "join",
    "leave",
    "mute",
    "hold",
    "modify",
    "speaker",
    "announcement",
];

fn events(all: &'static [&'static str], min: usize) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(all, min..=all.len())
        .prop_shuffle()
        .prop_map(|events| events.into_iter().map(str::to_owned).collect())
}

fn conference_options() -> impl Strategy<Value = ConferenceOptions> {
    let beep = prop_oneof![
        Just(Beep::True),
        Just(Beep::False),
        Just(Beep::OnEnter),
        Just(Beep::OnExit)
    ];
    let record = proptest::option::of(prop_oneof![
        Just("do-not-record".to_owned()),
        Just("record-from-start".to_owned())
    ]);
    let a = (
        any::<bool>(),
        beep,
        any::<bool>(),
        any::<bool>(),
        opt_attr(),
        method(),
        1u32..=250,
    );
    let b = (
        record,
        opt_attr(),
        method(),
        events(&CONFERENCE_EVENTS, 0),
        opt_attr(),
        opt_attr(),
    );
    (a, b).prop_map(|(a, b)| ConferenceOptions {
        muted: a.0,
        beep: a.1,
        start_conference_on_enter: a.2,
        end_conference_on_exit: a.3,
        wait_url: a.4,
        wait_method: a.5,
        max_participants: a.6,
        record: b.0,
        status_callback: b.1,
        status_callback_method: b.2,
        status_callback_events: b.3,
        coach: b.4,
        participant_label: b.5,
    })
}

fn number_options() -> impl Strategy<Value = NumberOptions> {
    // An empty list reads as the default ["completed"], so at least one event.
    let events = events(&["initiated", "ringing", "answered", "completed"], 1);
    (
        opt_attr(),
        method(),
        proptest::option::of("[0-9*#wW]{0,6}"),
        opt_attr(),
        method(),
        events,
    )
        .prop_map(
            |(url, method, send_digits, status_callback, status_callback_method, events)| {
                NumberOptions {
                    url,
                    method,
                    send_digits,
                    status_callback,
                    status_callback_method,
                    status_callback_events: events,
                }
            },
        )
}

/// Attributes an app would write for `o`, every one explicit (defaults included).
fn conference_attributes(o: &ConferenceOptions) -> Vec<(String, String)> {
    let beep = match o.beep {
        Beep::True => "true",
        Beep::False => "false",
        Beep::OnEnter => "onEnter",
        Beep::OnExit => "onExit",
    };
    let mut attrs = vec![
        ("muted", o.muted.to_string()),
        ("beep", beep.to_owned()),
        (
            "startConferenceOnEnter",
            o.start_conference_on_enter.to_string(),
        ),
        ("endConferenceOnExit", o.end_conference_on_exit.to_string()),
        ("waitMethod", o.wait_method.as_str().to_owned()),
        ("maxParticipants", o.max_participants.to_string()),
        (
            "statusCallbackMethod",
            o.status_callback_method.as_str().to_owned(),
        ),
        ("statusCallbackEvent", o.status_callback_events.join(" ")),
    ];
    for (key, value) in [
        ("waitUrl", &o.wait_url),
        ("record", &o.record),
        ("statusCallback", &o.status_callback),
        ("coach", &o.coach),
        ("participantLabel", &o.participant_label),
    ] {
        if let Some(value) = value {
            attrs.push((key, value.clone()));
        }
    }
    attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn number_attributes(o: &NumberOptions) -> Vec<(String, String)> {
    let mut attrs = vec![
        ("method", o.method.as_str().to_owned()),
        (
            "statusCallbackMethod",
            o.status_callback_method.as_str().to_owned(),
        ),
        ("statusCallbackEvent", o.status_callback_events.join(" ")),
    ];
    for (key, value) in [
        ("url", &o.url),
        ("sendDigits", &o.send_digits),
        ("statusCallback", &o.status_callback),
    ] {
        if let Some(value) = value {
            attrs.push((key, value.clone()));
        }
    }
    attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn typed_noun_views_read_back_what_was_written(
        conference in conference_options(),
        number in number_options(),
    ) {
        let dial = Dial {
            target: "room".into(),
            nouns: vec![
                DialNoun {
                    name: "Conference".into(),
                    value: "room".into(),
                    attributes: conference_attributes(&conference),
                },
                DialNoun {
                    name: "Number".into(),
                    value: "+1".into(),
                    attributes: number_attributes(&number),
                },
            ],
            ..Dial::default()
        };
        let xml = Document { verbs: vec![Node::new(Verb::Dial(dial))] }.to_xml();
        let doc = parse(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        let Verb::Dial(d) = &doc.verbs[0].verb else {
            return Err(TestCaseError::fail(xml));
        };
        prop_assert_eq!(d.nouns[0].kind(), NounKind::Conference);
        prop_assert_eq!(d.nouns[0].conference_options(), conference);
        prop_assert_eq!(d.nouns[1].kind(), NounKind::Number);
        prop_assert_eq!(d.nouns[1].number_options(), number);
    }

    #[test]
    fn random_documents_round_trip(verbs in proptest::collection::vec(verb(), 0..8)) {
        let doc = Document { verbs: verbs.into_iter().map(Node::new).collect() };
        let xml = doc.to_xml();
        let back = parse(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(back.verbs, doc.verbs, "{}", xml);
    }
}
