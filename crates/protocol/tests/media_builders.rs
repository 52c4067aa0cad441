//! Twilio→app and app→Twilio message builders: exact bytes (golden strings taken from
//! a 2019 capture of real Media Streams traffic where available), JSON escaping, and
//! round trips through the parsers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dialtone_protocol::media::{
    self, AppMessage, StreamIds, Track, TwilioMessage, parse_app_message, parse_twilio_message,
};

// SIDs from the captured traffic.
const AC: &str = "AC1b32414e8ab41e56e6393bcbba7d5a9d";
const MZ: &str = "MZc3320b5e6fba10a11d7c96fe1903e3f0";
const CA: &str = "CA77145f1c2f9166cab03d083d5804d9ae";

fn ids() -> StreamIds {
    StreamIds {
        account_sid: AC.into(),
        call_sid: CA.into(),
        stream_sid: MZ.into(),
    }
}

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn connected_golden() {
    assert_eq!(
        media::connected(),
        r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#
    );
}

#[test]
fn start_matches_capture() {
    let got = media::start(1, &ids(), &[Track::Inbound], &p(&[("hello", "HelloValue")]));
    let want = concat!(
        r#"{"event":"start","sequenceNumber":"1","#,
        r#""start":{"accountSid":"AC1b32414e8ab41e56e6393bcbba7d5a9d","#,
        r#""streamSid":"MZc3320b5e6fba10a11d7c96fe1903e3f0","#,
        r#""callSid":"CA77145f1c2f9166cab03d083d5804d9ae","#,
        r#""tracks":["inbound"],"#,
        r#""mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"#,
        r#""customParameters":{"hello":"HelloValue"}"#,
        r#"},"#,
        r#""streamSid":"MZc3320b5e6fba10a11d7c96fe1903e3f0"}"#
    );
    assert_eq!(got, want);
}

#[test]
fn start_both_tracks_and_no_parameters() {
    let got = media::start(1, &ids(), &[Track::Inbound, Track::Outbound], &[]);
    assert!(got.contains(r#""tracks":["inbound","outbound"]"#), "{got}");
    assert!(got.contains(r#""customParameters":{}}"#), "{got}");
}

#[test]
fn start_repeated_parameter_keeps_last_value() {
    let got = media::start(
        1,
        &ids(),
        &[Track::Inbound],
        &p(&[("a", "1"), ("b", "2"), ("a", "3")]),
    );
    assert!(
        got.contains(r#""customParameters":{"b":"2","a":"3"}"#),
        "{got}"
    );
}

#[test]
fn media_matches_capture() {
    let payload = "fvz+fXx9fXv//v///P5+/v3+fv/+/fr7/v7+fHt9/g==";
    let got = media::media(2, Track::Inbound, 1, 102, payload, MZ);
    let want = format!(
        r#"{{"event":"media","sequenceNumber":"2","media":{{"track":"inbound","chunk":"1","timestamp":"102","payload":"{payload}"}},"streamSid":"{MZ}"}}"#
    );
    assert_eq!(got, want);
    let out = media::media(3, Track::Outbound, 2, 5, "", MZ);
    assert!(
        out.contains(r#""track":"outbound","chunk":"2","timestamp":"5","payload":"""#),
        "{out}"
    );
}

#[test]
fn write_media_equals_media_and_reuses_the_buffer() {
    let payload = STANDARD.encode([0xffu8; 160]);
    let mut buf = String::with_capacity(512);
    let cap = buf.capacity();
    for (seq, ts) in [(2u64, 0u64), (3, 20), (u64::MAX, u64::MAX)] {
        buf.clear();
        media::write_media(&mut buf, seq, Track::Inbound, seq - 1, ts, &payload, MZ);
        assert_eq!(
            buf,
            media::media(seq, Track::Inbound, seq - 1, ts, &payload, MZ)
        );
        assert_eq!(
            buf.capacity(),
            cap,
            "no reallocation when the buffer has room"
        );
    }
    // Appends rather than overwrites.
    let before = buf.clone();
    media::write_media(&mut buf, 9, Track::Outbound, 9, 9, "", MZ);
    assert!(buf.starts_with(&before) && buf.len() > before.len());
}

#[test]
fn dtmf_mark_stop_golden() {
    assert_eq!(
        media::dtmf(5, MZ, '1'),
        format!(
            r#"{{"event":"dtmf","streamSid":"{MZ}","sequenceNumber":"5","dtmf":{{"track":"inbound_track","digit":"1"}}}}"#
        )
    );
    assert_eq!(
        media::mark(4, MZ, "my label"),
        format!(
            r#"{{"event":"mark","sequenceNumber":"4","streamSid":"{MZ}","mark":{{"name":"my label"}}}}"#
        )
    );
    // Exactly the captured stop message.
    assert_eq!(
        media::stop(352, &ids()),
        concat!(
            r#"{"event":"stop","sequenceNumber":"352","streamSid":"MZc3320b5e6fba10a11d7c96fe1903e3f0","#,
            r#""stop":{"accountSid":"AC1b32414e8ab41e56e6393bcbba7d5a9d","callSid":"CA77145f1c2f9166cab03d083d5804d9ae"}}"#
        )
    );
}

#[test]
fn app_builders_golden() {
    assert_eq!(
        media::app_media(MZ, "AAE="),
        format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"AAE="}}}}"#)
    );
    assert_eq!(
        media::app_mark(MZ, "resp-42"),
        format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":"resp-42"}}}}"#)
    );
    assert_eq!(
        media::app_clear(MZ),
        format!(r#"{{"event":"clear","streamSid":"{MZ}"}}"#)
    );
}

const NASTY: &[&str] = &[
    "say \"hi\"",
    "back\\slash",
    "tab\tnew\nline\r",
    "\u{0}\u{1}\u{1f}\u{7f}",
    "é ü 中文 😀 \u{2028}",
    "</script>&<>'",
    "",
];

#[test]
fn custom_parameters_are_escaped_correctly() {
    let params: Vec<(String, String)> = NASTY
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i}{v}"), (*v).to_owned()))
        .collect();
    let text = media::start(1, &ids(), &[Track::Inbound], &params);
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let custom = value["start"]["customParameters"]
        .as_object()
        .expect("object");
    assert_eq!(custom.len(), params.len());
    for (name, v) in &params {
        assert_eq!(custom[name.as_str()], serde_json::Value::String(v.clone()));
    }
    // And order is preserved for apps that read the object in order.
    match parse_twilio_message(&text) {
        Ok(TwilioMessage::Start {
            custom_parameters, ..
        }) => assert_eq!(custom_parameters, params),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mark_names_are_escaped_correctly() {
    for name in NASTY {
        let text = media::mark(4, MZ, name);
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            value["mark"]["name"],
            serde_json::Value::String((*name).to_owned())
        );
        let app = media::app_mark(MZ, name);
        assert_eq!(
            parse_app_message(&app, MZ),
            Ok(AppMessage::Mark {
                name: (*name).to_owned()
            })
        );
    }
}

#[test]
fn every_twilio_builder_round_trips() {
    assert_eq!(
        parse_twilio_message(&media::connected()),
        Ok(TwilioMessage::Connected {
            protocol: "Call".into(),
            version: "1.0.0".into()
        })
    );
    let custom = p(&[("z", "1"), ("a", "2")]);
    assert_eq!(
        parse_twilio_message(&media::start(
            1,
            &ids(),
            &[Track::Inbound, Track::Outbound],
            &custom
        )),
        Ok(TwilioMessage::Start {
            sequence_number: 1,
            stream_sid: MZ.into(),
            account_sid: AC.into(),
            call_sid: CA.into(),
            tracks: vec!["inbound".into(), "outbound".into()],
            custom_parameters: custom.clone(),
            media_format: ("audio/x-mulaw".into(), 8000, 1),
        })
    );
    let audio: Vec<u8> = (0..=255).collect();
    assert_eq!(
        parse_twilio_message(&media::media(
            7,
            Track::Outbound,
            3,
            40,
            &STANDARD.encode(&audio),
            MZ
        )),
        Ok(TwilioMessage::Media {
            sequence_number: 7,
            stream_sid: MZ.into(),
            track: "outbound".into(),
            chunk: 3,
            timestamp_ms: 40,
            payload: audio,
        })
    );
    assert_eq!(
        parse_twilio_message(&media::dtmf(5, MZ, '#')),
        Ok(TwilioMessage::Dtmf {
            sequence_number: 5,
            stream_sid: MZ.into(),
            track: "inbound_track".into(),
            digit: "#".into(),
        })
    );
    assert_eq!(
        parse_twilio_message(&media::mark(6, MZ, "m")),
        Ok(TwilioMessage::Mark {
            sequence_number: 6,
            stream_sid: MZ.into(),
            name: "m".into()
        })
    );
    assert_eq!(
        parse_twilio_message(&media::stop(8, &ids())),
        Ok(TwilioMessage::Stop {
            sequence_number: 8,
            stream_sid: MZ.into(),
            account_sid: AC.into(),
            call_sid: CA.into(),
        })
    );
}

#[test]
fn every_app_builder_round_trips() {
    let audio = vec![0x7f, 0xff, 0x00, 0x80];
    assert_eq!(
        parse_app_message(&media::app_media(MZ, &STANDARD.encode(&audio)), MZ),
        Ok(AppMessage::Media { payload: audio })
    );
    assert_eq!(
        parse_app_message(&media::app_mark(MZ, "x"), MZ),
        Ok(AppMessage::Mark { name: "x".into() })
    );
    assert_eq!(
        parse_app_message(&media::app_clear(MZ), MZ),
        Ok(AppMessage::Clear)
    );
}
