//! `…/Calls.json` and `…/Calls/{CA}.json`: create (201, `queued`), fetch, list with Twilio's
//! filters and paging, update (hang up with `Status=completed|canceled`, redirect with
//! `Url`/`Twiml`; an ended call is 400/21220), delete (204); and the Account resource.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dialtone_call::{REST_HANGUP, Redirect};
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{CallStatus, Direction};
use serde_json::{Value, json};

use crate::Shared;
use crate::auth::{authenticate, authenticate_owner};
use crate::callbacks::CallbackTarget;
use crate::error::ApiError;
use crate::format::{date, endpoint_problem, is_call_endpoint, is_caller_id, rfc2822};
use crate::params::Params;
use crate::resources::{Paging, account_path, call_json, page};
use crate::runner::{self, CallPlan};
use crate::store::{CallRecord, Control};

/// The SID in `{sid}.json`, or 404 for the path.
pub(crate) fn json_sid(file: &str, prefix: &str, uri: &OriginalUri) -> Result<String, ApiError> {
    file.strip_suffix(".json")
        .filter(|s| s.starts_with(prefix))
        .map(str::to_string)
        .ok_or_else(|| not_found(uri))
}

pub(crate) fn not_found(uri: &OriginalUri) -> ApiError {
    ApiError::NotFound {
        path: uri.0.path().to_string(),
    }
}

/// `To` and `From` of a request that places a call: present and well formed (Twilio's
/// 21201/21213 when missing, 21211/21212 when not a number, client or SIP address).
pub(crate) fn to_and_from(p: &Params) -> Result<(&str, &str), ApiError> {
    let to = p
        .get("To")
        .ok_or_else(|| ApiError::invalid(21201, "No 'To' number is specified"))?;
    let from = p
        .get("From")
        .ok_or_else(|| ApiError::invalid(21213, "No 'From' number is specified"))?;
    if !is_call_endpoint(to) {
        return Err(ApiError::invalid(
            21211,
            format!(
                "The 'To' number {to:?} is not a valid phone number: {}",
                endpoint_problem(to)
            ),
        ));
    }
    if !is_caller_id(from) {
        return Err(ApiError::invalid(
            21212,
            format!(
                "The 'From' number {from:?} is not a valid phone number, shortcode, or alphanumeric sender ID: {}",
                endpoint_problem(from)
            ),
        ));
    }
    Ok((to, from))
}

/// `POST …/Calls.json`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let account = authenticate(&shared.config.accounts, &headers, &account)?.clone();
    let p = Params::parse(&body);
    let (to, from) = to_and_from(&p)?;
    if shared.config.require_known_from && !known_from(&shared, &account, from) {
        return Err(ApiError::invalid(
            21210,
            format!(
                "The source phone number provided, {from}, is not yet verified for your account. \
                 You may only make calls from phone numbers that you've verified or purchased from Twilio."
            ),
        ));
    }
    let url = p.url("Url")?;
    let twiml = p.twiml().await?;
    if p.get("ApplicationSid").is_some() && url.is_none() && twiml.is_none() {
        return Err(ApiError::invalid(
            21205,
            "ApplicationSid is not simulated by dialtone; pass Url or Twiml",
        ));
    }
    if url.is_none() && twiml.is_none() {
        return Err(ApiError::invalid(
            21205,
            "A 'Url', 'Twiml' or 'ApplicationSid' parameter is required.",
        ));
    }
    let callback = match p.url("StatusCallback")? {
        Some(url) => {
            let mut events = p.all("StatusCallbackEvent");
            if events.is_empty() {
                events.push("completed".into());
            }
            Some(CallbackTarget {
                url,
                method: p.method("StatusCallbackMethod")?,
                events,
            })
        }
        None => None,
    };
    let record = p.bool("Record", false)?;
    let channels = match p.get("RecordingChannels") {
        Some("dual") => 2,
        _ => 1,
    };
    let time_limit = match p.get("TimeLimit") {
        Some(v) => Duration::from_secs(v.parse().map_err(|_| {
            ApiError::invalid(21218, format!("TimeLimit must be a number of seconds: {v}"))
        })?),
        None => shared.config.max_call,
    };
    // Twilio rings for `Timeout` seconds (default 60, at most 600).
    let ring_timeout = match p.get("Timeout") {
        Some(v) => Duration::from_secs(
            v.parse::<u64>()
                .map_err(|_| {
                    ApiError::invalid(21218, format!("Timeout must be a number of seconds: {v}"))
                })?
                .clamp(1, 600),
        ),
        None => Duration::from_secs(60),
    };
    let plan = CallPlan {
        sid: sid::random("CA"),
        account_sid: account.sid.clone(),
        from: from.to_string(),
        to: to.to_string(),
        url: url.clone(),
        method: p.method("Method")?,
        twiml,
        fallback_url: p.url("FallbackUrl")?,
        callback,
        send_digits: p.get("SendDigits").unwrap_or_default().to_string(),
        ring_timeout,
        record_channels: record.then_some(channels),
        time_limit,
    };
    if shared.queued.load(Ordering::Relaxed) >= shared.config.max_queued_calls {
        return Err(ApiError::TooManyRequests);
    }
    let guard = shared
        .task_guard()
        .ok_or_else(|| ApiError::Internal("shutting down".into()))?;
    shared.queued.fetch_add(1, Ordering::Relaxed);
    let record = CallRecord {
        phone_number_sid: shared
            .store
            .numbers()
            .iter()
            .find(|n| n.phone_number == plan.from && n.account_sid == plan.account_sid)
            .map(|n| n.sid.clone()),
        ..CallRecord::new(
            plan.sid.clone(),
            plan.account_sid.clone(),
            (plan.from.clone(), plan.to.clone()),
            Direction::OutboundApi,
            CallStatus::Queued,
            url.unwrap_or_else(|| "(inline TwiML)".into()),
        )
    };
    let body = call_json(&record);
    shared.store.insert_call(record);
    runner::spawn(shared.clone(), plan, guard);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn known_from(shared: &Shared, account: &crate::config::Account, from: &str) -> bool {
    account.verified_caller_ids.iter().any(|n| n == from)
        || shared
            .store
            .numbers()
            .iter()
            .any(|n| n.account_sid == account.sid && n.phone_number == from)
}

/// `GET …/Calls/{CA}.json`.
pub(crate) async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let call = find(&shared, &account, &file, &uri)?;
    Ok(Json(call_json(&call)))
}

fn find(
    shared: &Shared,
    account: &str,
    file: &str,
    uri: &OriginalUri,
) -> Result<CallRecord, ApiError> {
    let sid = json_sid(file, "CA", uri)?;
    shared
        .store
        .call(&sid)
        .filter(|c| c.account_sid == account)
        .ok_or_else(|| not_found(uri))
}

/// `GET …/Calls.json`: newest first, filtered by `To`, `From`, `Status`, `ParentCallSid`,
/// `StartTime[<>]`, `EndTime[<>]` (`YYYY-MM-DD`).
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let q = Params::parse(query.unwrap_or_default().as_bytes());
    let paging = Paging::parse(&q.0)?;
    const FILTERS: [&str; 10] = [
        "To",
        "From",
        "ParentCallSid",
        "Status",
        "StartTime",
        "StartTime<",
        "StartTime>",
        "EndTime",
        "EndTime<",
        "EndTime>",
    ];
    let filters: Vec<(String, String)> =
        q.0.iter()
            .filter(|(n, v)| FILTERS.contains(&n.as_str()) && !v.is_empty())
            .cloned()
            .collect();
    // Twilio filters calls by UTC day; twilio-python sends a full ISO 8601 timestamp
    // (`2026-01-01T00:00:00Z`) for these, so compare by its date part.
    let by_day = |name: &str, v: &str| -> String {
        if name.starts_with("StartTime") || name.starts_with("EndTime") {
            v.split('T').next().unwrap_or(v).to_string()
        } else {
            v.to_string()
        }
    };
    let match_filters: Vec<(String, String)> = filters
        .iter()
        .map(|(n, v)| (n.clone(), by_day(n, v)))
        .collect();
    let keep = |c: &CallRecord| {
        match_filters.iter().all(|(name, v)| {
            let day = |t: Option<SystemTime>| t.map(date);
            match name.as_str() {
                "To" => &c.to == v,
                "From" => &c.from == v,
                "Status" => c.status.as_str() == v,
                "ParentCallSid" => c.parent_call_sid.as_deref() == Some(v.as_str()),
                "StartTime" => day(c.started).is_some_and(|d| &d == v),
                "StartTime<" => day(c.started).is_some_and(|d| &d <= v),
                "StartTime>" => day(c.started).is_some_and(|d| &d >= v),
                "EndTime" => day(c.ended).is_some_and(|d| &d == v),
                "EndTime<" => day(c.ended).is_some_and(|d| &d <= v),
                "EndTime>" => day(c.ended).is_some_and(|d| &d >= v),
                _ => true,
            }
        })
    };
    let items = shared
        .store
        .calls(|c| c.account_sid == account && keep(c))
        .iter()
        .map(|c| (c.sid.clone(), call_json(c)))
        .collect();
    let path = format!("{}/Calls.json", account_path(&account));
    Ok(Json(page("calls", &path, &filters, items, &paging)))
}

/// `POST …/Calls/{CA}.json`.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let call = find(&shared, &account, &file, &uri)?;
    let p = Params::parse(&body);
    let status = p.get("Status");
    let redirect = match (p.twiml().await?, p.url("Url")?) {
        (Some(t), _) => Some(Redirect::Twiml(t)),
        (None, Some(url)) => Some(Redirect::Url {
            url,
            method: p.method("Method")?,
        }),
        (None, None) => None,
    };
    if let Some(s) = status
        && s != "completed"
        && s != "canceled"
    {
        return Err(ApiError::invalid(
            20001,
            format!("Status must be 'canceled' or 'completed', not '{s}'"),
        ));
    }
    if call.status.is_terminal() && (status.is_some() || redirect.is_some()) {
        return Err(ApiError::invalid(
            21220,
            "Call is not in-progress. Cannot redirect.",
        ));
    }
    let hang_up = match status {
        Some("completed") => true,
        // `canceled` only ends calls not yet answered.
        Some(_) => call.status != CallStatus::InProgress,
        None => false,
    };
    let sid = call.sid.clone();
    let mut ended_copy = None;
    if hang_up {
        let control = shared.store.update_call(&sid, |c| {
            let ended = if c.status == CallStatus::InProgress {
                CallStatus::Completed
            } else {
                CallStatus::Canceled
            };
            c.status = ended;
            c.ended = Some(SystemTime::now());
            c.control.cancel = Some(ended);
            c.clone()
        });
        let update = format!("Status={}", status.unwrap_or_default());
        match control.as_ref().map(|c| &c.control) {
            Some(Control {
                handle: Some(h), ..
            }) => h.hangup(format!("{REST_HANGUP} ({update})")),
            // Still queued: wake its task so it ends (and calls back) now.
            Some(c) => c.wake.notify_one(),
            None => {}
        }
        // Ending it may have made it the oldest finished call beyond `history`.
        ended_copy = control;
        shared
            .store
            .log(&sid, "info", format!("REST update {update}: hang up"));
    } else if let Some(r) = redirect {
        let control = shared.store.update_call(&sid, |c| {
            if c.control.handle.is_none() {
                c.control.pending = Some(r.clone());
            }
            c.control.clone()
        });
        match control {
            Some(Control {
                handle: Some(h),
                redirectable: true,
                ..
            }) => {
                let to = match &r {
                    Redirect::Url { url, .. } => format!("Url={url}"),
                    Redirect::Twiml(_) => "Twiml".to_string(),
                };
                shared
                    .store
                    .log(&sid, "info", format!("REST update {to}: redirected"));
                h.redirect(r);
            }
            Some(Control {
                handle: Some(_), ..
            }) => shared.store.log(
                &sid,
                "warn",
                "REST update: a redirect of the caller leg of a two-leg call is not simulated \
                 (its audio is fixed at answer); redirect the app's leg instead"
                    .into(),
            ),
            _ => shared.store.log(
                &sid,
                "info",
                "REST update: new TwiML for when the call is answered".into(),
            ),
        }
    }
    let call = shared
        .store
        .call(&sid)
        .or(ended_copy)
        .ok_or_else(|| not_found(&uri))?;
    Ok(Json(call_json(&call)))
}

/// `DELETE …/Calls/{CA}.json`: 204 for an ended call.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let call = find(&shared, &account, &file, &uri)?;
    match shared.store.delete_call(&call.sid) {
        Some(Ok(())) => Ok(StatusCode::NO_CONTENT),
        Some(Err(())) => Err(ApiError::invalid(
            21220,
            "Call is in-progress. Cannot delete an active call.",
        )),
        None => Err(not_found(&uri)),
    }
}

/// `GET /2010-04-01/Accounts/{AC}.json`.
pub(crate) async fn fetch_account(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let sid = json_sid(&file, "AC", &uri)?;
    // The body holds the master auth token: never for an API key.
    let a = authenticate_owner(&shared.config.accounts, &headers, &sid)?;
    let base = account_path(&a.sid);
    let started = rfc2822(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    Ok(Json(json!({
        "auth_token": a.auth_token,
        "date_created": started,
        "date_updated": started,
        "friendly_name": a.friendly_name,
        "owner_account_sid": a.sid,
        "sid": a.sid,
        "status": "active",
        "subresource_uris": {
            "calls": format!("{base}/Calls.json"),
            "incoming_phone_numbers": format!("{base}/IncomingPhoneNumbers.json"),
            "recordings": format!("{base}/Recordings.json"),
        },
        "type": "Full",
        "uri": format!("{base}.json"),
    })))
}
