//! `…/Conferences.json`, `…/Conferences/{CF}.json` and their `Participants`: the engine's
//! conferences as Twilio's REST API shows them. Conferences are listed (filters
//! `FriendlyName`, `Status`), fetched and ended (`Status=completed`); participants are
//! listed, fetched (by call SID or label), muted, held, kicked, and added: `To` is dialed
//! as a simulated party (serve's far-end audio) and joins when it answers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dialtone_call::conference::{
    AddParticipant, Conference, LegProgress, ParticipantInfo, Role, Update,
};
use dialtone_call::dial::{Callee, Directory};
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{CallInfo, CallStatus, Direction};
use dialtone_twiml::Beep;
use serde_json::{Value, json};

use crate::Shared;
use crate::auth::authenticate;
use crate::callbacks::{CallbackTarget, Callbacks};
use crate::calls_api::not_found;
use crate::error::ApiError;
use crate::format::rfc2822;
use crate::leg::Leg;
use crate::params::Params;
use crate::resources::{Paging, account_path, page};
use crate::store::CallRecord;

/// A Conference resource.
fn conference_json(c: &Conference) -> Value {
    let i = c.info();
    let base = format!("{}/Conferences/{}", account_path(&i.account_sid), i.sid);
    json!({
        "account_sid": i.account_sid,
        "api_version": "2010-04-01",
        "call_sid_ending_conference": i.call_sid_ending,
        "date_created": rfc2822(i.created),
        "date_updated": rfc2822(i.updated),
        "friendly_name": i.friendly_name,
        "reason_conference_ended": i.reason_ended,
        "region": "us1",
        "sid": i.sid,
        "status": i.status.as_str(),
        "subresource_uris": {
            "participants": format!("{base}/Participants.json"),
            "recordings": format!("{base}/Recordings.json"),
        },
        "uri": format!("{base}.json"),
    })
}

/// A Participant resource.
fn participant_json(p: &ParticipantInfo, status: &str) -> Value {
    json!({
        "account_sid": p.account_sid,
        "call_sid": p.call_sid,
        "call_sid_to_coach": null,
        "coaching": false,
        "conference_sid": p.conference_sid,
        "date_created": rfc2822(p.created),
        "date_updated": rfc2822(p.updated),
        "end_conference_on_exit": p.role.end_on_exit,
        "hold": p.hold,
        "label": p.role.label,
        "muted": p.role.muted,
        "start_conference_on_enter": p.role.start_on_enter,
        "status": status,
        "uri": format!(
            "{}/Conferences/{}/Participants/{}.json",
            account_path(&p.account_sid),
            p.conference_sid,
            p.call_sid
        ),
    })
}

/// The conference `{CF}` (or live one named so) of `account`.
fn find(
    shared: &Shared,
    account: &str,
    conf: &str,
    uri: &OriginalUri,
) -> Result<Arc<Conference>, ApiError> {
    let conf = conf.strip_suffix(".json").unwrap_or(conf);
    shared
        .engine
        .conferences()
        .find(account, conf)
        .ok_or_else(|| not_found(uri))
}

/// `GET …/Conferences.json`, filtered by `FriendlyName` and `Status`.
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
            .filter(|(n, v)| (n == "FriendlyName" || n == "Status") && !v.is_empty())
            .cloned()
            .collect();
    let (name, status) = (q.get("FriendlyName"), q.get("Status"));
    let items = shared
        .engine
        .conferences()
        .list(&account)
        .iter()
        .filter(|c| {
            let i = c.info();
            name.is_none_or(|n| i.friendly_name == n)
                && status.is_none_or(|s| i.status.as_str() == s)
        })
        .map(|c| (c.sid().to_string(), conference_json(c)))
        .collect();
    let path = format!("{}/Conferences.json", account_path(&account));
    Ok(Json(page("conferences", &path, &filters, items, &paging)))
}

/// `GET …/Conferences/{CF}.json`.
pub(crate) async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let c = find(&shared, &account, &file, &uri)?;
    Ok(Json(conference_json(&c)))
}

/// `POST …/Conferences/{CF}.json`: `Status=completed` ends it.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let conf = find(&shared, &account, &file, &uri)?;
    let p = Params::parse(&body);
    if p.has("AnnounceUrl") {
        return Err(ApiError::invalid(
            21218,
            "AnnounceUrl is not simulated by dialtone",
        ));
    }
    match p.get("Status") {
        Some("completed") => conf.end(),
        Some(s) => {
            return Err(ApiError::invalid(
                21218,
                format!("Status must be 'completed', not {s:?}"),
            ));
        }
        None => {}
    }
    Ok(Json(conference_json(&conf)))
}

/// `GET …/Conferences/{CF}/Participants.json`, filtered by `Muted` and `Hold`.
pub(crate) async fn list_participants(
    State(shared): State<Arc<Shared>>,
    Path((account, conf)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let c = find(&shared, &account, &conf, &uri)?;
    let q = Params::parse(query.unwrap_or_default().as_bytes());
    let paging = Paging::parse(&q.0)?;
    let filters: Vec<(String, String)> =
        q.0.iter()
            .filter(|(n, v)| (n == "Muted" || n == "Hold" || n == "Coaching") && !v.is_empty())
            .cloned()
            .collect();
    let muted = q.get("Muted").map(|v| v == "true");
    let hold = q.get("Hold").map(|v| v == "true");
    let items = c
        .participants()
        .iter()
        .filter(|p| muted.is_none_or(|m| p.role.muted == m) && hold.is_none_or(|h| p.hold == h))
        .map(|p| (p.call_sid.clone(), participant_json(p, "connected")))
        .collect();
    let path = format!(
        "{}/Conferences/{}/Participants.json",
        account_path(&account),
        c.sid()
    );
    Ok(Json(page("participants", &path, &filters, items, &paging)))
}

/// `GET …/Participants/{CA or label}.json`.
pub(crate) async fn fetch_participant(
    State(shared): State<Arc<Shared>>,
    Path((account, conf, file)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let c = find(&shared, &account, &conf, &uri)?;
    let who = file.strip_suffix(".json").unwrap_or(&file);
    let p = c.participant(who).ok_or_else(|| not_found(&uri))?;
    Ok(Json(participant_json(&p, "connected")))
}

/// `POST …/Participants/{CA or label}.json`: `Muted`, `Hold`, `EndConferenceOnExit`,
/// `BeepOnExit`.
pub(crate) async fn update_participant(
    State(shared): State<Arc<Shared>>,
    Path((account, conf, file)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let c = find(&shared, &account, &conf, &uri)?;
    let who = file.strip_suffix(".json").unwrap_or(&file);
    let p = Params::parse(&body);
    for unsupported in ["AnnounceUrl", "Coaching", "CallSidToCoach", "WaitUrl"] {
        if p.has(unsupported) {
            return Err(ApiError::invalid(
                21218,
                format!("{unsupported} is not simulated by dialtone"),
            ));
        }
    }
    let flag = |name: &str| -> Option<bool> { p.get(name).map(|v| v == "true") };
    let u = Update {
        muted: flag("Muted"),
        hold: flag("Hold"),
        end_on_exit: flag("EndConferenceOnExit"),
        beep_on_exit: flag("BeepOnExit"),
    };
    let info = c.update(who, &u).ok_or_else(|| not_found(&uri))?;
    Ok(Json(participant_json(&info, "connected")))
}

/// `DELETE …/Participants/{CA or label}.json`: kicks it (204).
pub(crate) async fn delete_participant(
    State(shared): State<Arc<Shared>>,
    Path((account, conf, file)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authenticate(&shared.config.accounts, &headers, &account)?;
    let c = find(&shared, &account, &conf, &uri)?;
    let who = file.strip_suffix(".json").unwrap_or(&file);
    if c.kick(who) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&uri))
    }
}

/// `POST …/Conferences/{CF or name}/Participants.json`: dials `To` and seats it once it
/// answers (201, `queued`).
pub(crate) async fn create_participant(
    State(shared): State<Arc<Shared>>,
    Path((account, conf)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let account = authenticate(&shared.config.accounts, &headers, &account)?.clone();
    let p = Params::parse(&body);
    let (to, from) = crate::calls_api::to_and_from(&p)?;
    // A SID names a conference that must exist; a name opens one if none runs.
    let name = if conf.starts_with("CF") {
        let c = find(&shared, &account.sid, &conf, &uri)?;
        if c.info().status == dialtone_call::conference::Status::Completed {
            return Err(ApiError::invalid(
                21218,
                format!("Conference {conf} has ended"),
            ));
        }
        c.info().friendly_name
    } else {
        conf.clone()
    };
    let callee = match crate::dial_legs::ServeBook::new(shared.clone()).lookup(&account.sid, to) {
        Callee::Simulated(c) => c,
        Callee::App(_) => {
            return Err(ApiError::invalid(
                21218,
                format!(
                    "{to} is a number dialtone hosts: adding its app to a conference through \
                     the API is not simulated yet (dial a number it does not host, or have \
                     the app <Dial><Conference>)"
                ),
            ));
        }
    };
    let seconds = |name: &str, default: u64, max: u64| -> Result<Duration, ApiError> {
        match p.get(name) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .parse::<u64>()
                .map(|s| Duration::from_secs(s.clamp(1, max)))
                .map_err(|_| {
                    ApiError::invalid(21218, format!("{name} must be a number of seconds: {v}"))
                }),
        }
    };
    let beep = match p.get("Beep") {
        None | Some("true") => Beep::True,
        Some("false") => Beep::False,
        Some("onEnter") => Beep::OnEnter,
        Some("onExit") => Beep::OnExit,
        Some(v) => {
            return Err(ApiError::invalid(
                21218,
                format!("Beep must be true, false, onEnter or onExit: {v}"),
            ));
        }
    };
    let role = Role {
        label: p.get("Label").map(str::to_string),
        muted: p.bool("Muted", false)?,
        start_on_enter: p.bool("StartConferenceOnEnter", true)?,
        end_on_exit: p.bool("EndConferenceOnExit", false)?,
        beep,
    };
    if let Some(label) = &role.label
        && let Some(c) = shared.engine.conferences().find(&account.sid, &name)
        && c.participant(label).is_some()
    {
        return Err(ApiError::invalid(
            16025,
            format!("Participant label {label:?} is already in use"),
        ));
    }
    let target = |url: &str, method: &str, event: &str, default: &[&str]| {
        Ok::<_, ApiError>(match p.url(url)? {
            Some(url) => {
                let mut events: Vec<String> = p
                    .all(event)
                    .iter()
                    .flat_map(|e| e.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                    .collect();
                if events.is_empty() {
                    events = default.iter().map(|e| e.to_string()).collect();
                }
                Some((url, p.method(method)?, events))
            }
            None => None,
        })
    };
    let leg_target = target(
        "StatusCallback",
        "StatusCallbackMethod",
        "StatusCallbackEvent",
        &["completed"],
    )?
    .map(|(url, method, events)| CallbackTarget {
        url,
        method,
        events,
    });
    let conference_target = target(
        "ConferenceStatusCallback",
        "ConferenceStatusCallbackMethod",
        "ConferenceStatusCallbackEvent",
        &["start", "end"],
    )?;
    let call_sid = sid::random("CA");
    let add = AddParticipant {
        account_sid: account.sid.clone(),
        auth_token: shared.auth_token(&account.sid),
        conference: name.clone(),
        call_sid: call_sid.clone(),
        from: from.to_string(),
        to: to.to_string(),
        role: role.clone(),
        callee,
        timeout: seconds("Timeout", 60, 600)?,
        time_limit: seconds("TimeLimit", shared.config.max_call.as_secs(), 86_400)?,
        conference_status_callback: conference_target,
        tunnels: shared.tunnels.clone(),
    };
    let guard = shared
        .task_guard()
        .ok_or_else(|| ApiError::Internal("shutting down".into()))?;
    shared.store.insert_call(CallRecord::new(
        call_sid.clone(),
        account.sid.clone(),
        (from.to_string(), to.to_string()),
        Direction::OutboundApi,
        CallStatus::Queued,
        format!("participant of conference {name:?}"),
    ));
    let info = CallInfo::new(
        account.sid.clone(),
        call_sid.clone(),
        from.to_string(),
        to.to_string(),
        Direction::OutboundApi,
    );
    let leg = Leg {
        shared: shared.clone(),
        sid: call_sid.clone(),
        cb: Arc::new(Callbacks::new(
            shared.clone(),
            info,
            leg_target,
            guard.clone(),
        )),
    };
    leg.cb.progress("initiated", "initiated", Vec::new());
    let engine = shared.engine.clone();
    tokio::spawn(async move {
        let _guard = guard;
        engine
            .add_participant(add, &|step| match step {
                LegProgress::Ringing => {
                    leg.set_status(CallStatus::Ringing);
                    leg.cb.progress("ringing", "ringing", Vec::new());
                }
                LegProgress::InProgress => leg.answer(),
                LegProgress::Ended(status, _) => leg.finish(
                    status,
                    format!("left conference ({})", status.as_str()),
                    Vec::new(),
                    Vec::new(),
                    None,
                ),
            })
            .await;
    });
    let now = std::time::SystemTime::now();
    let conference_sid = shared
        .engine
        .conferences()
        .find(&account.sid, &name)
        .map(|c| c.sid().to_string());
    let info = ParticipantInfo {
        call_sid,
        conference_sid: conference_sid.unwrap_or_default(),
        account_sid: account.sid.clone(),
        role,
        hold: false,
        created: now,
        updated: now,
    };
    let mut body = participant_json(&info, "queued");
    body["queue_time"] = json!("0");
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
