//! The `statusCallbackUrl` requests of a real-time transcription: the parameters each
//! event carries, as Twilio names and formats them.

use std::time::SystemTime;

use dialtone_protocol::dates;

use super::Recognition;

/// Who a transcription's callbacks belong to and how they are spelled.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    /// `AccountSid`.
    pub(crate) account_sid: String,
    /// `CallSid`.
    pub(crate) call_sid: String,
    /// `TranscriptionSid` (`GT…`).
    pub(crate) sid: String,
    /// `LanguageCode`.
    pub(crate) language_code: String,
    /// `ProviderName`.
    pub(crate) provider_name: &'static str,
    /// `Track` of the `transcription-started` event: what the noun asked for.
    pub(crate) track: &'static str,
    /// `PartialResults`.
    pub(crate) partial_results: bool,
}

/// The parameters every event carries, then `TranscriptionEvent` and `SequenceId`.
fn common(ids: &Ids, event: &str, sequence: u64, now: SystemTime) -> Vec<(String, String)> {
    vec![
        ("AccountSid".into(), ids.account_sid.clone()),
        ("CallSid".into(), ids.call_sid.clone()),
        ("TranscriptionSid".into(), ids.sid.clone()),
        ("Timestamp".into(), dates::iso8601_us(now)),
        ("TranscriptionEvent".into(), event.into()),
        ("SequenceId".into(), sequence.to_string()),
    ]
}

/// `transcription-started`.
pub(crate) fn started_params(ids: &Ids, sequence: u64, now: SystemTime) -> Vec<(String, String)> {
    let mut p = common(ids, "transcription-started", sequence, now);
    p.push(("ProviderName".into(), ids.provider_name.into()));
    p.push(("LanguageCode".into(), ids.language_code.clone()));
    p.push(("Track".into(), ids.track.into()));
    p.push(("PartialResults".into(), ids.partial_results.to_string()));
    p
}

/// `transcription-content`: `TranscriptionData` is JSON, `{"transcript", "confidence"}`
/// (partial results carry the transcript alone, as a recognizer's interim results have no
/// confidence yet).
pub(crate) fn content_params(
    ids: &Ids,
    sequence: u64,
    now: SystemTime,
    r: &Recognition,
) -> Vec<(String, String)> {
    // Written by hand to keep Twilio's key order (a JSON map would sort the keys).
    let transcript = serde_json::Value::from(r.transcript.as_str());
    let data = if r.is_final {
        let confidence = serde_json::Value::from(r.confidence);
        format!(r#"{{"transcript":{transcript},"confidence":{confidence}}}"#)
    } else {
        format!(r#"{{"transcript":{transcript}}}"#)
    };
    let mut p = common(ids, "transcription-content", sequence, now);
    p.push(("LanguageCode".into(), ids.language_code.clone()));
    p.push(("Track".into(), r.side.as_str().into()));
    p.push(("TranscriptionData".into(), data));
    p.push(("Final".into(), r.is_final.to_string()));
    p
}

/// `transcription-stopped`.
pub(crate) fn stopped_params(ids: &Ids, sequence: u64, now: SystemTime) -> Vec<(String, String)> {
    common(ids, "transcription-stopped", sequence, now)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::transcription::Side;

    #[test]
    fn params_name_everything_twilio_sends() {
        let ids = Ids {
            account_sid: "AC1".into(),
            call_sid: "CA1".into(),
            sid: "GT1".into(),
            language_code: "en-US".into(),
            provider_name: "Google",
            track: "both_tracks",
            partial_results: true,
        };
        let now = std::time::UNIX_EPOCH + Duration::from_micros(1_719_341_121_454_203);
        let started = started_params(&ids, 1, now);
        let names: Vec<&str> = started.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "AccountSid",
                "CallSid",
                "TranscriptionSid",
                "Timestamp",
                "TranscriptionEvent",
                "SequenceId",
                "ProviderName",
                "LanguageCode",
                "Track",
                "PartialResults"
            ]
        );
        assert_eq!(started[3].1, "2024-06-25T18:45:21.454203Z");
        let t0 = Instant::now();
        let r = Recognition {
            at: t0,
            side: Side::Outbound,
            transcript: "say \"hi\"".into(),
            confidence: 0.92,
            is_final: true,
            speech_end: t0,
        };
        let content = content_params(&ids, 2, now, &r);
        let get = |k: &str| content.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("TranscriptionEvent"), "transcription-content");
        assert_eq!(get("Track"), "outbound_track");
        assert_eq!(get("Final"), "true");
        assert_eq!(
            get("TranscriptionData"),
            r#"{"transcript":"say \"hi\"","confidence":0.92}"#
        );
        let partial = content_params(
            &ids,
            3,
            now,
            &Recognition {
                is_final: false,
                ..r
            },
        );
        assert!(partial.contains(&(
            "TranscriptionData".into(),
            r#"{"transcript":"say \"hi\""}"#.into()
        )));
        assert_eq!(stopped_params(&ids, 4, now)[4].1, "transcription-stopped");
    }
}
