//! Documents real apps send must parse: twilio-python's one-line output, hand-written TwiML with
//! whitespace, comments, CDATA, entities, a BOM, SSML, and the unsimulated-but-valid verbs.

mod common;

use common::{ok, one, verbs};
use dialtone_twiml::{
    Beep, ConferenceOptions, Connect, ConnectTarget, Dial, DialNoun, Enqueue, Gather, GatherInput,
    Method, Node, NounKind, NumberOptions, Pause, Play, QueueOptions, Record, Redirect, Reject,
    RejectReason, Say, Start, StartTarget, Stop, Stream, Task, Track, Verb,
};

/// Generated with twilio-python 9.11.0 (shared/docs/twilio-protocol.md §3).
const TWILIO_PYTHON: &str = r##"<?xml version="1.0" encoding="UTF-8"?><Response><Start><Stream name="fork" statusCallback="https://h/ss" statusCallbackMethod="POST" track="both_tracks" url="wss://h/fork"><Parameter name="k" value="v" /></Stream></Start><Gather action="/g" actionOnEmptyResult="true" finishOnKey="#" input="dtmf speech" method="POST" numDigits="1" speechTimeout="auto" timeout="3"><Say language="en-US" loop="1" voice="Polly.Joanna">Press one</Say></Gather><Pause length="2" /><Play loop="2">https://h/a.wav</Play><Play digits="ww1234" /><Record action="/rec" finishOnKey="#" maxLength="30" playBeep="false" timeout="5" trim="do-not-trim" /><Stop><Stream name="fork" /></Stop><Connect action="/after"><Stream statusCallback="https://h/ss" url="wss://h/media"><Parameter name="token" value="abc" /></Stream></Connect><Redirect method="POST">/next</Redirect><Reject reason="busy" /><Hangup /></Response>"##;

#[test]
fn twilio_python_output_every_field() {
    let doc = ok(TWILIO_PYTHON);
    let lines: Vec<u32> = doc.verbs.iter().map(|n| n.line).collect();
    assert!(
        lines.iter().all(|&l| l == 1),
        "one-line document: {lines:?}"
    );
    let v: Vec<Verb> = doc.verbs.into_iter().map(|n| n.verb).collect();
    let expected = vec![
        Verb::Start(Start {
            action: None,
            method: Method::Post,
            target: StartTarget::Stream(Stream {
                url: "wss://h/fork".into(),
                name: Some("fork".into()),
                track: Track::Both,
                status_callback: Some("https://h/ss".into()),
                status_callback_method: Method::Post,
                connector_name: None,
                parameters: vec![("k".into(), "v".into())],
            }),
        }),
        Verb::Gather(Gather {
            input: vec![GatherInput::Dtmf, GatherInput::Speech],
            action: Some("/g".into()),
            method: Method::Post,
            timeout_secs: 3,
            num_digits: Some(1),
            finish_on_key: "#".into(),
            action_on_empty_result: true,
            speech_timeout: Some("auto".into()),
            children: vec![Node::new(Verb::Say(Say {
                text: "Press one".into(),
                voice: Some("Polly.Joanna".into()),
                language: Some("en-US".into()),
                loop_count: 1,
            }))],
            ..Gather::default()
        }),
        Verb::Pause(Pause { length_secs: 2 }),
        Verb::Play(Play {
            url: Some("https://h/a.wav".into()),
            loop_count: 2,
            digits: None,
        }),
        Verb::Play(Play {
            url: None,
            loop_count: 1,
            digits: Some("ww1234".into()),
        }),
        Verb::Record(Record {
            action: Some("/rec".into()),
            finish_on_key: "#".into(),
            max_length_secs: 30,
            play_beep: false,
            timeout_secs: 5,
            trim: Some("do-not-trim".into()),
            ..Record::default()
        }),
        Verb::Stop(Stop {
            stream_name: Some("fork".into()),
            ..Stop::default()
        }),
        Verb::Connect(Connect {
            action: Some("/after".into()),
            method: Method::Post,
            target: ConnectTarget::Stream(Stream {
                url: "wss://h/media".into(),
                status_callback: Some("https://h/ss".into()),
                parameters: vec![("token".into(), "abc".into())],
                ..Stream::default()
            }),
        }),
        Verb::Redirect(Redirect {
            url: "/next".into(),
            method: Method::Post,
        }),
        Verb::Reject(Reject {
            reason: RejectReason::Busy,
        }),
        Verb::Hangup,
    ];
    assert_eq!(v, expected);
}

#[test]
fn pretty_printed_with_comments_and_lines() {
    let xml = "<?xml version=\"1.0\"?>\n\
               <!-- menu -->\n\
               <Response>\n\
               \x20 <!-- greet -->\n\
               \x20 <Say>\n\
               \x20   Hello   there\n\
               \x20 </Say>\n\
               \n\
               \x20 <Gather numDigits=\"1\">\n\
               \x20   <Play>\n\
               \x20     https://x/a.mp3\n\
               \x20   </Play>\n\
               \x20 </Gather>\n\
               </Response>\n";
    let doc = ok(xml);
    assert_eq!(doc.verbs[0].line, 5);
    assert_eq!(
        doc.verbs[0].verb,
        Verb::Say(Say {
            text: "Hello there".into(),
            ..Say::default()
        })
    );
    assert_eq!(doc.verbs[1].line, 9);
    let Verb::Gather(g) = &doc.verbs[1].verb else {
        panic!("not a gather")
    };
    assert_eq!(g.children[0].line, 10);
    assert_eq!(
        g.children[0].verb,
        Verb::Play(Play {
            url: Some("https://x/a.mp3".into()),
            ..Play::default()
        })
    );
}

#[test]
fn crlf_line_endings_and_bom() {
    let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Response>\r\n<Hangup/>\r\n</Response>\r\n";
    let doc = ok(xml);
    assert_eq!(doc.verbs[0].line, 3);
    assert_eq!(doc.verbs[0].verb, Verb::Hangup);
}

#[test]
fn no_declaration_and_empty_response() {
    assert!(ok("<Response/>").verbs.is_empty());
    assert!(ok("<Response></Response>").verbs.is_empty());
    assert!(ok("  \n<Response>\n</Response>\n\n").verbs.is_empty());
    assert!(
        ok("<!-- c --><Response/><!-- trailing -->")
            .verbs
            .is_empty()
    );
}

#[test]
fn entities_and_char_refs_in_text_and_attributes() {
    assert_eq!(
        one(
            "<Say voice=\"a&amp;b\">Tom &amp; Jerry &lt;3 &#8364;&#x41; &quot;q&quot; &apos;</Say>"
        ),
        Verb::Say(Say {
            text: "Tom & Jerry <3 €A \"q\" '".into(),
            voice: Some("a&b".into()),
            ..Say::default()
        })
    );
    assert_eq!(
        one("<Redirect>/next?a=1&amp;b=2</Redirect>"),
        Verb::Redirect(Redirect {
            url: "/next?a=1&b=2".into(),
            method: Method::Post
        })
    );
    let Verb::Gather(g) = one(r#"<Gather action="/g?a=1&amp;b=2"/>"#) else {
        panic!()
    };
    assert_eq!(g.action.as_deref(), Some("/g?a=1&b=2"));
}

#[test]
fn cdata_text() {
    assert_eq!(
        one("<Say><![CDATA[Fish & <chips>]]></Say>"),
        Verb::Say(Say {
            text: "Fish & <chips>".into(),
            ..Say::default()
        })
    );
    assert_eq!(
        one("<Play>  <![CDATA[https://x/a.wav?a=1&b=2]]>  </Play>"),
        Verb::Play(Play {
            url: Some("https://x/a.wav?a=1&b=2".into()),
            ..Play::default()
        })
    );
}

#[test]
fn ssml_inside_say_contributes_text() {
    let body = r#"<Say voice="Polly.Joanna">Hi <break time="1s"/>there. <emphasis level="strong">Big</emphasis> <prosody rate="slow" pitch="low">slow</prosody> <say-as interpret-as="spell-out">ABC</say-as> <sub alias="World Wide Web">WWW</sub> <w role="amazon:VB">read</w><p>para</p><s>sentence</s><phoneme alphabet="ipa" ph="x">tomato</phoneme> <lang xml:lang="fr-FR">bonjour</lang> <amazon:effect name="whispered">psst</amazon:effect></Say>"#;
    let Verb::Say(say) = one(body) else {
        panic!("not a say")
    };
    assert_eq!(
        say.text,
        "Hi there. Big slow ABC WWW read para sentence tomato bonjour psst"
    );
}

#[test]
fn unsupported_verbs_are_recognised_and_skipped() {
    let v = verbs(
        r#"<Response>
  <Enqueue waitUrl="/wait" workflowSid="WW1"><Task>{"a":1}</Task></Enqueue>
  <Leave/>
  <Pay chargeAmount="1.00"><Prompt for="payment-card-number"><Say>Card</Say></Prompt></Pay>
  <Refer><Sip>sip:a@b</Sip></Refer>
  <Echo/>
  <Sms to="+1">hi</Sms>
  <Queue>support</Queue>
</Response>"#,
    );
    let names: Vec<&str> = v.iter().map(Verb::name).collect();
    assert_eq!(
        names,
        ["Enqueue", "Leave", "Pay", "Refer", "Echo", "Sms", "Queue"]
    );
    // Enqueue and Leave are typed verbs now; the rest stay recognised-but-unsimulated.
    assert!(matches!(&v[0], Verb::Enqueue(e) if e.workflow_sid.as_deref() == Some("WW1")));
    assert_eq!(v[1], Verb::Leave);
    assert!(
        v[2..]
            .iter()
            .all(|verb| matches!(verb, Verb::Unsupported { .. }))
    );
}

/// What twilio-python's `VoiceResponse` writes for a queue and a moderated conference
/// (attributes sorted, `" />"` self-closing).
const TWILIO_PYTHON_QUEUES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Enqueue action="/done" waitUrl="/wait">support</Enqueue><Enqueue workflowSid="WW0123"><Task priority="5" timeout="200">{"account_number": "12345abcdef"}</Task></Enqueue><Leave /><Dial><Conference beep="onEnter" startConferenceOnEnter="false">room</Conference></Dial><Dial><Queue method="GET" url="/about-to-connect">support</Queue></Dial></Response>"#;

#[test]
fn twilio_python_queues_and_conferences() {
    let v = verbs(TWILIO_PYTHON_QUEUES);
    assert_eq!(v.len(), 5);
    assert_eq!(
        v[0],
        Verb::Enqueue(Enqueue {
            queue: "support".into(),
            action: Some("/done".into()),
            wait_url: Some("/wait".into()),
            ..Enqueue::default()
        })
    );
    assert_eq!(
        v[1],
        Verb::Enqueue(Enqueue {
            workflow_sid: Some("WW0123".into()),
            task: Some(Task {
                attributes: r#"{"account_number": "12345abcdef"}"#.into(),
                priority: Some(5),
                timeout_secs: Some(200),
            }),
            ..Enqueue::default()
        })
    );
    assert_eq!(v[2], Verb::Leave);
    let Verb::Dial(d) = &v[3] else {
        panic!("not a dial")
    };
    assert_eq!(d.target, "room");
    assert_eq!(d.nouns[0].kind(), NounKind::Conference);
    assert_eq!(
        d.nouns[0].conference_options(),
        ConferenceOptions {
            beep: Beep::OnEnter,
            start_conference_on_enter: false,
            ..ConferenceOptions::default()
        }
    );
    let Verb::Dial(d) = &v[4] else {
        panic!("not a dial")
    };
    assert_eq!(d.nouns[0].kind(), NounKind::Queue);
    assert_eq!(
        d.nouns[0].queue_options(),
        QueueOptions {
            url: Some("/about-to-connect".into()),
            method: Method::Get,
        }
    );
}

#[test]
fn enqueue_text_and_task_in_pretty_printed_documents() {
    let v = verbs(
        "<Response>\n  <Enqueue workflowSid=\"WW1\">\n    <Task>\n      {\"lang\": \"fr\"}\n    </Task>\n  </Enqueue>\n  <Enqueue>\n    <![CDATA[sales & support]]>\n  </Enqueue>\n</Response>",
    );
    let Verb::Enqueue(e) = &v[0] else {
        panic!("not an enqueue")
    };
    assert_eq!(e.queue, "");
    assert_eq!(
        e.task.as_ref().map(|t| t.attributes.as_str()),
        Some(r#"{"lang": "fr"}"#)
    );
    let Verb::Enqueue(e) = &v[1] else {
        panic!("not an enqueue")
    };
    assert_eq!(e.queue, "sales & support");
    assert_eq!(e.task, None);
}

#[test]
fn connect_and_start_other_nouns() {
    assert_eq!(
        one(r#"<Connect action="/a"><Room participantIdentity="p">x</Room></Connect>"#),
        Verb::Connect(Connect {
            action: Some("/a".into()),
            method: Method::Post,
            target: ConnectTarget::Other {
                name: "Room".into()
            },
        })
    );
    for noun in ["Room", "VirtualAgent", "Conversation"] {
        let Verb::Connect(c) = one(&format!("<Connect><{noun}>x</{noun}></Connect>")) else {
            panic!()
        };
        assert_eq!(c.target, ConnectTarget::Other { name: noun.into() });
    }
    for noun in ["Siprec", "Recording"] {
        let Verb::Start(s) = one(&format!("<Start><{noun} name=\"n\"/></Start>")) else {
            panic!()
        };
        assert_eq!(s.target, StartTarget::Other { name: noun.into() });
        let Verb::Stop(s) = one(&format!("<Stop><{noun} name=\"n\"/></Stop>")) else {
            panic!()
        };
        assert_eq!(
            s,
            Stop {
                other: Some(noun.into()),
                ..Stop::default()
            }
        );
    }
}

#[test]
fn dial_nouns_and_text() {
    let Verb::Dial(d) = one("<Dial>\n  +15551234567\n</Dial>") else {
        panic!()
    };
    assert_eq!(
        d,
        Dial {
            target: "+15551234567".into(),
            ..Dial::default()
        }
    );

    let Verb::Dial(d) = one(
        r#"<Dial callerId="+15550000000" timeout="10"><Number sendDigits="ww12" statusCallbackEvent="answered completed">+15551112222</Number><Client><Identity>alice</Identity><Parameter name="k" value="v"/></Client><Sip username="u" password="p">sip:bob@example.com</Sip></Dial>"#,
    ) else {
        panic!()
    };
    assert_eq!(d.target, "+15551112222");
    assert_eq!(d.caller_id.as_deref(), Some("+15550000000"));
    assert_eq!(d.timeout_secs, 10);
    assert_eq!(
        d.nouns,
        vec![
            DialNoun {
                name: "Number".into(),
                value: "+15551112222".into(),
                attributes: vec![
                    ("sendDigits".into(), "ww12".into()),
                    ("statusCallbackEvent".into(), "answered completed".into()),
                ],
            },
            DialNoun {
                name: "Client".into(),
                value: "alice".into(),
                attributes: vec![]
            },
            DialNoun {
                name: "Sip".into(),
                value: "sip:bob@example.com".into(),
                attributes: vec![
                    ("username".into(), "u".into()),
                    ("password".into(), "p".into())
                ],
            },
        ]
    );
    assert_eq!(
        d.nouns[0].number_options(),
        NumberOptions {
            send_digits: Some("ww12".into()),
            status_callback_events: vec!["answered".into(), "completed".into()],
            ..NumberOptions::default()
        }
    );
    assert_eq!(d.nouns[1].number_options(), NumberOptions::default());
    let Verb::Dial(d) = one(
        r#"<Dial><Conference startConferenceOnEnter="true" waitMethod="GET">room</Conference></Dial>"#,
    ) else {
        panic!()
    };
    assert_eq!(d.target, "room");
    assert_eq!(d.nouns[0].conference_options().wait_method, Method::Get);
}

#[test]
fn hangup_and_reject_accept_parameters() {
    assert_eq!(
        one(r#"<Hangup><Parameter name="why" value="done"/></Hangup>"#),
        Verb::Hangup
    );
    assert_eq!(
        one(r#"<Reject><Parameter name="a" value="b"/></Reject>"#),
        Verb::Reject(Reject {
            reason: RejectReason::Rejected
        })
    );
}

#[test]
fn namespace_declarations_and_response_version_are_accepted() {
    let v = verbs(
        r#"<Response version="2010-04-01" xmlns:amazon="https://amazon"><Say xmlns="x">hi</Say></Response>"#,
    );
    assert_eq!(
        v,
        [Verb::Say(Say {
            text: "hi".into(),
            ..Say::default()
        })]
    );
}

#[test]
fn doctype_and_processing_instructions_are_ignored() {
    let v = verbs(
        "<?xml version=\"1.0\"?><!DOCTYPE Response><?pi x?><Response><?pi y?><Hangup/></Response>",
    );
    assert_eq!(v, [Verb::Hangup]);
}

#[test]
fn reject_anywhere_and_empty_say() {
    let v = verbs("<Response><Say/><Reject/></Response>");
    assert_eq!(
        v,
        [Verb::Say(Say::default()), Verb::Reject(Reject::default())]
    );
}
