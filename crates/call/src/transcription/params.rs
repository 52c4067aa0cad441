//! The `statusCallbackUrl` requests of a real-time transcription: the parameters each
//! event carries, as Twilio names and formats them.

use std::time::{SystemTime, UNIX_EPOCH};

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
        ("Timestamp".into(), iso8601(now)),
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

/// `2024-06-25T18:45:21.454203Z`: UTC with microseconds, as real-time transcription
/// callbacks stamp `Timestamp`.
pub(crate) fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
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
        let now = UNIX_EPOCH + Duration::from_micros(1_719_341_121_454_203);
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

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000000Z");
        let end = UNIX_EPOCH + Duration::from_secs(1_735_689_599); // 2024-12-31T23:59:59
        assert_eq!(iso8601(end), "2024-12-31T23:59:59.000000Z");
    }
}
