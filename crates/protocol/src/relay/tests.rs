use super::*;

fn setup() -> Setup {
    Setup {
        session_id: "VX00000000000000000000000000000000".into(),
        account_sid: "AC00000000000000000000000000000000".into(),
        parent_call_sid: String::new(),
        call_sid: "CA00000000000000000000000000000000".into(),
        from: "+18005550100".into(),
        to: "+18005550101".into(),
        forwarded_from: "+18005550102".into(),
        call_type: "PSTN".into(),
        caller_name: String::new(),
        direction: "inbound".into(),
        call_status: "RINGING".into(),
        custom_parameters: vec![("callReference".into(), "bar".into())],
    }
}

#[test]
fn setup_is_twilios_example_key_for_key() {
    // The example on Twilio's WebSocket messages page, in its order.
    let expected = r#"{"type":"setup","sessionId":"VX00000000000000000000000000000000","accountSid":"AC00000000000000000000000000000000","parentCallSid":"","callSid":"CA00000000000000000000000000000000","from":"+18005550100","to":"+18005550101","forwardedFrom":"+18005550102","callType":"PSTN","callerName":"","direction":"inbound","callStatus":"RINGING","customParameters":{"callReference":"bar"}}"#;
    assert_eq!(ToApp::Setup(Box::new(setup())).to_json(), expected);
    // Parameters keep their document order, not a sorted one.
    let mut s = setup();
    s.custom_parameters = vec![("z".into(), "1".into()), ("a".into(), "2".into())];
    assert!(
        ToApp::Setup(Box::new(s))
            .to_json()
            .ends_with(r#""customParameters":{"z":"1","a":"2"}}"#)
    );
}

#[test]
fn the_other_messages_twilio_sends() {
    let prompt = ToApp::Prompt {
        voice_prompt: "Hi! Can you tell me about life?".into(),
        lang: "en-US".into(),
        last: true,
    };
    assert_eq!(
        prompt.to_json(),
        r#"{"type":"prompt","voicePrompt":"Hi! Can you tell me about life?","lang":"en-US","last":true}"#
    );
    assert_eq!(
        ToApp::Dtmf { digit: "1".into() }.to_json(),
        r#"{"type":"dtmf","digit":"1"}"#
    );
    let interrupt = ToApp::Interrupt {
        utterance_until_interrupt: "Life is a complex set of".into(),
        duration_until_interrupt_ms: 460,
    };
    assert_eq!(
        interrupt.to_json(),
        r#"{"type":"interrupt","utteranceUntilInterrupt":"Life is a complex set of","durationUntilInterruptMs":460}"#
    );
    assert_eq!(
        ToApp::invalid(r#"{ "foo" : "bar" }"#).to_json(),
        r#"{"type":"error","description":"Invalid message received: { \"foo\" : \"bar\" }"}"#
    );
}

#[test]
fn what_tutorial_apps_send_is_understood() {
    let ok = |s: &str| parse_app_message(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        ok(
            r#"{"type":"text","token":"Hello world!","last":false,"interruptible":false,"preemptible":false}"#
        ),
        FromApp::Text {
            token: "Hello world!".into(),
            last: false,
            lang: None,
            interruptible: Some(false),
            preemptible: Some(false),
        }
    );
    // The streaming tutorial ends each reply with an empty last token.
    assert_eq!(
        ok(r#"{"type":"text","token":"","last":true}"#),
        FromApp::Text {
            token: String::new(),
            last: true,
            lang: None,
            interruptible: None,
            preemptible: None,
        }
    );
    assert_eq!(
        ok(r#"{"type":"text","token":" the","lang":"sv-SE"}"#),
        FromApp::Text {
            token: " the".into(),
            last: false,
            lang: Some("sv-SE".into()),
            interruptible: None,
            preemptible: None,
        }
    );
    assert_eq!(
        ok(
            r#"{"type":"play","source":"https://api.twilio.com/cowbell.mp3","loop":0,"preemptible":false,"interruptible":true}"#
        ),
        FromApp::Play {
            source: "https://api.twilio.com/cowbell.mp3".into(),
            loop_count: PLAY_LOOP_MAX,
            preemptible: Some(false),
            interruptible: Some(true),
        }
    );
    assert!(matches!(
        ok(r#"{"type":"play","source":"http://127.0.0.1:9/a.wav"}"#),
        FromApp::Play { loop_count: 1, .. }
    ));
    assert_eq!(
        ok(r#"{"type":"sendDigits","digits":"9www4085551212"}"#),
        FromApp::SendDigits {
            digits: "9www4085551212".into()
        }
    );
    assert_eq!(
        ok(r#"{"type":"language","ttsLanguage":"sv-SE","transcriptionLanguage":"en-US"}"#),
        FromApp::Language {
            tts_language: Some("sv-SE".into()),
            transcription_language: Some("en-US".into()),
        }
    );
    assert_eq!(
        ok(r#"{"type":"end","handoffData":"{\"reasonCode\":\"live-agent-handoff\"}"}"#),
        FromApp::End {
            handoff_data: Some(r#"{"reasonCode":"live-agent-handoff"}"#.into())
        }
    );
    assert_eq!(ok(r#"{"type":"end"}"#), FromApp::End { handoff_data: None });
}

#[test]
fn broken_rules_are_invalid_and_the_session_goes_on() {
    for (msg, needle) in [
        (r#"{"type":"text"}"#, "token is required"),
        (r#"{"type":"text","token":null}"#, "token is required"),
        (r#"{"type":"text","token":5}"#, "token 5 is not a string"),
        (
            r#"{"type":"text","token":"a","last":"yes"}"#,
            "last \"yes\" is not true or false",
        ),
        (r#"{"type":"play"}"#, "source is required"),
        (
            r#"{"type":"play","source":"cowbell.mp3"}"#,
            "not an http(s) URL",
        ),
        (
            r#"{"type":"play","source":"https://a/b","loop":1001}"#,
            "loop 1001 is not 0 to 1000",
        ),
        (
            r#"{"type":"play","source":"https://a/b","loop":-1}"#,
            "loop -1 is not 0 to 1000",
        ),
        (r#"{"type":"sendDigits","digits":""}"#, "digits is empty"),
        (r#"{"type":"sendDigits","digits":"12a"}"#, "holds 'a'"),
        (
            r#"{"type":"language"}"#,
            "needs ttsLanguage or transcriptionLanguage",
        ),
        (
            r#"{"type":"end","handoffData":{"a":1}}"#,
            "handoffData {\"a\":1} is not a string",
        ),
    ] {
        let e = parse_app_message(msg).unwrap_err();
        assert!(!e.unidentified(), "{msg}: {e}");
        assert!(e.to_string().contains(needle), "{msg}: {e}");
    }
}

#[test]
fn unidentified_messages_count_towards_the_close() {
    for msg in [
        "not json",
        "[1,2]",
        r#"{"token":"hi"}"#,
        r#"{"type":5}"#,
        r#"{"type":"media","media":{}}"#,
        "",
    ] {
        let e = parse_app_message(msg).unwrap_err();
        assert!(e.unidentified(), "{msg}: {e}");
    }
}
