//! `…/Recordings.json`, `…/Calls/{CA}/Recordings.json` and `…/Recordings/{RE}`: recordings
//! of calls created with `Record=true`, and those calls make (`<Dial record>`, `<Record>`,
//! whose one channel is the caller alone). The media (`{RE}` or `{RE}.wav`) needs no auth, as
//! Twilio's media URLs by default (`enforce_http_auth_on_media_urls` requires the account's
//! credentials, like Twilio's "Enforce HTTP Auth on Media URLs"); it is 8 kHz 16-bit WAV, mono (both parties mixed) or two
//! channels (`RecordingChannels=dual`, or `?RequestedChannels=2`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::Shared;
use crate::auth::authenticate;
use crate::calls_api::{json_sid, not_found};
use crate::error::ApiError;
use crate::params::Params;
use crate::resources::{Paging, account_path, page, recording_json};
use crate::store::RecordingRecord;

fn listing(
    shared: &Shared,
    account: &str,
    path: String,
    query: Option<String>,
    call: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let q = Params::parse(query.unwrap_or_default().as_bytes());
    let paging = Paging::parse(&q.0)?;
    let filters: Vec<(String, String)> =
        q.0.iter()
            .filter(|(n, v)| n == "CallSid" && !v.is_empty())
            .cloned()
            .collect();
    let call_filter = call
        .map(str::to_string)
        .or_else(|| q.get("CallSid").map(str::to_string));
    let items = shared
        .store
        .recordings(|r| {
            r.account_sid == account && call_filter.as_ref().is_none_or(|c| &r.call_sid == c)
        })
        .iter()
        .map(|r| (r.sid.clone(), recording_json(r, &shared.public_url)))
        .collect();
    Ok(Json(page("recordings", &path, &filters, items, &paging)))
}

/// `GET …/Recordings.json`, filtered by `CallSid`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let path = format!("{}/Recordings.json", account_path(&account));
    listing(&shared, &account, path, query, None)
}

/// `GET …/Calls/{CA}/Recordings.json`.
pub(crate) async fn list_for_call(
    State(shared): State<Arc<Shared>>,
    Path((account, call)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    if shared
        .store
        .call(&call)
        .is_none_or(|c| c.account_sid != account)
    {
        return Err(not_found(&uri));
    }
    let path = format!("{}/Calls/{call}/Recordings.json", account_path(&account));
    listing(&shared, &account, path, query, Some(&call))
}

fn find(
    shared: &Shared,
    account: &str,
    sid: &str,
    uri: &OriginalUri,
) -> Result<RecordingRecord, ApiError> {
    shared
        .store
        .recording(sid)
        .filter(|r| r.account_sid == account)
        .ok_or_else(|| not_found(uri))
}

/// `GET …/Recordings/{RE}.json` (auth) or `…/Recordings/{RE}[.wav]` (the media).
pub(crate) async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if file.ends_with(".json") {
        authenticate(&shared.config.accounts, &headers, &account)?;
        let sid = json_sid(&file, "RE", &uri)?;
        let r = find(&shared, &account, &sid, &uri)?;
        return Ok(Json(recording_json(&r, &shared.public_url)).into_response());
    }
    // Open by default, as Twilio's media URLs; "Enforce HTTP Auth on Media URLs" closes
    // them to all but the account's credentials.
    if shared.config.enforce_http_auth_on_media_urls {
        authenticate(&shared.config.accounts, &headers, &account)?;
    }
    let sid = file.strip_suffix(".wav").unwrap_or(&file);
    let r = find(&shared, &account, sid, &uri)?;
    let q = Params::parse(query.unwrap_or_default().as_bytes());
    let channels = match q.get("RequestedChannels") {
        Some("2") => 2,
        Some(_) => 1,
        None => r.channels,
    };
    let (own, other) = (&r.pcm.0, &r.pcm.1);
    let bytes = if channels == 2 {
        dialtone_audio::wav::encode_8k(&[own, other])
    } else {
        dialtone_audio::wav::encode_8k(&[&mix(own, other)])
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "audio/x-wav")], bytes).into_response())
}

/// `DELETE …/Recordings/{RE}.json`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let sid = json_sid(&file, "RE", &uri)?;
    find(&shared, &account, &sid, &uri)?;
    shared.store.delete_recording(&sid);
    Ok(StatusCode::NO_CONTENT)
}

/// Both parties on one channel, as a mono recording is.
fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
    (0..a.len().max(b.len()))
        .map(|i| {
            let x = i32::from(a.get(i).copied().unwrap_or(0));
            let y = i32::from(b.get(i).copied().unwrap_or(0));
            (x + y).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mono_mix_pads_the_shorter_party_and_clips() {
        assert_eq!(super::mix(&[i16::MAX, 1], &[5]), [i16::MAX, 1]);
        assert_eq!(super::mix(&[i16::MIN], &[-1, 7]), [i16::MIN, 7]);
    }
}
