//! `…/Queues.json`, `…/Queues/{QU}.json`, `…/Queues/{QU}/Members.json` and
//! `…/Queues/{QU}/Members/{CA|Front}.json`: the account's call queues as the call engine
//! holds them (the queues `<Enqueue>` fills and `<Dial><Queue>` empties), with Twilio's
//! JSON. A POST to a member dequeues it: its call runs the TwiML at `Url`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dialtone_call::Redirect;
use dialtone_call::queue::{
    DEFAULT_MAX_SIZE, MAX_MAX_SIZE, MemberInfo, QueueError, QueueInfo, Who,
};
use serde_json::{Value, json};

use crate::Shared;
use crate::auth::authenticate;
use crate::calls_api::{json_sid, not_found};
use crate::error::ApiError;
use crate::format::rfc2822;
use crate::params::Params;
use crate::resources::{Paging, account_path, page};

/// A Queue resource.
fn queue_json(q: &QueueInfo) -> Value {
    json!({
        "account_sid": q.account_sid,
        "average_wait_time": q.average_wait_time,
        "current_size": q.current_size,
        "date_created": rfc2822(q.date_created),
        "date_updated": rfc2822(q.date_updated),
        "friendly_name": q.friendly_name,
        "max_size": q.max_size,
        "sid": q.sid,
        "uri": format!("{}/Queues/{}.json", account_path(&q.account_sid), q.sid),
    })
}

/// A Member resource.
fn member_json(account: &str, m: &MemberInfo) -> Value {
    json!({
        "call_sid": m.call_sid,
        "date_enqueued": rfc2822(m.date_enqueued),
        "position": m.position,
        "queue_sid": m.queue_sid,
        "uri": format!(
            "{}/Queues/{}/Members/{}.json",
            account_path(account),
            m.queue_sid,
            m.call_sid
        ),
        "wait_time": m.wait_time,
    })
}

/// The queue error as Twilio's REST error (a missing queue or member is the path's 404).
fn api_error(e: QueueError, uri: &OriginalUri) -> ApiError {
    match e {
        QueueError::NoQueue | QueueError::NoMember => not_found(uri),
        // Twilio's codes for these are not documented; 20001 is its generic bad request.
        other => ApiError::invalid(20001, other.to_string()),
    }
}

/// `MaxSize`: 1 to 5000.
fn max_size(p: &Params) -> Result<Option<u32>, ApiError> {
    let Some(v) = p.get("MaxSize") else {
        return Ok(None);
    };
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_MAX_SIZE).contains(n))
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                20001,
                format!("MaxSize must be an integer from 1 to {MAX_MAX_SIZE}: {v}"),
            )
        })
}

/// `GET …/Queues.json`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let q = Params::parse(query.unwrap_or_default().as_bytes());
    let paging = Paging::parse(&q.0)?;
    let items = shared
        .engine
        .queues()
        .list(&account)
        .iter()
        .map(|q| (q.sid.clone(), queue_json(q)))
        .collect();
    let path = format!("{}/Queues.json", account_path(&account));
    Ok(Json(page("queues", &path, &[], items, &paging)))
}

/// `POST …/Queues.json`: `FriendlyName` (required), `MaxSize`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let p = Params::parse(&body);
    let name = p
        .get("FriendlyName")
        .ok_or_else(|| ApiError::invalid(20001, "Missing required parameter FriendlyName"))?;
    let size = max_size(&p)?.unwrap_or(DEFAULT_MAX_SIZE);
    let q = shared
        .engine
        .queues()
        .create(&account, name, size)
        .map_err(|e| api_error(e, &uri))?;
    Ok((StatusCode::CREATED, Json(queue_json(&q))).into_response())
}

/// `GET …/Queues/{QU}.json`.
pub(crate) async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let sid = json_sid(&file, "QU", &uri)?;
    let q = shared
        .engine
        .queues()
        .get(&account, &sid)
        .ok_or_else(|| not_found(&uri))?;
    Ok(Json(queue_json(&q)))
}

/// `POST …/Queues/{QU}.json`: `FriendlyName`, `MaxSize`.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let sid = json_sid(&file, "QU", &uri)?;
    let p = Params::parse(&body);
    let size = max_size(&p)?;
    let q = shared
        .engine
        .queues()
        .update(&account, &sid, p.get("FriendlyName"), size)
        .map_err(|e| api_error(e, &uri))?;
    Ok(Json(queue_json(&q)))
}

/// `DELETE …/Queues/{QU}.json`: only an empty queue.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let sid = json_sid(&file, "QU", &uri)?;
    shared
        .engine
        .queues()
        .delete(&account, &sid)
        .map_err(|e| api_error(e, &uri))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/Queues/{QU}/Members.json`, front first.
pub(crate) async fn members(
    State(shared): State<Arc<Shared>>,
    Path((account, queue)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let q = Params::parse(query.unwrap_or_default().as_bytes());
    let paging = Paging::parse(&q.0)?;
    let items = shared
        .engine
        .queues()
        .members(&account, &queue)
        .map_err(|e| api_error(e, &uri))?
        .iter()
        .map(|m| (m.call_sid.clone(), member_json(&account, m)))
        .collect();
    let path = format!("{}/Queues/{queue}/Members.json", account_path(&account));
    Ok(Json(page("queue_members", &path, &[], items, &paging)))
}

/// `{CA}.json` or `Front.json`.
fn who(file: &str, uri: &OriginalUri) -> Result<Who, ApiError> {
    let name = file.strip_suffix(".json").ok_or_else(|| not_found(uri))?;
    match Who::parse(name) {
        Who::Call(sid) if !sid.starts_with("CA") => Err(not_found(uri)),
        w => Ok(w),
    }
}

/// `GET …/Queues/{QU}/Members/{CA|Front}.json`.
pub(crate) async fn member(
    State(shared): State<Arc<Shared>>,
    Path((account, queue, file)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let who = who(&file, &uri)?;
    let m = shared
        .engine
        .queues()
        .member(&account, &queue, &who)
        .map_err(|e| api_error(e, &uri))?;
    Ok(Json(member_json(&account, &m)))
}

/// `POST …/Queues/{QU}/Members/{CA|Front}.json` with `Url` (and `Method`): dequeues the
/// member; its call runs `Url`'s TwiML (its `<Enqueue action>` hears `redirected`).
pub(crate) async fn dequeue(
    State(shared): State<Arc<Shared>>,
    Path((account, queue, file)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let who = who(&file, &uri)?;
    let p = Params::parse(&body);
    let url = p
        .url("Url")?
        .ok_or_else(|| ApiError::invalid(20001, "Missing required parameter Url"))?;
    let method = p.method("Method")?;
    let m = shared
        .engine
        .queues()
        .dequeue(&account, &queue, &who, Redirect::Url { url, method })
        .map_err(|e| api_error(e, &uri))?;
    Ok(Json(member_json(&account, &m)))
}
