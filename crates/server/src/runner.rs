//! One created call's life: it waits `queued` for a permit, sends `initiated`, rings, and then
//! either rings a hosted number's app as a second, inbound leg (two-leg call: the caller leg's
//! TwiML becomes the audio the app hears) or runs its own TwiML against a simulated callee
//! (far-end audio). The end sets the status, keeps the audio, makes the recording, and sends
//! the terminal status callback.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dialtone_call::{CallConfig, CallResult, CallerAudioStart, HttpMethod, Redirect};
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{CallInfo, CallStatus, Direction};
use tokio::sync::mpsc;

use crate::Shared;
use crate::callbacks::{CallbackTarget, Callbacks};
use crate::caller_leg;
use crate::capture::{clips, concat};
use crate::leg::Leg;
use crate::observe::Observer;
use crate::store::{CallRecord, Control, NumberRecord, StreamClip};

/// A call as created through the REST API.
#[derive(Debug, Clone)]
pub(crate) struct CallPlan {
    pub(crate) sid: String,
    pub(crate) account_sid: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) url: Option<String>,
    pub(crate) method: HttpMethod,
    pub(crate) twiml: Option<String>,
    pub(crate) fallback_url: Option<String>,
    pub(crate) callback: Option<CallbackTarget>,
    pub(crate) send_digits: String,
    /// `Timeout`: how long the callee may ring before the call is `no-answer`.
    pub(crate) ring_timeout: Duration,
    /// Channels of the recording when `Record=true`.
    pub(crate) record_channels: Option<u16>,
    pub(crate) time_limit: Duration,
}

impl CallPlan {
    /// The webhook parameters' view of this REST-created (outbound API) leg.
    fn caller_info(&self) -> CallInfo {
        CallInfo::new(
            self.account_sid.clone(),
            self.sid.clone(),
            self.from.clone(),
            self.to.clone(),
            Direction::OutboundApi,
        )
    }
}

/// Runs the call in its own task; `guard` lets shutdown wait for it (and its callbacks, whose
/// senders hold clones of it: at shutdown no new guard can be had).
pub(crate) fn spawn(shared: Arc<Shared>, plan: CallPlan, guard: mpsc::Sender<()>) {
    tokio::spawn(run(shared, plan, guard));
}

async fn run(shared: Arc<Shared>, plan: CallPlan, guard: mpsc::Sender<()>) {
    // A call waits `queued` for a permit, unless a REST update cancels it first (it is woken
    // then, so its callback goes out at once) or shutdown closes the semaphore.
    let wake = shared
        .store
        .call(&plan.sid)
        .map(|c| c.control.wake)
        .unwrap_or_default();
    let permit = tokio::select! {
        p = shared.permits.clone().acquire_owned() => p.ok(),
        () = wake.notified() => None,
    };
    shared.queued.fetch_sub(1, Ordering::Relaxed);
    let info = plan.caller_info();
    let cb = Callbacks::new(shared.clone(), info, plan.callback.clone(), guard.clone());
    let leg = Arc::new(Leg {
        shared: shared.clone(),
        sid: plan.sid.clone(),
        cb: Arc::new(cb),
    });
    let Some(_permit) = permit else {
        // Shutdown closes the permits (and marks queued calls canceled too): it comes first.
        let (status, why) = match leg.cancelled() {
            Some(s) if !shared.permits.is_closed() => {
                (s, "canceled through the REST API while queued")
            }
            _ => (CallStatus::Canceled, "server shut down while queued"),
        };
        leg.finish(status, why.into(), Vec::new(), Vec::new(), None);
        return;
    };
    if let Some(s) = leg.cancelled() {
        leg.finish(
            s,
            "canceled through the REST API while queued".into(),
            Vec::new(),
            Vec::new(),
            None,
        );
        return;
    }
    leg.cb.progress("initiated", "initiated", Vec::new());
    leg.set_status(CallStatus::Ringing);
    leg.log("info", format!("ringing {}", plan.to));
    leg.cb.progress("ringing", "ringing", Vec::new());
    match shared.store.number_by_phone(&plan.to) {
        Some(n) if n.voice_url.is_some() => two_legs(leg, plan, n, guard).await,
        _ => one_leg(leg, plan).await,
    }
}

/// Base for relative URLs in inline TwiML.
fn base_url(shared: &Shared, plan: &CallPlan) -> String {
    plan.url
        .clone()
        .unwrap_or_else(|| format!("{}/", shared.public_url))
}

/// What differs between the engine calls a plan can make: the created leg running its own
/// TwiML against the far end, or a hosted number's app hearing the caller leg.
pub(crate) struct LegTarget {
    /// The account whose auth token signs the leg's requests.
    pub(crate) account_sid: String,
    pub(crate) url: String,
    pub(crate) method: HttpMethod,
    pub(crate) twiml: Option<String>,
    pub(crate) fallback_url: Option<String>,
    pub(crate) direction: Direction,
    pub(crate) call_sid: String,
    /// What the app hears from the other party.
    pub(crate) audio: Arc<dialtone_audio::FrameSet>,
}

/// A leg's engine config, filled once: the server's settings, the leg's target, and the
/// plan's parties, digits and time limit. Callers adjust only what is theirs alone.
pub(crate) fn leg_config(shared: &Arc<Shared>, plan: &CallPlan, target: LegTarget) -> CallConfig {
    let mut cfg = CallConfig::new(target.url, target.audio);
    cfg.auth_token = shared.auth_token(&target.account_sid);
    cfg.account_sid = target.account_sid;
    cfg.caller.tail = shared.config.caller_tail;
    // Twilio never fails a call because an app is quiet.
    cfg.no_audio_timeout = None;
    cfg.record = true;
    cfg.tunnels = shared.tunnels.clone();
    cfg.method = target.method;
    cfg.twiml = target.twiml;
    cfg.fallback_url = target.fallback_url;
    cfg.from = plan.from.clone();
    cfg.to = plan.to.clone();
    cfg.direction = target.direction;
    cfg.call_sid = Some(target.call_sid);
    cfg.caller.gather_digits = plan.send_digits.clone();
    cfg.caller.stream_dtmf = dialtone_call::dial::digit_schedule(&plan.send_digits);
    cfg.max_duration = plan.time_limit.min(shared.config.max_call);
    cfg.directory = Arc::new(crate::dial_legs::ServeBook::new(shared.clone()));
    cfg.recordings = Some(Arc::new(crate::capture::StoreRecordings(shared.clone())));
    cfg.capture = capture_file(shared, &cfg);
    cfg
}

/// `--capture DIR`: the leg's exchanges go to `DIR/{CallSid}.jsonl`, for `dialtone replay`.
/// A file that cannot be made is logged on the call, which runs uncaptured.
fn capture_file(shared: &Shared, cfg: &CallConfig) -> Option<Arc<dialtone_call::capture::Capture>> {
    let dir = shared.config.capture_dir.as_ref()?;
    let sid = cfg.call_sid.as_deref()?;
    let path = dir.join(format!("{sid}.jsonl"));
    match dialtone_call::capture::Capture::create(&path) {
        Ok(c) => {
            shared
                .store
                .log(sid, "info", format!("capturing to {}", path.display()));
            Some(Arc::new(c))
        }
        Err(e) => {
            let why = format!("cannot capture to {}: {e}", path.display());
            shared.store.log(sid, "warn", why);
            None
        }
    }
}

/// Flushes a `--capture` file once its call is over: one that could not be written whole is
/// said on the call's timeline.
pub(crate) fn finish_capture(leg: &Leg, capture: Option<Arc<dialtone_call::capture::Capture>>) {
    if let Some(Err(e)) = capture.map(|c| c.finish()) {
        leg.log("warn", format!("the capture is incomplete: {e}"));
    }
}

/// A call to a number dialtone does not host: the created leg runs its TwiML, the callee
/// plays the far-end audio.
async fn one_leg(leg: Arc<Leg>, plan: CallPlan) {
    let shared = leg.shared.clone();
    // Ring, noticing a cancel at once; a callee that rings past `Timeout` is not answered.
    let ring = shared.config.ring.min(plan.ring_timeout);
    let ring_end = tokio::time::Instant::now() + ring;
    while tokio::time::Instant::now() < ring_end && leg.cancelled().is_none() {
        tokio::time::sleep(Duration::from_millis(50).min(ring_end - tokio::time::Instant::now()))
            .await;
    }
    if let Some(s) = leg.cancelled() {
        leg.finish(
            s,
            "canceled through the REST API while ringing".into(),
            Vec::new(),
            Vec::new(),
            None,
        );
        return;
    }
    if shared.config.ring > plan.ring_timeout {
        let why = format!(
            "no answer within Timeout ({} s)",
            plan.ring_timeout.as_secs()
        );
        leg.finish(CallStatus::NoAnswer, why, Vec::new(), Vec::new(), None);
        return;
    }
    leg.answer();
    let (mut url, mut twiml) = (plan.url.clone(), plan.twiml.clone());
    match leg.pending() {
        Some(Redirect::Url { url: u, .. }) => (url, twiml) = (Some(u), None),
        Some(Redirect::Twiml(t)) => twiml = Some(t),
        None => {}
    }
    let base = url.clone().unwrap_or_else(|| base_url(&shared, &plan));
    let target = LegTarget {
        account_sid: plan.account_sid.clone(),
        url: base,
        method: plan.method,
        twiml: twiml.clone(),
        fallback_url: plan.fallback_url.clone(),
        direction: Direction::OutboundApi,
        call_sid: plan.sid.clone(),
        audio: shared.config.far_end_audio.clone(),
    };
    let cfg = leg_config(&shared, &plan, target);
    let observer = Observer::new(shared.clone(), plan.sid.clone(), leg.cb.clone(), None);
    if let Some(doc) = twiml.as_deref().and_then(|t| dialtone_twiml::parse(t).ok()) {
        observer.learn_streams(&doc);
    }
    leg.log(
        "info",
        format!(
            "callee {} is not hosted here: it plays the far-end audio",
            plan.to
        ),
    );
    let engine = shared.engine.clone();
    let capture = cfg.capture.clone();
    let prepared = engine.prepare(cfg);
    attach(&shared, &plan.sid, prepared.handle(), true);
    let result = prepared.run(Some(observer.sink())).await;
    finish_capture(&leg, capture);
    let (status, reason, failures) = outcome(&result);
    let clips = clips(&result);
    // The created leg's party is the app (what the callee heard); the other, the callee.
    let recording = plan
        .record_channels
        .map(|ch| recording_tracks(ch, &result, &clips, Party::App));
    leg.finish(status, reason, failures, clips, recording);
}

/// A call to a hosted number: the app's inbound leg runs in the engine, hearing the caller
/// leg's TwiML rendered as audio.
async fn two_legs(leg: Arc<Leg>, plan: CallPlan, number: NumberRecord, guard: mpsc::Sender<()>) {
    let shared = leg.shared.clone();
    let caller_info = plan.caller_info();
    let doc = match caller_leg_twiml(&leg, &plan, &caller_info).await {
        Ok(d) => d,
        Err(e) => {
            let why = format!("the caller leg's TwiML failed: {e}");
            leg.finish(CallStatus::Failed, why.clone(), vec![why], Vec::new(), None);
            return;
        }
    };
    let audio = caller_leg_audio(&leg, &plan, &doc).await;
    let (app_sid, voice_url) = ring_app(&shared, &leg, &plan, &number);
    let app_info = CallInfo {
        account_sid: number.account_sid.clone(),
        call_sid: app_sid.clone(),
        direction: Direction::Inbound,
        ..caller_info
    };
    let app_target = number.status_callback.clone().map(|url| CallbackTarget {
        url,
        method: number.status_callback_method,
        events: vec!["completed".into()],
    });
    let app_leg = Arc::new(Leg {
        shared: shared.clone(),
        sid: app_sid.clone(),
        cb: Arc::new(Callbacks::new(shared.clone(), app_info, app_target, guard)),
    });
    let cfg = app_config(&shared, &plan, &number, app_sid, voice_url, audio);
    run_two_legs(&shared, leg, app_leg, &plan, cfg).await;
}

/// The caller leg's TwiML: a pending redirect's, else the plan's inline TwiML, else the
/// document its `Url` answers with (requested as Twilio would, signed with the account's
/// token). `Err` says why there is none.
async fn caller_leg_twiml(
    leg: &Leg,
    plan: &CallPlan,
    caller_info: &CallInfo,
) -> Result<dialtone_twiml::Document, String> {
    let shared = &leg.shared;
    let token = shared
        .account(&plan.account_sid)
        .map_or_else(String::new, |a| a.auth_token.clone());
    let (url, twiml) = match leg.pending() {
        Some(Redirect::Url { url, .. }) => (Some(url), None),
        Some(Redirect::Twiml(t)) => (None, Some(t)),
        None => (plan.url.clone(), plan.twiml.clone()),
    };
    match (&twiml, &url) {
        (Some(t), _) => dialtone_twiml::parse(t).map_err(|e| format!("(inline TwiML): {e}")),
        (None, Some(u)) => {
            leg.log(
                "info",
                format!(
                    "caller leg requests its TwiML: {} {u}",
                    plan.method.as_str()
                ),
            );
            caller_leg::fetch_twiml(
                &shared.net,
                &shared.tunnels,
                &token,
                u,
                plan.method,
                caller_info,
            )
            .await
        }
        (None, None) => Err("no Url or Twiml".to_string()),
    }
}

/// The caller leg's TwiML rendered as the audio the app hears, with what the rendering
/// noted and how long it is logged on the call.
async fn caller_leg_audio(
    leg: &Leg,
    plan: &CallPlan,
    doc: &dialtone_twiml::Document,
) -> caller_leg::CallerAudio {
    let shared = &leg.shared;
    let names: Vec<&str> = doc.verbs.iter().map(|n| n.verb.name()).collect();
    leg.log("info", format!("caller leg TwiML: {}", names.join(", ")));
    let base = base_url(shared, plan);
    let audio = caller_leg::render(&shared.net, &shared.tunnels, doc, &base, plan.time_limit).await;
    for note in &audio.notes {
        leg.log("warn", note.clone());
    }
    let audio_len = audio.frames.duration();
    leg.log(
        "info",
        format!("caller leg audio: {:.1} s", audio_len.as_secs_f64()),
    );
    audio
}

/// Creates the hosted number's inbound call (ringing, linked to the created leg both
/// ways) and returns its SID and the app's voice URL.
fn ring_app(
    shared: &Shared,
    leg: &Leg,
    plan: &CallPlan,
    number: &NumberRecord,
) -> (String, String) {
    let app_sid = sid::random("CA");
    let voice_url = number.voice_url.clone().unwrap_or_default();
    shared.store.insert_call(CallRecord {
        phone_number_sid: Some(number.sid.clone()),
        peer_sid: Some(plan.sid.clone()),
        control: Control {
            redirectable: true,
            ..Control::default()
        },
        ..CallRecord::new(
            app_sid.clone(),
            number.account_sid.clone(),
            (plan.from.clone(), plan.to.clone()),
            Direction::Inbound,
            CallStatus::Ringing,
            voice_url.clone(),
        )
    });
    shared
        .store
        .update_call(&plan.sid, |c| c.peer_sid = Some(app_sid.clone()));
    leg.log(
        "info",
        format!(
            "{} is hosted here: ringing its app {voice_url} as inbound call {app_sid}",
            plan.to
        ),
    );
    (app_sid, voice_url)
}

/// The app leg's engine config: the number's app hears the caller leg's audio, and the
/// digits the caller leg keys join the plan's `SendDigits`.
fn app_config(
    shared: &Arc<Shared>,
    plan: &CallPlan,
    number: &NumberRecord,
    app_sid: String,
    voice_url: String,
    audio: caller_leg::CallerAudio,
) -> CallConfig {
    let keyed: String = audio.dtmf.iter().map(|(_, c)| c).collect();
    let target = LegTarget {
        account_sid: number.account_sid.clone(),
        url: voice_url,
        method: number.voice_method,
        twiml: None,
        fallback_url: number.voice_fallback_url.clone(),
        direction: Direction::Inbound,
        call_sid: app_sid,
        audio: Arc::new(audio.frames),
    };
    let mut cfg = leg_config(shared, plan, target);
    // The number's own mappings first, then the global table and the other numbers'.
    cfg.tunnels = Arc::new(number.tunnels.then(&shared.tunnels));
    // The caller leg talks from the answer, as on Twilio: a stream the app opens after its
    // greeting joins the caller's audio where it is by then. The caller leg hangs up where
    // its TwiML ends (stream or not); a short grace lets the app's last reply out.
    cfg.caller.start = CallerAudioStart::Answer;
    cfg.caller.tail = Duration::from_millis(500);
    cfg.caller.gather_digits.push_str(&keyed);
    cfg.caller.stream_dtmf.extend(audio.dtmf.iter().copied());
    cfg.caller.stream_dtmf.sort_by_key(|(t, _)| *t);
    cfg.caller.turns = audio.turns;
    cfg
}

/// Runs the app's leg in the engine with the created leg attached to it (both answer
/// together), then ends both: the created leg with the clips seen from its side.
async fn run_two_legs(
    shared: &Arc<Shared>,
    leg: Arc<Leg>,
    app_leg: Arc<Leg>,
    plan: &CallPlan,
    cfg: CallConfig,
) {
    let app_sid = app_leg.sid.clone();
    let engine = shared.engine.clone();
    let capture = cfg.capture.clone();
    let prepared = engine.prepare(cfg);
    let handle = prepared.handle();
    attach(shared, &app_sid, handle.clone(), true);
    attach(shared, &plan.sid, handle, false);
    let on_answer = {
        let (leg, app_leg) = (leg.clone(), app_leg.clone());
        Box::new(move || {
            app_leg.answer();
            leg.answer();
        }) as Box<dyn FnOnce() + Send>
    };
    let observer = Observer::new(
        shared.clone(),
        app_sid.clone(),
        app_leg.cb.clone(),
        Some(on_answer),
    );
    let result = prepared.run(Some(observer.sink())).await;
    finish_capture(&app_leg, capture);
    let (status, reason, failures) = outcome(&result);
    let clips = clips(&result);
    app_leg.finish(
        status,
        reason.clone(),
        failures.clone(),
        clips.clone(),
        None,
    );
    // The caller leg's party is what it said; the other party is the app.
    let recording = plan
        .record_channels
        .map(|ch| recording_tracks(ch, &result, &clips, Party::Caller));
    let swapped = clips
        .into_iter()
        .map(|c| StreamClip {
            heard: c.sent.clone(),
            sent: c.heard.clone(),
            ..c
        })
        .collect();
    leg.finish(
        status,
        format!("the app's leg {app_sid} ended: {reason}"),
        failures,
        swapped,
        recording,
    );
}

/// Whose side of the engine's call the created leg is.
#[derive(Clone, Copy)]
pub(crate) enum Party {
    /// The engine's caller (two-leg calls: the created leg calls the app).
    Caller,
    /// The app the engine rings (one-leg calls: the created leg's TwiML is the app).
    App,
}

/// The recording's two tracks, `(channels, created leg's party, other party)`: the whole
/// answered call (the app's `<Say>`/`<Play>`, its streams, the caller throughout) when the
/// engine has it, else each stream's audio one after the other.
pub(crate) fn recording_tracks(
    channels: u16,
    result: &CallResult,
    clips: &[StreamClip],
    party: Party,
) -> (u16, Vec<u8>, Vec<u8>) {
    let (app, caller) = match &result.call_audio {
        Some(a) => (a.heard.clone(), a.said.clone()),
        None => (concat(clips, true), concat(clips, false)),
    };
    match party {
        Party::Caller => (channels, caller, app),
        Party::App => (channels, app, caller),
    }
}

/// Stores the engine handle on a call so REST updates can steer it; a hang-up that arrived
/// in between is applied at once.
pub(crate) fn attach(
    shared: &Shared,
    sid: &str,
    handle: dialtone_call::CallHandle,
    redirectable: bool,
) {
    let ended = shared.store.update_call(sid, |c| {
        c.control.handle = Some(handle.clone());
        c.control.redirectable = redirectable;
        c.status.is_terminal()
    });
    if ended == Some(true) {
        handle.hangup(dialtone_call::REST_HANGUP);
    }
}

pub(crate) fn outcome(result: &CallResult) -> (CallStatus, String, Vec<String>) {
    let r = &result.report;
    // The engine ends a call in a terminal status; anything else would be a bug, counted
    // as completed as before.
    let status = if r.status.is_terminal() {
        r.status
    } else {
        CallStatus::Completed
    };
    let failures = r
        .failures
        .iter()
        .map(|f| format!("{} [{}]: {f}", f.step(), f.code()))
        .collect();
    (status, r.end_reason.clone(), failures)
}
