//! A call placed from the page's phone: an inbound call to one of the account's hosted
//! numbers (or straight to a voice URL) whose caller is the browser, talking live
//! ([`LiveCaller`]). Otherwise it is a call like any REST-created one: in the store and the
//! REST API, its number's status callback, recorded (caller and app, two channels),
//! captured under `--capture`, steerable and hung up through the REST API.

use std::sync::Arc;
use std::time::Duration;

use dialtone_call::live::{JITTER_MAX, JITTER_TARGET, LiveCaller};
use dialtone_call::{CallEvent, CallHandle, CallerAudioStart, EventSink, HttpMethod};
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{CallInfo, CallStatus, Direction};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::Shared;
use crate::callbacks::{CallbackTarget, Callbacks};
use crate::capture::clips;
use crate::config::Account;
use crate::leg::Leg;
use crate::observe::Observer;
use crate::runner::{CallPlan, LegTarget, Party, attach, leg_config, outcome, recording_tracks};
use crate::store::{CallRecord, Control};

/// The longest phone call: what the browser says is kept for the recording, 8 kB/s.
pub(crate) const PHONE_MAX: Duration = Duration::from_secs(3600);
/// The caller when the page names none (Twilio's magic test number, as `dialtone call`).
const DEFAULT_FROM: &str = "+15005550006";
/// `To` of a call placed straight to a voice URL.
const DEFAULT_TO: &str = "+15005550001";

/// Where the phone calls and as whom.
#[derive(Debug, Clone)]
pub(crate) struct Dialed {
    account_sid: String,
    from: String,
    to: String,
    url: String,
    method: HttpMethod,
    fallback_url: Option<String>,
    number_sid: Option<String>,
    status_callback: Option<CallbackTarget>,
    tunnels: Arc<dialtone_call::Tunnels>,
}

/// A phone number, or `client:NAME` with a plain name (letters, digits, `_ - .`, at most 64).
fn party(s: &str) -> bool {
    crate::format::is_phone_number(s)
        || s.strip_prefix("client:").is_some_and(|name| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
}

/// What the page asked for: a hosted number of the account, or a voice URL. `Err` says
/// why it cannot be called.
pub(crate) fn dial(
    shared: &Shared,
    account: &Account,
    to: Option<&str>,
    url: Option<&str>,
    from: Option<&str>,
) -> Result<Dialed, String> {
    let from = from.unwrap_or(DEFAULT_FROM);
    if !party(from) {
        return Err(format!(
            "from {from:?} is not a phone number or client:NAME"
        ));
    }
    if let Some(url) = url.filter(|u| !u.is_empty()) {
        if !crate::format::is_http_url(url) {
            return Err(format!("{url:?} is not an http(s) URL"));
        }
        if let Some(to) = to.filter(|t| !party(t)) {
            return Err(format!("to {to:?} is not a phone number or client:NAME"));
        }
        return Ok(Dialed {
            account_sid: account.sid.clone(),
            from: from.to_string(),
            to: to.unwrap_or(DEFAULT_TO).to_string(),
            url: url.to_string(),
            method: HttpMethod::Post,
            fallback_url: None,
            number_sid: None,
            status_callback: None,
            tunnels: shared.tunnels.clone(),
        });
    }
    let to = to.ok_or("name a number (to) or a voice URL (url)")?;
    let number = shared
        .store
        .number_by_phone(to)
        .filter(|n| n.account_sid == account.sid)
        .ok_or_else(|| format!("{to} is not a number of account {}", account.sid))?;
    let url = number
        .voice_url
        .clone()
        .ok_or_else(|| format!("{to} has no voice URL"))?;
    Ok(Dialed {
        account_sid: account.sid.clone(),
        from: from.to_string(),
        to: to.to_string(),
        url,
        method: number.voice_method,
        fallback_url: number.voice_fallback_url.clone(),
        number_sid: Some(number.sid.clone()),
        status_callback: number.status_callback.clone().map(|url| CallbackTarget {
            url,
            method: number.status_callback_method,
            events: vec!["completed".into()],
        }),
        tunnels: Arc::new(number.tunnels.then(&shared.tunnels)),
    })
}

/// A phone call placed and running.
pub(crate) struct PhoneCall {
    pub(crate) sid: String,
    pub(crate) handle: CallHandle,
    /// Ends with the call's final status and why.
    pub(crate) done: tokio::task::JoinHandle<(CallStatus, String)>,
}

/// Places the call: it rings the app at once; `events` sees every step as it happens.
pub(crate) async fn place(
    shared: &Arc<Shared>,
    dialed: Dialed,
    live: Arc<LiveCaller>,
    events: EventSink,
    permit: OwnedSemaphorePermit,
) -> Result<PhoneCall, String> {
    let guard = shared.task_guard().ok_or("the server is shutting down")?;
    let sid = sid::random("CA");
    shared.store.insert_call(CallRecord {
        phone_number_sid: dialed.number_sid.clone(),
        control: Control {
            redirectable: true,
            ..Control::default()
        },
        ..CallRecord::new(
            sid.clone(),
            dialed.account_sid.clone(),
            (dialed.from.clone(), dialed.to.clone()),
            Direction::Inbound,
            CallStatus::Ringing,
            dialed.url.clone(),
        )
    });
    let info = CallInfo::new(
        dialed.account_sid.clone(),
        sid.clone(),
        dialed.from.clone(),
        dialed.to.clone(),
        Direction::Inbound,
    );
    let cb = Callbacks::new(shared.clone(), info, dialed.status_callback.clone(), guard);
    let leg = Arc::new(Leg {
        shared: shared.clone(),
        sid: sid.clone(),
        cb: Arc::new(cb),
    });
    leg.log(
        "info",
        format!("the page's phone calls {} ({})", dialed.to, dialed.url),
    );
    let cfg = phone_config(shared, &dialed, &sid, live.clone());
    let capture = cfg.capture.clone();
    let on_answer = {
        let leg = leg.clone();
        Box::new(move || leg.answer()) as Box<dyn FnOnce() + Send>
    };
    let observer = Observer::new(shared.clone(), sid.clone(), leg.cb.clone(), Some(on_answer));
    let observed = observer.sink();
    let sink: EventSink = Arc::new(move |e: &CallEvent| {
        observed(e);
        events(e);
    });
    // The engine's prepared call borrows it: both live in the call's task, which hands the
    // handle back before the call runs.
    let (handle_tx, handle_rx) = oneshot::channel();
    let shared = shared.clone();
    let call_sid = sid.clone();
    let done = tokio::spawn(async move {
        let _permit = permit;
        let engine = shared.engine.clone();
        let prepared = engine.prepare(cfg);
        attach(&shared, &call_sid, prepared.handle(), true);
        let _ = handle_tx.send(prepared.handle());
        let result = prepared.run(Some(sink)).await;
        crate::runner::finish_capture(&leg, capture);
        let (status, reason, failures) = outcome(&result);
        let clips = clips(&result);
        let j = live.stats();
        leg.log(
            if j.underruns == 0 { "ok" } else { "warn" },
            format!(
                "the page's audio: {} slots of 20 ms, {} ran dry (silence sent), {} ms dropped \
                 from a full buffer (jitter buffer {}-{} ms)",
                j.slots,
                j.underruns,
                j.dropped_bytes / 8,
                JITTER_TARGET / 8,
                JITTER_MAX / 8
            ),
        );
        let recording = recording_tracks(2, &result, &clips, Party::Caller);
        leg.finish(status, reason.clone(), failures, clips, Some(recording));
        (status, reason)
    });
    let handle = handle_rx
        .await
        .map_err(|_| "the call's task ended before it began".to_string())?;
    Ok(PhoneCall { sid, handle, done })
}

/// The engine config: serve's settings for an inbound call, the browser as its caller.
fn phone_config(
    shared: &Arc<Shared>,
    dialed: &Dialed,
    sid: &str,
    live: Arc<LiveCaller>,
) -> dialtone_call::CallConfig {
    let plan = CallPlan {
        sid: sid.to_string(),
        account_sid: dialed.account_sid.clone(),
        from: dialed.from.clone(),
        to: dialed.to.clone(),
        url: Some(dialed.url.clone()),
        method: dialed.method,
        twiml: None,
        fallback_url: dialed.fallback_url.clone(),
        callback: None,
        send_digits: String::new(),
        ring_timeout: Duration::ZERO,
        record_channels: Some(2),
        time_limit: PHONE_MAX,
    };
    let target = LegTarget {
        account_sid: dialed.account_sid.clone(),
        url: dialed.url.clone(),
        method: dialed.method,
        twiml: None,
        fallback_url: dialed.fallback_url.clone(),
        direction: Direction::Inbound,
        call_sid: sid.to_string(),
        audio: Arc::new(dialtone_audio::FrameSet::from_mulaw(&[])),
    };
    let mut cfg = leg_config(shared, &plan, target);
    cfg.tunnels = dialed.tunnels.clone();
    cfg.caller.start = CallerAudioStart::Answer;
    cfg.caller.tail = Duration::ZERO;
    cfg.caller.live = Some(live);
    cfg
}
