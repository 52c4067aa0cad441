//! `…/IncomingPhoneNumbers.json` and `…/IncomingPhoneNumbers/{PN}.json`: the account's
//! numbers and where their calls go (`VoiceUrl`, `VoiceMethod`, `VoiceFallbackUrl`,
//! `StatusCallback`, …), like a Twilio account's numbers.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dialtone_protocol::sid;
use serde_json::Value;

use crate::Shared;
use crate::auth::authenticate;
use crate::calls_api::{json_sid, not_found};
use crate::error::ApiError;
use crate::format::{is_phone_number, national};
use crate::params::Params;
use crate::resources::{Paging, account_path, number_json, page};
use crate::store::NumberRecord;

/// `GET …/IncomingPhoneNumbers.json`, filtered by `PhoneNumber` and `FriendlyName`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let q = Params::parse(query.unwrap_or_default().as_bytes());
    let paging = Paging::parse(&q.0)?;
    let filters: Vec<(String, String)> =
        q.0.iter()
            .filter(|(n, v)| (n == "PhoneNumber" || n == "FriendlyName") && !v.is_empty())
            .cloned()
            .collect();
    let items = shared
        .store
        .numbers()
        .into_iter()
        .filter(|n| n.account_sid == account)
        .filter(|n| {
            filters.iter().all(|(k, v)| match k.as_str() {
                // Twilio matches a partial number ("555") anywhere in it.
                "PhoneNumber" => n.phone_number.contains(v.as_str()),
                _ => &n.friendly_name == v,
            })
        })
        .map(|n| (n.sid.clone(), number_json(&n)))
        .collect();
    let path = format!("{}/IncomingPhoneNumbers.json", account_path(&account));
    Ok(Json(page(
        "incoming_phone_numbers",
        &path,
        &filters,
        items,
        &paging,
    )))
}

/// `POST …/IncomingPhoneNumbers.json`: `PhoneNumber` (or `AreaCode`, which picks a free
/// `+1{area}555…` number) plus the voice settings.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let p = Params::parse(&body);
    let phone = match (p.get("PhoneNumber"), p.get("AreaCode")) {
        (Some(n), _) => n.to_string(),
        (None, Some(area)) if area.len() == 3 && area.bytes().all(|b| b.is_ascii_digit()) => {
            free_number(&shared, area)
        }
        _ => {
            return Err(ApiError::invalid(
                21421,
                "A 'PhoneNumber' or 'AreaCode' parameter is required.",
            ));
        }
    };
    if !is_phone_number(&phone) {
        return Err(ApiError::invalid(
            21421,
            format!("PhoneNumber is invalid: {phone}"),
        ));
    }
    if shared.store.number_by_phone(&phone).is_some() {
        return Err(ApiError::invalid(
            21422,
            format!("PhoneNumber {phone} is not available."),
        ));
    }
    let now = SystemTime::now();
    let mut n = NumberRecord {
        sid: sid::random("PN"),
        account_sid: account,
        friendly_name: national(&phone),
        phone_number: phone,
        voice_url: None,
        voice_method: Default::default(),
        voice_fallback_url: None,
        voice_fallback_method: Default::default(),
        status_callback: None,
        status_callback_method: Default::default(),
        tunnels: Default::default(),
        created: now,
        updated: now,
    };
    apply(&mut n, &p)?;
    let body = number_json(&n);
    shared.store.insert_number(n);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn free_number(shared: &Shared, area: &str) -> String {
    (0..10_000)
        .map(|i| format!("+1{area}555{i:04}"))
        .find(|n| shared.store.number_by_phone(n).is_none())
        .unwrap_or_else(|| format!("+1{area}5559999"))
}

/// The voice settings in `p`: an empty value clears a URL, as on Twilio.
fn apply(n: &mut NumberRecord, p: &Params) -> Result<(), ApiError> {
    let url = |name: &str, slot: &mut Option<String>| -> Result<(), ApiError> {
        if p.has(name) {
            *slot = p.url(name)?;
        }
        Ok(())
    };
    url("VoiceUrl", &mut n.voice_url)?;
    url("VoiceFallbackUrl", &mut n.voice_fallback_url)?;
    url("StatusCallback", &mut n.status_callback)?;
    if p.get("VoiceMethod").is_some() {
        n.voice_method = p.method("VoiceMethod")?;
    }
    if p.get("VoiceFallbackMethod").is_some() {
        n.voice_fallback_method = p.method("VoiceFallbackMethod")?;
    }
    if p.get("StatusCallbackMethod").is_some() {
        n.status_callback_method = p.method("StatusCallbackMethod")?;
    }
    if let Some(name) = p.get("FriendlyName") {
        n.friendly_name = name.to_string();
    }
    Ok(())
}

fn find(
    shared: &Shared,
    account: &str,
    file: &str,
    uri: &OriginalUri,
) -> Result<NumberRecord, ApiError> {
    let sid = json_sid(file, "PN", uri)?;
    shared
        .store
        .numbers()
        .into_iter()
        .find(|n| n.sid == sid && n.account_sid == account)
        .ok_or_else(|| not_found(uri))
}

/// `GET …/IncomingPhoneNumbers/{PN}.json`.
pub(crate) async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    Ok(Json(number_json(&find(&shared, &account, &file, &uri)?)))
}

/// `POST …/IncomingPhoneNumbers/{PN}.json`.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let n = find(&shared, &account, &file, &uri)?;
    let p = Params::parse(&body);
    let mut changed = n.clone();
    apply(&mut changed, &p)?;
    shared
        .store
        .update_number(&n.sid, |slot| *slot = changed)
        .ok_or_else(|| not_found(&uri))?;
    Ok(Json(number_json(&find(&shared, &account, &file, &uri)?)))
}

/// `DELETE …/IncomingPhoneNumbers/{PN}.json`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let n = find(&shared, &account, &file, &uri)?;
    shared.store.delete_number(&n.sid);
    Ok(StatusCode::NO_CONTENT)
}
