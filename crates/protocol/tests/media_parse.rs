//! parse_app_message: every accepted kind, every violation class, strictness about
//! extra fields, and large payloads; parse_twilio_message on malformed input.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dialtone_protocol::media::{
    AppMessage, Strictness, Violation, parse_app_message, parse_app_message_with,
    parse_twilio_message,
};

const MZ: &str = "MZ0123456789abcdef0123456789abcdef";
const OTHER: &str = "MZffffffffffffffffffffffffffffffff";

fn parse(text: &str) -> Result<AppMessage, Violation> {
    parse_app_message(text, MZ)
}

#[test]
fn valid_messages() {
    assert_eq!(
        parse(&format!(
            r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"/38A"}}}}"#
        )),
        Ok(AppMessage::Media {
            payload: vec![0xff, 0x7f, 0x00]
        })
    );
    assert_eq!(
        parse(&format!(
            r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":"resp-1"}}}}"#
        )),
        Ok(AppMessage::Mark {
            name: "resp-1".into()
        })
    );
    assert_eq!(
        parse(&format!(r#"{{"event":"clear","streamSid":"{MZ}"}}"#)),
        Ok(AppMessage::Clear)
    );
    // Key order and whitespace do not matter.
    assert_eq!(
        parse(&format!(
            "{{ \"media\": {{ \"payload\": \"AA==\" }},\n \"streamSid\": \"{MZ}\", \"event\": \"media\" }}"
        )),
        Ok(AppMessage::Media { payload: vec![0] })
    );
}

#[test]
fn empty_payload_is_zero_bytes_of_audio() {
    assert_eq!(
        parse(&format!(
            r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":""}}}}"#
        )),
        Ok(AppMessage::Media { payload: vec![] })
    );
}

#[test]
fn ten_kilobyte_payload() {
    let audio: Vec<u8> = (0..10 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    let text = format!(
        r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"{}"}}}}"#,
        STANDARD.encode(&audio)
    );
    assert_eq!(parse(&text), Ok(AppMessage::Media { payload: audio }));
}

#[test]
fn not_json() {
    for text in [
        "",
        "{",
        "{\"event\":\"clear\",}",
        "clear",
        "{\"event\":\"clear\"} x",
    ] {
        assert!(
            matches!(parse(text), Err(Violation::NotJson(_))),
            "{text:?}"
        );
    }
}

#[test]
fn not_object() {
    for text in ["[1,2]", "\"media\"", "42", "true", "null"] {
        assert_eq!(parse(text), Err(Violation::NotObject), "{text:?}");
    }
}

#[test]
fn missing_or_unknown_event() {
    assert_eq!(
        parse(&format!(r#"{{"streamSid":"{MZ}"}}"#)),
        Err(Violation::MissingEvent)
    );
    assert_eq!(
        parse(&format!(r#"{{"event":1,"streamSid":"{MZ}"}}"#)),
        Err(Violation::WrongType("event"))
    );
    for event in ["start", "stop", "dtmf", "connected", "Media", ""] {
        assert_eq!(
            parse(&format!(r#"{{"event":"{event}","streamSid":"{MZ}"}}"#)),
            Err(Violation::UnknownEvent(event.into())),
        );
    }
}

#[test]
fn missing_stream_sid_is_a_violation() {
    assert_eq!(
        parse(r#"{"event":"clear"}"#),
        Err(Violation::MissingField("streamSid"))
    );
    assert_eq!(
        parse(r#"{"event":"media","media":{"payload":"AA=="}}"#),
        Err(Violation::MissingField("streamSid"))
    );
    assert_eq!(
        parse(r#"{"event":"clear","streamSid":7}"#),
        Err(Violation::WrongType("streamSid"))
    );
}

#[test]
fn wrong_stream_sid() {
    assert_eq!(
        parse(&format!(r#"{{"event":"clear","streamSid":"{OTHER}"}}"#)),
        Err(Violation::WrongStreamSid {
            got: OTHER.into(),
            expected: MZ.into()
        })
    );
}

#[test]
fn media_shape_violations() {
    let cases = [
        (
            format!(r#"{{"event":"media","streamSid":"{MZ}"}}"#),
            Violation::MissingField("media"),
        ),
        (
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":"AA=="}}"#),
            Violation::WrongType("media"),
        ),
        (
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{}}}}"#),
            Violation::MissingField("media.payload"),
        ),
        (
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":[1]}}}}"#),
            Violation::WrongType("media.payload"),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(&text), Err(want), "{text}");
    }
}

#[test]
fn mark_shape_violations() {
    let cases = [
        (
            format!(r#"{{"event":"mark","streamSid":"{MZ}"}}"#),
            Violation::MissingField("mark"),
        ),
        (
            format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":null}}"#),
            Violation::WrongType("mark"),
        ),
        (
            format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{}}}}"#),
            Violation::MissingField("mark.name"),
        ),
        (
            format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":3}}}}"#),
            Violation::WrongType("mark.name"),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(&text), Err(want), "{text}");
    }
}

#[test]
fn bad_base64() {
    for payload in ["!!!!", "AA=A", "A", "AA AA", "-_8="] {
        let text =
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"{payload}"}}}}"#);
        assert!(
            matches!(parse(&text), Err(Violation::BadBase64(_))),
            "{payload}"
        );
    }
}

#[test]
fn extra_fields_strict_and_lenient() {
    let cases = [
        (
            format!(
                r#"{{"event":"media","streamSid":"{MZ}","media":{{"track":"outbound","payload":"AA=="}}}}"#
            ),
            "media.track",
            AppMessage::Media { payload: vec![0] },
        ),
        (
            format!(r#"{{"event":"clear","streamSid":"{MZ}","sequenceNumber":"3"}}"#),
            "sequenceNumber",
            AppMessage::Clear,
        ),
        (
            format!(r#"{{"event":"clear","streamSid":"{MZ}","media":{{"payload":"AA=="}}}}"#),
            "media",
            AppMessage::Clear,
        ),
        (
            format!(
                r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"AA=="}},"mark":{{"name":"x"}}}}"#
            ),
            "mark",
            AppMessage::Media { payload: vec![0] },
        ),
    ];
    for (text, field, lenient) in cases {
        assert_eq!(
            parse(&text),
            Err(Violation::UnexpectedField(field.into())),
            "{text}"
        );
        assert_eq!(
            parse_app_message_with(&text, MZ, Strictness::Lenient),
            Ok(lenient),
            "{text}"
        );
    }
}

#[test]
fn violations_explain_themselves_and_map_to_twilio_codes() {
    assert_eq!(Violation::BinaryFrame.code(), 31950);
    assert_eq!(Violation::MissingEvent.code(), 31951);
    let wrong = Violation::WrongStreamSid {
        got: OTHER.into(),
        expected: MZ.into(),
    };
    assert_eq!(wrong.code(), 31951);
    let text = wrong.to_string();
    assert!(text.contains(OTHER) && text.contains(MZ), "{text}");
    assert!(
        Violation::MissingField("media.payload")
            .to_string()
            .contains("media.payload")
    );
    assert!(Violation::BinaryFrame.to_string().contains("binary"));
}

#[test]
fn twilio_parser_rejects_malformed_messages() {
    assert!(matches!(
        parse_twilio_message("{"),
        Err(Violation::NotJson(_))
    ));
    assert_eq!(parse_twilio_message("[]"), Err(Violation::NotObject));
    assert_eq!(parse_twilio_message("{}"), Err(Violation::MissingEvent));
    assert_eq!(
        parse_twilio_message(r#"{"event":"bogus","sequenceNumber":"1","streamSid":"MZ1"}"#),
        Err(Violation::UnknownEvent("bogus".into()))
    );
    // Counters must be strings, as Twilio sends them.
    assert!(matches!(
        parse_twilio_message(
            r#"{"event":"mark","sequenceNumber":4,"streamSid":"MZ1","mark":{"name":"a"}}"#
        ),
        Err(Violation::Schema(_))
    ));
    assert!(matches!(
        parse_twilio_message(
            r#"{"event":"mark","sequenceNumber":"4a","streamSid":"MZ1","mark":{"name":"a"}}"#
        ),
        Err(Violation::Schema(_))
    ));
    assert_eq!(
        parse_twilio_message(r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1"}"#),
        Err(Violation::MissingField("mark"))
    );
    assert_eq!(
        parse_twilio_message(r#"{"event":"stop","sequenceNumber":"4","stop":{}}"#),
        Err(Violation::MissingField("streamSid"))
    );
}
