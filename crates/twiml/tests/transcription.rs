//! `<Start><Transcription>` and `<Stop><Transcription>`: Twilio's defaults, every documented
//! attribute, the `<Config>` and `<Parameter>` children, and the values the schema refuses.

mod common;

use common::{body_schema_err, one, schema_err};
use dialtone_twiml::{Method, StartTarget, Stop, Track, Transcription, Verb};

fn started(body: &str) -> Transcription {
    let Verb::Start(s) = one(&format!("<Start>{body}</Start>")) else {
        panic!("not a <Start>: {body}")
    };
    let StartTarget::Transcription(t) = s.target else {
        panic!("not a transcription: {:?}", s.target)
    };
    *t
}

#[test]
fn defaults_are_twilios() {
    let t = started(r#"<Transcription statusCallbackUrl="https://h/t"/>"#);
    assert_eq!(
        t,
        Transcription {
            status_callback_url: Some("https://h/t".into()),
            ..Transcription::default()
        }
    );
    assert_eq!(t.track, Track::Both);
    assert!(!t.partial_results);
    assert!(t.profanity_filter && t.enable_automatic_punctuation);
    assert_eq!(t.status_callback_method, Method::Post);
    assert_eq!(t.language_code(), "en-US");
    assert_eq!(t.provider_name(), "Google");
    // Nothing at all is accepted too: Twilio then only stores the transcript.
    assert_eq!(started("<Transcription/>"), Transcription::default());
}

#[test]
fn every_documented_attribute_and_child() {
    let t = started(
        r#"<Transcription name="live" track="inbound_track" statusCallbackUrl="/t"
             statusCallbackMethod="get" inboundTrackLabel="customer"
             outboundTrackLabel="agent" partialResults="true" languageCode="es-MX"
             transcriptionEngine="deepgram" profanityFilter="false" speechModel="nova-2"
             hints="billing, refund" enableAutomaticPunctuation="false"
             intelligenceService="GA00000000000000000000000000000000">
             <Config name="smart_format" value="true"/>
             <Parameter name="k" value="v"/>
           </Transcription>"#,
    );
    assert_eq!(
        t,
        Transcription {
            name: Some("live".into()),
            track: Track::Inbound,
            status_callback_url: Some("/t".into()),
            status_callback_method: Method::Get,
            inbound_track_label: Some("customer".into()),
            outbound_track_label: Some("agent".into()),
            partial_results: true,
            language_code: Some("es-MX".into()),
            transcription_engine: Some("deepgram".into()),
            profanity_filter: false,
            speech_model: Some("nova-2".into()),
            hints: Some("billing, refund".into()),
            enable_automatic_punctuation: false,
            intelligence_service: Some("GA00000000000000000000000000000000".into()),
            config: vec![("smart_format".into(), "true".into())],
            parameters: vec![("k".into(), "v".into())],
        }
    );
    assert_eq!(t.provider_name(), "Deepgram");
    assert_eq!(t.language_code(), "es-MX");
    assert_eq!(
        started(r#"<Transcription track="outbound_track"/>"#).track,
        Track::Outbound
    );
}

#[test]
fn stop_keeps_the_name() {
    assert_eq!(
        one(r#"<Stop><Transcription name="live"/></Stop>"#),
        Verb::Stop(Stop {
            other: Some("Transcription".into()),
            name: Some("live".into()),
            ..Stop::default()
        })
    );
    assert_eq!(
        one("<Stop><Transcription/></Stop>"),
        Verb::Stop(Stop {
            other: Some("Transcription".into()),
            ..Stop::default()
        })
    );
}

#[test]
fn bad_values_are_schema_errors() {
    schema_err(
        "<Response>\n<Start>\n<Transcription track=\"inbound\"/>\n</Start>\n</Response>",
        3,
        "Transcription",
        "attribute track=\"inbound\" must be one of inbound_track, outbound_track, both_tracks",
    );
    for (attr, value, needle) in [
        ("partialResults", "yes", "is not true or false"),
        ("profanityFilter", "maybe", "is not true or false"),
        ("enableAutomaticPunctuation", "on", "is not true or false"),
        ("statusCallbackMethod", "PUT", "is not GET or POST"),
        (
            "transcriptionEngine",
            "whisper",
            "must be google or deepgram",
        ),
    ] {
        body_schema_err(
            &format!(r#"<Start><Transcription {attr}="{value}"/></Start>"#),
            "Transcription",
            needle,
        );
    }
    // Attribute names are case-sensitive; the <Stream> spelling is not the noun's.
    body_schema_err(
        r#"<Start><Transcription statusCallback="https://h/t"/></Start>"#,
        "Transcription",
        "unknown attribute statusCallback on <Transcription>",
    );
    body_schema_err(
        r#"<Start><Transcription partialresults="true"/></Start>"#,
        "Transcription",
        "did you mean partialResults?",
    );
    // The same schema holds under <Stop>.
    body_schema_err(
        r#"<Stop><Transcription name="x" track="left"/></Stop>"#,
        "Transcription",
        "must be one of",
    );
}

#[test]
fn bad_children_are_schema_errors() {
    body_schema_err(
        r#"<Start><Transcription><Say>hi</Say></Transcription></Start>"#,
        "Say",
        "<Transcription> may only contain <Config>, <Parameter>",
    );
    body_schema_err(
        r#"<Start><Transcription><Config value="v"/></Transcription></Start>"#,
        "Config",
        "<Config> requires a name attribute",
    );
    body_schema_err(
        r#"<Start><Transcription><Parameter name="a" other="b"/></Transcription></Start>"#,
        "Parameter",
        "unknown attribute other on <Parameter>",
    );
    body_schema_err(
        r#"<Start><Transcription>words</Transcription></Start>"#,
        "Transcription",
        "text is not allowed",
    );
    body_schema_err(
        r#"<Start><Transcription/><Transcription/></Start>"#,
        "Transcription",
        "only one noun",
    );
}

#[test]
fn written_as_an_app_would() {
    let doc = dialtone_twiml::parse(
        r#"<Response><Start><Transcription name="t" partialResults="true" statusCallbackUrl="/cb"/></Start><Stop><Transcription name="t"/></Stop></Response>"#,
    )
    .unwrap();
    assert_eq!(
        doc.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Start><Transcription name="t" statusCallbackUrl="/cb" partialResults="true"/></Start><Stop><Transcription name="t"/></Stop></Response>"#
    );
}
