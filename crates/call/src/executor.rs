//! Executes TwiML for one call the way Twilio does: verbs in order, a new document replacing
//! the current one on `action`/`<Redirect>`, `<Connect><Stream>` blocking until the stream
//! ends, `<Start><Stream>` forking, and falling off the end hanging up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_protocol::media::StreamIds;
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{self as params, CallInfo, CallStatus, Direction};
use dialtone_twiml::{ConnectTarget, Node, StartTarget, Track, Verb};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::config::{CallConfig, HttpMethod};
use crate::report::{CallReport, EventKind, Failure, StreamReport};
use crate::stream::{self, OutboundAudio, StreamCtx, StreamOutcome, StreamSpec, Tracks};
use crate::timeline::{EventSink, Timeline};
use crate::webhook::{self, Fetched, TwimlRequest};

/// `<Say>` is timed at 150 words per minute (Twilio's voices speak at about that rate),
/// with a floor of half a second.
pub const SAY_MS_PER_WORD: u64 = 400;

/// Places calls; holds what calls share (HTTP connection pool, fetched `<Play>` audio).
pub struct Engine {
    http: reqwest::Client,
    play_cache: Mutex<HashMap<String, Arc<FrameSet>>>,
    /// One second of `<Say>` tone, looped by forks that carry the outbound track.
    say_tone: Arc<FrameSet>,
}

/// `<Play>` files kept per engine; past this the cache starts over (a load run plays a few
/// files many times, not many files).
const PLAY_CACHE_MAX: usize = 64;

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// Audio the caller heard from the app and sent, per stream, when recording.
#[derive(Debug, Clone)]
pub struct StreamAudio {
    /// Stream SID.
    pub stream_sid: String,
    /// What the caller heard (μ-law 8 kHz), on the stream's timeline.
    pub heard: Vec<u8>,
    /// What the caller sent on the inbound track (μ-law 8 kHz).
    pub sent: Vec<u8>,
}

/// A finished call: its report and, when recording, its audio.
#[derive(Debug)]
pub struct CallResult {
    /// Everything measured.
    pub report: CallReport,
    /// Per-stream audio (empty unless `record` was set).
    pub audio: Vec<StreamAudio>,
}

/// What the executor does after a verb.
enum Next {
    Continue,
    Replace(Fetched),
    End { status: CallStatus, reason: String },
}

struct Fork {
    stop: watch::Sender<bool>,
    handle: JoinHandle<StreamOutcome>,
}

struct Call<'e> {
    engine: &'e Engine,
    cfg: CallConfig,
    info: CallInfo,
    timeline: Arc<Timeline>,
    /// Set when the call must end (caller hung up, max duration); carries the reason.
    end: watch::Receiver<Option<String>>,
    end_tx: Arc<watch::Sender<Option<String>>>,
    /// Set once the first stream has started and the caller's hang-up timer runs.
    caller_hangup_armed: Arc<std::sync::atomic::AtomicBool>,
    digits: std::collections::VecDeque<char>,
    outbound: Arc<OutboundAudio>,
    forks: Vec<(String, Fork)>,
    streams: Vec<StreamReport>,
    audio: Vec<StreamAudio>,
    failures: Vec<Failure>,
    warnings: Vec<(u16, String)>,
    documents: u32,
}

impl Engine {
    /// An engine with a fresh connection pool.
    pub fn new() -> Self {
        Self {
            http: webhook::http_client(),
            play_cache: Mutex::new(HashMap::new()),
            say_tone: Arc::new(tone_frames(Duration::from_secs(1))),
        }
    }

    /// Places one call and runs it to its end. Never panics on app behaviour: every failure
    /// is in the report.
    pub async fn place_call(&self, cfg: CallConfig, sink: Option<EventSink>) -> CallResult {
        let timeline = Arc::new(Timeline::new(sink));
        let call_sid = cfg.call_sid.clone().unwrap_or_else(|| sid::random("CA"));
        let info = CallInfo {
            account_sid: cfg.account_sid.clone(),
            call_sid: call_sid.clone(),
            from: cfg.from.clone(),
            to: cfg.to.clone(),
            direction: cfg.direction,
            call_token: None,
            caller_country: "US".into(),
            called_country: "US".into(),
            parent_call_sid: None,
        };
        let (end_tx, end) = watch::channel(None);
        let end_tx = Arc::new(end_tx);
        let max = cfg.max_duration;
        let max_tx = end_tx.clone();
        let max_timer = tokio::spawn(async move {
            sleep(max).await;
            max_tx.send_if_modified(|r| {
                r.get_or_insert_with(|| format!("max duration {} s reached", max.as_secs()));
                true
            });
        });
        let digits = cfg.caller.gather_digits.chars().collect();
        let mut call = Call {
            engine: self,
            cfg,
            info,
            timeline: timeline.clone(),
            end,
            end_tx,
            caller_hangup_armed: Arc::default(),
            digits,
            outbound: Arc::new(OutboundAudio::default()),
            forks: Vec::new(),
            streams: Vec::new(),
            audio: Vec::new(),
            failures: Vec::new(),
            warnings: Vec::new(),
            documents: 0,
        };
        let (status, reason) = call.run().await;
        call.stop_forks(None).await;
        max_timer.abort();
        timeline.emit(EventKind::Ended {
            status: status.as_str(),
            reason: reason.clone(),
        });
        let events = timeline.take();
        let webhook_ms = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::WebhookAnswered { elapsed, .. } => Some(elapsed.as_secs_f64() * 1e3),
                _ => None,
            })
            .collect();
        CallResult {
            report: CallReport {
                call_sid,
                status: status.as_str(),
                end_reason: reason,
                duration_ms: events.last().map_or(0.0, |e| e.at.as_secs_f64() * 1e3),
                webhook_ms,
                failures: call.failures,
                warnings: call.warnings,
                streams: call.streams,
                timeline: events,
            },
            audio: call.audio,
        }
    }
}

impl Call<'_> {
    async fn run(&mut self) -> (CallStatus, String) {
        let first_status = match self.info.direction {
            Direction::Inbound => CallStatus::Ringing,
            _ => CallStatus::InProgress,
        };
        let url = self.cfg.url.clone();
        let first = self
            .request("voice", &url, self.cfg.method, first_status, Vec::new())
            .await;
        let mut current = match first {
            Ok(f) => f,
            Err(failure) => {
                let Some(fallback) = self.cfg.fallback_url.clone() else {
                    self.failures.push(failure);
                    return (CallStatus::Failed, "no TwiML from the voice URL".into());
                };
                let extra = vec![
                    ("ErrorCode".to_string(), failure.code().to_string()),
                    ("ErrorUrl".to_string(), url.clone()),
                ];
                self.failures.push(failure);
                match self
                    .request("fallback", &fallback, HttpMethod::Post, first_status, extra)
                    .await
                {
                    Ok(f) => f,
                    Err(f2) => {
                        self.failures.push(f2);
                        return (
                            CallStatus::Failed,
                            "no TwiML from voice or fallback URL".into(),
                        );
                    }
                }
            }
        };
        loop {
            let doc_url = current.url.clone();
            let verbs = std::mem::take(&mut current.doc.verbs);
            let mut replaced = None;
            for (index, node) in verbs.iter().enumerate() {
                if let Some(reason) = self.ended() {
                    return (CallStatus::Completed, reason);
                }
                let first_verb = self.documents == 1 && index == 0;
                match self.execute(node, &doc_url, first_verb).await {
                    Next::Continue => {}
                    Next::Replace(f) => {
                        replaced = Some(f);
                        break;
                    }
                    Next::End { status, reason } => return (status, reason),
                }
            }
            match replaced {
                Some(f) => current = f,
                None => {
                    if let Some(reason) = self.ended() {
                        return (CallStatus::Completed, reason);
                    }
                    return (CallStatus::Completed, "end of TwiML".into());
                }
            }
        }
    }

    fn ended(&self) -> Option<String> {
        self.end.borrow().clone()
    }

    /// Sleeps `d`, or less if the call ends; true when the call ended.
    async fn wait(&mut self, d: Duration) -> bool {
        let mut end = self.end.clone();
        tokio::select! {
            _ = sleep(d) => self.ended().is_some(),
            _ = end.wait_for(|r| r.is_some()) => true,
        }
    }

    fn ended_next(&self) -> Next {
        Next::End {
            status: CallStatus::Completed,
            reason: self.ended().unwrap_or_else(|| "call ended".into()),
        }
    }

    async fn request(
        &mut self,
        purpose: &'static str,
        url: &str,
        method: HttpMethod,
        status: CallStatus,
        extra: Vec<(String, String)>,
    ) -> Result<Fetched, Failure> {
        let mut p = params::voice_params(&self.info, status);
        p.extend(extra);
        let req = TwimlRequest {
            purpose,
            url,
            method,
            params: p,
        };
        let r = webhook::fetch_twiml(
            &self.engine.http,
            &self.cfg.auth_token,
            req,
            self.cfg.webhook_timeout,
            &self.timeline,
        )
        .await;
        if r.is_ok() {
            self.documents += 1;
        }
        r
    }

    /// Requests the TwiML that replaces the current document; a failure ends the call.
    async fn follow(
        &mut self,
        purpose: &'static str,
        doc_url: &str,
        target: Option<&str>,
        method: HttpMethod,
        extra: Vec<(String, String)>,
    ) -> Next {
        let url = match webhook::resolve(doc_url, target.unwrap_or(doc_url)) {
            Ok(u) => u,
            Err(e) => {
                self.failures.push(Failure::WebhookUnreachable {
                    url: target.unwrap_or_default().to_string(),
                    cause: e,
                });
                return Next::End {
                    status: CallStatus::Completed,
                    reason: format!("bad {purpose} URL"),
                };
            }
        };
        match self
            .request(purpose, &url, method, CallStatus::InProgress, extra)
            .await
        {
            Ok(f) => Next::Replace(f),
            Err(failure) => {
                self.failures.push(failure);
                Next::End {
                    status: CallStatus::Completed,
                    reason: format!("no TwiML from the {purpose} URL"),
                }
            }
        }
    }

    fn verb_event(&self, node: &Node, detail: String) {
        self.timeline.emit(EventKind::Verb {
            verb: node.verb.name().to_string(),
            line: node.line,
            detail,
        });
    }

    fn warn(&mut self, code: u16, message: String) {
        self.timeline.emit(EventKind::Warning {
            code,
            message: message.clone(),
        });
        self.warnings.push((code, message));
    }

    async fn execute(&mut self, node: &Node, doc_url: &str, first_verb: bool) -> Next {
        match &node.verb {
            Verb::Say(say) => {
                self.verb_event(node, format!("{:?}", truncate(&say.text, 60)));
                self.say(&say.text, say.loop_count).await
            }
            Verb::Play(play) => {
                self.verb_event(
                    node,
                    play.url.clone().unwrap_or_else(|| {
                        format!("digits {}", play.digits.as_deref().unwrap_or(""))
                    }),
                );
                self.play(play, doc_url).await
            }
            Verb::Pause(p) => {
                self.verb_event(node, format!("{} s", p.length_secs));
                if self.wait(Duration::from_secs(p.length_secs.into())).await {
                    return self.ended_next();
                }
                Next::Continue
            }
            Verb::Gather(g) => {
                self.verb_event(
                    node,
                    format!(
                        "timeout {} s, finishOnKey {:?}",
                        g.timeout_secs, g.finish_on_key
                    ),
                );
                self.gather(g, doc_url).await
            }
            Verb::Hangup => {
                self.verb_event(node, String::new());
                Next::End {
                    status: CallStatus::Completed,
                    reason: "<Hangup>".into(),
                }
            }
            Verb::Reject(r) => {
                let reason = match r.reason {
                    dialtone_twiml::RejectReason::Busy => "busy",
                    dialtone_twiml::RejectReason::Rejected => "rejected",
                };
                self.verb_event(node, format!("reason {reason}"));
                if first_verb && self.info.direction == Direction::Inbound {
                    self.failures.push(Failure::Rejected {
                        reason: reason.into(),
                    });
                    Next::End {
                        status: if reason == "busy" {
                            CallStatus::Busy
                        } else {
                            CallStatus::NoAnswer
                        },
                        reason: format!("<Reject reason=\"{reason}\">"),
                    }
                } else {
                    // Twilio honours <Reject> only before the call is answered.
                    self.warn(
                        12200,
                        format!(
                            "<Reject> at line {} after the call was answered hangs up",
                            node.line
                        ),
                    );
                    Next::End {
                        status: CallStatus::Completed,
                        reason: "<Reject> after answer".into(),
                    }
                }
            }
            Verb::Redirect(r) => {
                self.verb_event(node, r.url.clone());
                self.follow(
                    "redirect",
                    doc_url,
                    Some(&r.url),
                    r.method.into(),
                    Vec::new(),
                )
                .await
            }
            Verb::Connect(c) => match &c.target {
                ConnectTarget::Stream(s) => {
                    self.verb_event(node, format!("<Stream url={:?}>", s.url));
                    let outcome = match self.start_stream(s, doc_url, true) {
                        Ok((handle, stop)) => self.await_connect(handle, stop).await,
                        Err(f) => {
                            self.failures.push(f);
                            None
                        }
                    };
                    if let Some(o) = outcome {
                        self.record_stream(o);
                    }
                    if self.ended().is_some() {
                        return self.ended_next();
                    }
                    match &c.action {
                        Some(action) => {
                            self.follow(
                                "action",
                                doc_url,
                                Some(action),
                                c.method.into(),
                                Vec::new(),
                            )
                            .await
                        }
                        None => Next::Continue,
                    }
                }
                ConnectTarget::Other { name } => {
                    self.verb_event(node, format!("<{name}>"));
                    self.warn(0, format!("<Connect><{name}> is not simulated; skipped"));
                    Next::Continue
                }
            },
            Verb::Start(s) => match &s.target {
                StartTarget::Stream(stream) => {
                    self.verb_event(node, format!("<Stream url={:?}>", stream.url));
                    match self.start_stream(stream, doc_url, false) {
                        Ok((handle, stop)) => {
                            let name = stream.name.clone().unwrap_or_default();
                            self.forks.push((name, Fork { stop, handle }));
                        }
                        Err(f) => self.failures.push(f),
                    }
                    Next::Continue
                }
                StartTarget::Other { name } => {
                    self.verb_event(node, format!("<{name}>"));
                    self.warn(0, format!("<Start><{name}> is not simulated; skipped"));
                    Next::Continue
                }
            },
            Verb::Stop(s) => {
                self.verb_event(node, format!("<Stream name={:?}>", s.stream_name));
                match &s.stream_name {
                    Some(name) => self.stop_forks(Some(name)).await,
                    None => self.warn(0, "<Stop> without a named <Stream>; nothing stopped".into()),
                }
                Next::Continue
            }
            Verb::Record(r) => {
                self.verb_event(node, format!("timeout {} s", r.timeout_secs));
                self.warn(
                    0,
                    "<Record> is not simulated: the caller stays silent, an empty recording; \
                     TwiML continues"
                        .into(),
                );
                if self.wait(Duration::from_secs(r.timeout_secs.into())).await {
                    return self.ended_next();
                }
                Next::Continue
            }
            Verb::Dial(d) => {
                self.verb_event(node, d.target.clone());
                self.warn(0, "<Dial> is not simulated; skipped".into());
                Next::Continue
            }
            Verb::Unsupported { name } => {
                self.verb_event(node, String::new());
                self.warn(0, format!("<{name}> is not simulated; skipped"));
                Next::Continue
            }
        }
    }

    async fn say(&mut self, text: &str, loops: u32) -> Next {
        let words = text.split_whitespace().count().max(1) as u64;
        let once = Duration::from_millis((words * SAY_MS_PER_WORD).max(500));
        self.outbound.set(Some(self.engine.say_tone.clone()));
        let ended = if loops == 0 {
            // loop="0" repeats until the caller hangs up.
            self.wait(self.cfg.max_duration).await
        } else {
            self.wait(once * loops).await
        };
        self.outbound.set(None);
        if ended {
            return self.ended_next();
        }
        Next::Continue
    }

    async fn play(&mut self, play: &dialtone_twiml::Play, doc_url: &str) -> Next {
        let Some(src) = &play.url else {
            let digits = play.digits.as_deref().unwrap_or("");
            let ms: u64 = digits
                .chars()
                .map(|c| {
                    if c.eq_ignore_ascii_case(&'w') {
                        500
                    } else {
                        100
                    }
                })
                .sum();
            if self.wait(Duration::from_millis(ms)).await {
                return self.ended_next();
            }
            return Next::Continue;
        };
        let frames = match self.fetch_audio(doc_url, src).await {
            Ok(f) => f,
            Err(f) => {
                // Twilio skips a <Play> it cannot fetch and goes on with the document.
                self.failures.push(f);
                return Next::Continue;
            }
        };
        let loops = if play.loop_count == 0 {
            1000
        } else {
            play.loop_count
        };
        self.outbound.set(Some(frames.clone()));
        let ended = self.wait(frames.duration() * loops).await;
        self.outbound.set(None);
        if ended {
            return self.ended_next();
        }
        Next::Continue
    }

    async fn fetch_audio(&self, doc_url: &str, src: &str) -> Result<Arc<FrameSet>, Failure> {
        let url = webhook::resolve(doc_url, src).map_err(|cause| Failure::PlayFailed {
            url: src.to_string(),
            cause,
        })?;
        if let Some(f) = self.engine.play_cache.lock().expect("cache").get(&url) {
            return Ok(f.clone());
        }
        let fail = |cause: String| Failure::PlayFailed {
            url: url.clone(),
            cause,
        };
        let resp = self
            .engine
            .http
            .get(&url)
            .timeout(self.cfg.webhook_timeout)
            .send()
            .await
            .map_err(|e| fail(webhook::root_cause(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| fail(webhook::root_cause(&e)))?;
        let pcm = dialtone_audio::wav::load_8k_from_bytes(&bytes, &url)
            .map_err(|e| fail(e.to_string()))?;
        let frames = Arc::new(FrameSet::from_pcm(&pcm));
        let mut cache = self.engine.play_cache.lock().expect("cache");
        if cache.len() >= PLAY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(url, frames.clone());
        Ok(frames)
    }

    async fn gather(&mut self, g: &dialtone_twiml::Gather, doc_url: &str) -> Next {
        for child in &g.children {
            let next = match &child.verb {
                Verb::Say(s) => self.say(&s.text, s.loop_count).await,
                Verb::Play(p) => self.play(p, doc_url).await,
                Verb::Pause(p) => {
                    if self.wait(Duration::from_secs(p.length_secs.into())).await {
                        self.ended_next()
                    } else {
                        Next::Continue
                    }
                }
                _ => Next::Continue,
            };
            if let Next::End { .. } = next {
                return next;
            }
        }
        let dtmf = g.input.contains(&dialtone_twiml::GatherInput::Dtmf);
        let mut digits = String::new();
        let mut finished_on = String::new();
        if dtmf {
            while let Some(c) = self.digits.pop_front() {
                if !g.finish_on_key.is_empty() && g.finish_on_key.contains(c) {
                    finished_on.push(c);
                    break;
                }
                digits.push(c);
                if g.num_digits.is_some_and(|n| digits.len() >= n as usize) {
                    break;
                }
            }
        } else {
            self.warn(
                0,
                "<Gather input=\"speech\"> is not simulated: no speech result".into(),
            );
        }
        let typed = digits.len() + finished_on.len();
        if typed > 0 {
            self.timeline.emit(EventKind::Dtmf {
                digits: format!("{digits}{finished_on}"),
            });
            // The caller keys one digit every 100 ms.
            if self.wait(Duration::from_millis(100 * typed as u64)).await {
                return self.ended_next();
            }
        }
        let complete =
            !finished_on.is_empty() || g.num_digits.is_some_and(|n| digits.len() >= n as usize);
        if !complete && self.wait(Duration::from_secs(g.timeout_secs.into())).await {
            return self.ended_next();
        }
        // The finish key alone is not input: Twilio only lets it end input that has digits.
        if digits.is_empty() && !g.action_on_empty_result {
            // No input: Twilio moves on to the next verb without a request.
            return Next::Continue;
        }
        let extra = vec![
            ("Digits".to_string(), digits),
            ("FinishedOnKey".to_string(), finished_on),
        ];
        self.follow(
            "action",
            doc_url,
            g.action.as_deref(),
            g.method.into(),
            extra,
        )
        .await
    }

    fn start_stream(
        &mut self,
        s: &dialtone_twiml::Stream,
        doc_url: &str,
        bidirectional: bool,
    ) -> Result<(JoinHandle<StreamOutcome>, watch::Sender<bool>), Failure> {
        let url =
            webhook::resolve_stream(doc_url, &s.url).map_err(|cause| Failure::StreamConnect {
                url: s.url.clone(),
                cause,
            })?;
        // The app validates the upgrade's signature over the URL as written in its TwiML, so
        // that is what is signed; a wss:// URL is dialled as plain ws:// because local apps
        // serve plain WebSocket and this build carries no TLS.
        let sign_url = url.clone();
        let url = match url.strip_prefix("wss://") {
            Some(rest) => {
                self.warn(
                    0,
                    format!(
                        "{url}: connecting without TLS (ws://{rest}); the signature covers the wss:// URL"
                    ),
                );
                format!("ws://{rest}")
            }
            None => url,
        };
        let tracks = if bidirectional {
            Tracks::Inbound
        } else {
            match s.track {
                Track::Inbound => Tracks::Inbound,
                Track::Outbound => Tracks::Outbound,
                Track::Both => Tracks::Both,
            }
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (started_tx, started_rx) = oneshot::channel();
        let spec = StreamSpec {
            url,
            sign_url,
            name: s.name.clone(),
            bidirectional,
            tracks,
            parameters: s.parameters.clone(),
            ids: StreamIds {
                account_sid: self.info.account_sid.clone(),
                call_sid: self.info.call_sid.clone(),
                stream_sid: sid::random("MZ"),
            },
        };
        let ctx = StreamCtx {
            auth_token: self.cfg.auth_token.clone(),
            caller_audio: self.cfg.caller.audio.clone(),
            dtmf: if bidirectional {
                self.cfg.caller.stream_dtmf.clone()
            } else {
                Vec::new()
            },
            outbound: self.outbound.clone(),
            record: self.cfg.record,
            no_audio_timeout: self.cfg.no_audio_timeout,
            timeline: self.timeline.clone(),
            stop: stop_rx,
            started: Some(started_tx),
        };
        {
            // The caller talks from the first stream's start and hangs up once its audio
            // and the tail are over. A stream that never starts leaves the timer unarmed.
            let (audio, tail) = (self.cfg.caller.audio.duration(), self.cfg.caller.tail);
            let talk = audio + tail;
            let end_tx = self.end_tx.clone();
            let armed = self.caller_hangup_armed.clone();
            tokio::spawn(async move {
                let Ok(at) = started_rx.await else { return };
                if armed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep_until(at + talk).await;
                end_tx.send_if_modified(|r| {
                    if r.is_some() {
                        return false;
                    }
                    *r = Some(format!(
                        "caller hung up ({:.1} s of audio + {:.1} s tail)",
                        audio.as_secs_f64(),
                        tail.as_secs_f64()
                    ));
                    true
                });
            });
        }
        Ok((tokio::spawn(stream::run_stream(spec, ctx)), stop_tx))
    }

    /// Blocks in `<Connect>` until the app closes the stream or the call ends.
    async fn await_connect(
        &mut self,
        mut handle: JoinHandle<StreamOutcome>,
        stop: watch::Sender<bool>,
    ) -> Option<StreamOutcome> {
        let mut end = self.end.clone();
        tokio::select! {
            r = &mut handle => return self.joined(r),
            _ = end.wait_for(|r| r.is_some()) => {}
        }
        let _ = stop.send(true);
        let r = handle.await;
        self.joined(r)
    }

    /// A stream task that panicked is a dialtone bug: say so instead of losing it silently.
    fn joined(
        &mut self,
        r: Result<StreamOutcome, tokio::task::JoinError>,
    ) -> Option<StreamOutcome> {
        r.map_err(|e| self.warn(0, format!("internal error: stream task failed: {e}")))
            .ok()
    }

    fn record_stream(&mut self, o: StreamOutcome) {
        if !o.report.bidirectional && o.report.closed_by == "app" {
            self.warn(
                31921,
                format!(
                    "the app closed the <Start> stream {}; the call goes on",
                    o.report.name
                ),
            );
        }
        self.failures.extend(o.failures);
        if let (Some(heard), Some(sent)) = (o.heard, o.sent) {
            self.audio.push(StreamAudio {
                stream_sid: o.report.stream_sid.clone(),
                heard,
                sent,
            });
        }
        self.streams.push(o.report);
    }

    /// Stops forks by name, or all of them; waits for each to send `stop` and close.
    async fn stop_forks(&mut self, name: Option<&str>) {
        let (stopping, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.forks)
            .into_iter()
            .partition(|(n, _)| name.is_none_or(|want| n == want));
        self.forks = kept;
        for (_, fork) in stopping {
            let _ = fork.stop.send(true);
            let r = fork.handle.await;
            if let Some(o) = self.joined(r) {
                self.record_stream(o);
            }
        }
    }
}

/// What `<Say>` sounds like to the outbound track: a soft 440 Hz tone, so a fork's outbound
/// audio is distinguishable from silence.
fn tone_frames(d: Duration) -> FrameSet {
    let n = (d.as_millis() as usize) * 8;
    let pcm: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (3000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect();
    FrameSet::from_pcm(&pcm)
}

fn truncate(s: &str, n: usize) -> String {
    let t: String = s.chars().take(n).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

#[allow(dead_code)]
fn _assert_send(e: &Engine, cfg: CallConfig) {
    fn is_send<T: Send>(_: T) {}
    is_send(e.place_call(cfg, None));
    let _ = Instant::now();
}
