//! `<Connect><ConversationRelay>`: twilio-python's output with every attribute it names,
//! Twilio's legacy `interruptible` booleans, the nested `<Language>` and `<Parameter>`, a
//! round trip, and the values Twilio's reference rules out.

mod common;

use common::{ok, one, schema_err};
use dialtone_twiml::{
    Connect, ConnectTarget, ConversationRelay, Method, RelayInput, RelayLanguage, Verb, parse,
};

/// twilio-python 9.13.0: `Connect(action=…).conversation_relay(…)` with every typed keyword,
/// `.language(…)` and `.parameter(…)` (attributes sorted, as the library writes them).
const TWILIO_PYTHON: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="https://example.com/connect-action"><ConversationRelay debug="debugging speaker-events tokens-played" dtmfDetection="true" elevenlabsTextNormalization="on" hints="Twilio,ConversationRelay" intelligenceService="GAxxx" interruptSensitivity="high" interruptible="true" language="en-US" partialPrompts="false" preemptible="false" profanityFilter="true" reportInputDuringAgentSpeech="none" speechModel="nova-3-general" transcriptionLanguage="en-US" transcriptionProvider="Deepgram" ttsLanguage="en-US" ttsProvider="ElevenLabs" url="wss://example.com/ws" voice="UgBBYS2sOqTuMpoF3BR0" welcomeGreeting="Hi! Ask me anything!" welcomeGreetingInterruptible="speech"><Language code="sv-SE" speechModel="telephony" transcriptionProvider="Google" ttsProvider="Google" voice="sv-SE-Standard-A" /><Parameter name="foo" value="bar" /></ConversationRelay></Connect></Response>"#;

/// twilio-python's keywords that are camelCase in the library itself.
const TWILIO_PYTHON_CAMEL: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><ConversationRelay backgroundNoiseReduction="true" deepgramSmartFormat="true" events="x" ignoreBackchannel="true" speechTimeout="900" url="wss://x/ws" /></Connect></Response>"#;

fn relay(xml: &str) -> (Connect, ConversationRelay) {
    let doc = ok(xml);
    let Verb::Connect(c) = doc.verbs.into_iter().next().expect("a verb").verb else {
        panic!("not <Connect>")
    };
    let ConnectTarget::ConversationRelay(r) = c.target.clone() else {
        panic!("not <ConversationRelay>: {:?}", c.target)
    };
    (c, *r)
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn twilio_python_output_with_every_attribute() {
    let (connect, r) = relay(TWILIO_PYTHON);
    assert_eq!(
        connect.action.as_deref(),
        Some("https://example.com/connect-action")
    );
    assert_eq!(connect.method, Method::Post);
    let expected = ConversationRelay {
        url: "wss://example.com/ws".into(),
        welcome_greeting: Some("Hi! Ask me anything!".into()),
        welcome_greeting_interruptible: RelayInput::Speech,
        interruptible: RelayInput::Any,
        preemptible: false,
        dtmf_detection: true,
        partial_prompts: false,
        report_input_during_agent_speech: RelayInput::None,
        language: Some("en-US".into()),
        tts_language: Some("en-US".into()),
        transcription_language: Some("en-US".into()),
        hints: Some("Twilio,ConversationRelay".into()),
        debug: Some("debugging speaker-events tokens-played".into()),
        settings: pairs(&[
            ("elevenlabsTextNormalization", "on"),
            ("intelligenceService", "GAxxx"),
            ("interruptSensitivity", "high"),
            ("profanityFilter", "true"),
            ("speechModel", "nova-3-general"),
            ("transcriptionProvider", "Deepgram"),
            ("ttsProvider", "ElevenLabs"),
            ("voice", "UgBBYS2sOqTuMpoF3BR0"),
        ]),
        languages: vec![RelayLanguage {
            code: "sv-SE".into(),
            tts_provider: Some("Google".into()),
            voice: Some("sv-SE-Standard-A".into()),
            transcription_provider: Some("Google".into()),
            speech_model: Some("telephony".into()),
        }],
        parameters: pairs(&[("foo", "bar")]),
    };
    assert_eq!(r, expected);

    let (_, camel) = relay(TWILIO_PYTHON_CAMEL);
    assert_eq!(
        camel.settings,
        pairs(&[
            ("backgroundNoiseReduction", "true"),
            ("deepgramSmartFormat", "true"),
            ("events", "x"),
            ("ignoreBackchannel", "true"),
            ("speechTimeout", "900"),
        ])
    );
}

#[test]
fn defaults_and_the_languages_in_effect() {
    let (connect, r) =
        relay(r#"<Response><Connect><ConversationRelay url="wss://a/ws"/></Connect></Response>"#);
    assert_eq!(connect.action, None);
    assert_eq!(r.interruptible, RelayInput::Any);
    assert_eq!(r.welcome_greeting_interruptible, RelayInput::Any);
    assert_eq!(r.report_input_during_agent_speech, RelayInput::None);
    assert!(!r.preemptible && !r.dtmf_detection && !r.partial_prompts);
    assert_eq!(
        (r.tts_language(), r.transcription_language()),
        ("en-US", "en-US")
    );
    let (_, r) = relay(
        r#"<Response><Connect><ConversationRelay url="ws://127.0.0.1:9/ws" language="fr-FR" transcriptionLanguage="de-DE"/></Connect></Response>"#,
    );
    assert_eq!(
        (r.tts_language(), r.transcription_language()),
        ("fr-FR", "de-DE")
    );
}

#[test]
fn interruptible_takes_four_modes_and_the_legacy_booleans() {
    for (value, mode) in [
        ("none", RelayInput::None),
        ("dtmf", RelayInput::Dtmf),
        ("speech", RelayInput::Speech),
        ("any", RelayInput::Any),
        ("true", RelayInput::Any),
        ("false", RelayInput::None),
        ("False", RelayInput::None),
    ] {
        let (_, r) = relay(&format!(
            r#"<Response><Connect><ConversationRelay url="wss://a/ws" interruptible="{value}" welcomeGreetingInterruptible="{value}" reportInputDuringAgentSpeech="{value}"/></Connect></Response>"#
        ));
        assert_eq!(r.interruptible, mode, "{value}");
        assert_eq!(r.welcome_greeting_interruptible, mode, "{value}");
        assert_eq!(r.report_input_during_agent_speech, mode, "{value}");
    }
    assert!(RelayInput::Any.speech() && RelayInput::Any.dtmf());
    assert!(RelayInput::Speech.speech() && !RelayInput::Speech.dtmf());
    assert!(!RelayInput::None.speech() && !RelayInput::None.dtmf());
}

#[test]
fn written_back_it_parses_to_the_same_document() {
    for xml in [TWILIO_PYTHON, TWILIO_PYTHON_CAMEL] {
        let doc = ok(xml);
        assert_eq!(parse(&doc.to_xml()).unwrap(), doc, "{}", doc.to_xml());
    }
    // Defaults are left out, as an app would write them.
    let doc = ok(
        r#"<Response><Connect><ConversationRelay url="wss://a/ws" interruptible="any" preemptible="false"/></Connect></Response>"#,
    );
    assert!(
        doc.to_xml()
            .ends_with(r#"<Connect><ConversationRelay url="wss://a/ws"/></Connect></Response>"#),
        "{}",
        doc.to_xml()
    );
}

#[test]
fn what_twilio_rules_out_is_12200() {
    let relay = |attrs: &str, body: &str| {
        format!(
            "<Response><Connect><ConversationRelay {attrs}>{body}</ConversationRelay></Connect></Response>"
        )
    };
    schema_err(&relay("", ""), 1, "ConversationRelay", "requires a url");
    schema_err(
        &relay(r#"url="https://a/ws""#, ""),
        1,
        "ConversationRelay",
        "must begin with wss://",
    );
    schema_err(
        &relay(r#"url="/ws""#, ""),
        1,
        "ConversationRelay",
        "must begin with wss://",
    );
    schema_err(
        &relay(r#"url="wss://a" interruptible="sometimes""#, ""),
        1,
        "ConversationRelay",
        "none, dtmf, speech, any",
    );
    schema_err(
        &relay(r#"url="wss://a" dtmfDetection="yes""#, ""),
        1,
        "ConversationRelay",
        "not true or false",
    );
    schema_err(
        &relay(r#"url="wss://a" interruptSensitivity="extreme""#, ""),
        1,
        "ConversationRelay",
        "low, medium, high",
    );
    schema_err(
        &relay(r#"url="wss://a" speechTimeout="soon""#, ""),
        1,
        "ConversationRelay",
        "speechTimeout",
    );
    schema_err(
        &relay(r#"url="wss://a" welcomegreeting="hi""#, ""),
        1,
        "ConversationRelay",
        "did you mean welcomeGreeting",
    );
    schema_err(
        &relay(r#"url="wss://a""#, "<Language/>"),
        1,
        "Language",
        "requires a code",
    );
    schema_err(
        &relay(r#"url="wss://a""#, "<Say>hi</Say>"),
        1,
        "Say",
        "<Language>, <Parameter>",
    );
    schema_err(
        &relay(r#"url="wss://a""#, "some words"),
        1,
        "ConversationRelay",
        "text",
    );
    // One noun per <Connect>.
    schema_err(
        r#"<Response><Connect><ConversationRelay url="wss://a"/><Stream url="wss://b"/></Connect></Response>"#,
        1,
        "Stream",
        "only one noun",
    );
}

#[test]
fn a_relay_is_a_connect_target_like_a_stream() {
    let Verb::Connect(c) = one(
        r#"<Connect method="GET" action="/done"><ConversationRelay url="wss://a"><Parameter name="k" value="v"/></ConversationRelay></Connect>"#,
    ) else {
        panic!()
    };
    assert_eq!(c.method, Method::Get);
    let ConnectTarget::ConversationRelay(r) = c.target else {
        panic!()
    };
    assert_eq!(r.parameters, pairs(&[("k", "v")]));
}
