//! Executes TwiML for one call the way Twilio does: verbs in order, a new document replacing
//! the current one on `action`/`<Redirect>`, `<Connect><Stream>` blocking until the stream
//! ends, `<Start><Stream>` forking, `<Start><Transcription>` transcribing in the background,
//! and falling off the end hanging up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{CallInfo, CallStatus, Direction};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::config::{CallConfig, HttpMethod};
use crate::report::{CallFaults, CallReport, EventKind, Failure, StreamReport};
use crate::retention::HeadTail;
use crate::stream::{OutboundAudio, StreamTask};
use crate::timeline::{EventSink, Timeline};
use crate::webhook::Fetched;

/// `<Say>` is timed at 150 words per minute (Twilio's voices speak at about that rate),
/// with a floor of half a second.
pub const SAY_MS_PER_WORD: u64 = 400;

/// Places calls; holds what calls share (HTTP connection pool, fetched `<Play>` audio).
pub struct Engine {
    /// Connection pool and TLS; each call routes through its own tunnel table.
    net: dialtone_net::Net,
    play_cache: Mutex<verbs::PlayCache>,
    /// One second of `<Say>` tone, looped by forks that carry the outbound track.
    say_tone: Arc<FrameSet>,
    /// `<Record>`'s beep.
    beep: Arc<FrameSet>,
    /// The stream plane, started at the first stream it can carry (`None` inside: it could
    /// not start, and streams run on the tokio driver).
    plane: std::sync::OnceLock<Option<crate::stream::plane::Plane>>,
    /// `<Conference>` rooms, shared by every call of this engine.
    conferences: Arc<crate::conference::Conferences>,
    /// Call queues every call of this engine shares.
    queues: crate::queue::Queues,
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

/// What the caller heard of one ConversationRelay session (when recording).
#[derive(Debug, Clone)]
pub struct RelayAudio {
    /// `VX…`.
    pub session_id: String,
    /// The agent's simulated speech and its plays, μ-law 8 kHz from the socket's opening
    /// (silence elsewhere), at most the call's maximum length.
    pub heard: Vec<u8>,
}

/// A finished call: its report and, when recording, its audio.
#[derive(Debug)]
pub struct CallResult {
    /// Everything measured.
    pub report: CallReport,
    /// Per-stream audio (empty unless `record` was set).
    pub audio: Vec<StreamAudio>,
    /// Per ConversationRelay session (the first 20), what the caller heard (empty unless
    /// `record` was set).
    pub relay_audio: Vec<RelayAudio>,
    /// The whole answered call on one timeline, when `record` was set (`None` for a call
    /// never answered, and in virtual time).
    pub call_audio: Option<CallAudio>,
    /// Each `<Record>` recording kept (the first 20), when `record` was set.
    pub record_audio: Vec<crate::record::RecordAudio>,
}

/// What the executor does after a verb.
enum Next {
    Continue,
    Replace(Fetched),
    End { status: CallStatus, reason: String },
}

struct Call<'e> {
    engine: &'e Engine,
    cfg: CallConfig,
    info: CallInfo,
    timeline: Arc<Timeline>,
    /// Set when the call must end (caller hung up, max duration); carries the reason.
    end: watch::Receiver<Option<String>>,
    end_tx: Arc<watch::Sender<Option<String>>>,
    /// New TwiML requested from outside (REST update), taken when the current verb yields.
    redirect: watch::Receiver<Option<Redirect>>,
    redirect_tx: Arc<watch::Sender<Option<Redirect>>>,
    /// URL of the document executing (relative URLs resolve against it).
    doc_url: String,
    /// Which stream runs the caller's hang-up (the first to start).
    caller_hangup: Arc<std::sync::Mutex<crate::stream::HangupState>>,
    /// The call's seed: SIDs and the fault schedule derive from it.
    seed: u64,
    /// The faults this call gets (`None` when there are none, or `calls=` spared it).
    faults: Option<Arc<crate::faults::FaultSpec>>,
    /// What the faults did to the call outside its streams, for its report.
    call_faults: CallFaults,
    /// Streams opened so far (each one's SID and fault schedule hang off its index).
    streams_opened: u64,
    digits: std::collections::VecDeque<char>,
    outbound: Arc<OutboundAudio>,
    forks: Vec<(String, StreamTask)>,
    /// The first and last streams' reports (a looping app may open thousands).
    streams: HeadTail<StreamReport>,
    /// ConversationRelay sessions' reports: the first [`STREAMS_KEPT`].
    relay: Vec<crate::relay::RelayReport>,
    relay_audio: Vec<RelayAudio>,
    /// `<Dial>`s' reports: the first [`dial::DIALS_KEPT`].
    dials: Vec<crate::dial::DialReport>,
    /// How the last `<Dial>` went (`dials` keeps only the first ones).
    last_dial: Option<crate::dial::DialStatus>,
    /// Speech `<Gather>` results: the first [`dial::DIALS_KEPT`].
    speech: Vec<crate::report::SpeechReport>,
    /// Legs dialed so far (their SIDs hang off the index).
    dials_placed: std::sync::atomic::AtomicU64,
    /// `<Record>`s' reports: the first 20.
    records: Vec<crate::record::RecordReport>,
    /// `<Record>`s run so far (their SIDs hang off the index).
    records_made: u64,
    /// `<Record>` recordings' audio, kept when recording (the first 20).
    record_audio: Vec<crate::record::RecordAudio>,
    /// Recordings handed to the store so far (`<Record>`, `<Dial record>`).
    recordings_kept: usize,
    /// Dialed legs' and transcriptions' status callbacks still being sent; the call
    /// reports after them.
    leg_callbacks: Mutex<Vec<JoinHandle<()>>>,
    /// Transcriptions running (`<Start><Transcription>`).
    transcriptions: Vec<transcription::Running>,
    /// Stopped transcriptions' reports: the first [`STREAMS_KEPT`].
    transcription_reports: Vec<crate::transcription::TranscriptionReport>,
    /// Transcriptions started so far (their SIDs hang off the index).
    transcriptions_started: u64,
    /// `<Say>`s the transcriptions heard so far (their word errors hang off the index).
    says_transcribed: u64,
    /// When the first stream started, the caller's audio with it (`StreamStart`).
    caller_started: Arc<std::sync::OnceLock<Instant>>,
    /// What the caller said while bridged by a `<Dial>` (when recording), from when.
    bridged_said: Vec<(Instant, Vec<u8>)>,
    audio: Vec<StreamAudio>,
    /// Per entry of `audio`: when its stream started, and whether it was bidirectional.
    audio_spans: Vec<(Option<Instant>, bool)>,
    /// What `<Say>` and `<Play>` played to the caller, kept when recording.
    played: Vec<recording::Played>,
    /// When the call was answered: an inbound call when its first TwiML is in hand and does
    /// not `<Reject>`, an outbound one before its TwiML is requested.
    answered_at: Option<Instant>,
    /// While a speech `<Gather>`'s prompts play: when the caller starts talking over them
    /// (`bargeIn` stops them there).
    barge_in_at: Option<Instant>,
    /// While a `<Gather>`'s prompts play to a live caller: it, how many keys it had pressed
    /// before (with `dtmf`), and since when a typed line counts (with `speech` and
    /// `bargeIn`): either over the prompts stops them, as on Twilio.
    key_barge: Option<LiveBarge>,
    /// The caller's hang-up timer when its audio counts from the answer.
    answer_backstop: Option<JoinHandle<()>>,
    /// The first failures (the first one is the call's outcome); the rest counted.
    failures: HeadTail<Failure>,
    /// The first warnings; the rest counted.
    warnings: HeadTail<(u16, String)>,
    documents: u32,
    /// Documents in a row without the call advancing (see [`LOOP_DOCUMENTS`]).
    idle_documents: u32,
}

/// What stops a `<Gather>`'s prompts to a live caller: a key pressed past `keys_before`, or a
/// line typed from `lines_from`.
#[derive(Clone)]
struct LiveBarge {
    live: Arc<crate::live::LiveCaller>,
    keys_before: Option<usize>,
    lines_from: Option<Instant>,
}

impl LiveBarge {
    fn is_barged(&self) -> bool {
        self.keys_before
            .is_some_and(|before| self.live.keys_pressed() > before)
            || self
                .lines_from
                .is_some_and(|from| self.live.typed_since(from))
    }

    /// Returns once barged (never, if nothing can barge), or at `until`.
    async fn barged(&self, until: Instant) {
        let keys = async {
            match self.keys_before {
                Some(before) => self.live.pressed_after(before).await,
                None => std::future::pending().await,
            }
        };
        let lines = async {
            match self.lines_from {
                Some(from) if self.live.next_line(from, until).await.is_some() => {}
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = keys => {}
            () = lines => {}
        }
    }
}

/// Why a call ended when its TwiML ran out (a whisper that did bridges its leg).
pub(super) const END_OF_TWIML: &str = "end of TwiML";

/// How long a finished call waits for its status callbacks still queued.
const CALLBACKS_FLUSH_LIMIT: Duration = Duration::from_secs(60);

/// Failures a call report lists (the rest are counted).
const FAILURES_KEPT: usize = 20;
/// Warnings a call report lists (the rest are counted).
const WARNINGS_KEPT: usize = 50;
/// Stream reports a call report lists from its start, and from its end.
const STREAMS_KEPT: usize = 20;
/// TwiML documents a call may fetch in a row without advancing (no verb that takes call
/// time, no stream that ran) before it fails as a loop. Twilio documents this bound for
/// TwiML sessions as warning 14106, "Document retrieval limit reached": "The limit is 50",
/// caused by "self referencing Redirect verb URL" (twilio.com/docs/api/errors/14106).
pub const LOOP_DOCUMENTS: u32 = 50;

/// How long an injected webhook timeout (`webhook_timeout=`) waits: long enough for the
/// request to reach a local app, too short for any answer.
const FAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_millis(1);

impl Engine {
    /// An engine with a fresh connection pool, trusting the system's roots.
    pub fn new() -> Self {
        Self::with_net(dialtone_net::Net::system())
    }

    /// An engine on this transport (`--cacert`, `--insecure`).
    pub fn with_net(net: dialtone_net::Net) -> Self {
        Self {
            net,
            play_cache: Mutex::default(),
            say_tone: Arc::new(verbs::tone_frames(Duration::from_secs(1))),
            beep: Arc::new(record::beep()),
            plane: std::sync::OnceLock::new(),
            conferences: Arc::default(),
            queues: crate::queue::Queues::default(),
        }
    }

    /// The conferences its calls are in (and were: the last ended ones).
    pub fn conferences(&self) -> &Arc<crate::conference::Conferences> {
        &self.conferences
    }

    /// The call queues of this engine's calls (`<Enqueue>`, `<Dial><Queue>`, REST).
    pub fn queues(&self) -> &crate::queue::Queues {
        &self.queues
    }

    /// The stream plane, started on first use (one worker per core).
    pub(crate) fn plane(&self) -> Option<&crate::stream::plane::Plane> {
        self.plane
            .get_or_init(|| match crate::stream::plane::Plane::new(0) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!("the stream plane could not start ({e}); streams run on tokio");
                    None
                }
            })
            .as_ref()
    }

    /// Places one call and runs it to its end. Never panics on app behaviour: every failure
    /// is in the report.
    pub fn place_call(
        &self,
        cfg: CallConfig,
        sink: Option<EventSink>,
    ) -> impl Future<Output = CallResult> + '_ {
        self.prepare(cfg).run(sink)
    }

    /// Sets a call up without starting it, so its [`CallHandle`] can be handed out first.
    pub fn prepare(&self, cfg: CallConfig) -> PreparedCall<'_> {
        let call_sid = cfg
            .call_sid
            .clone()
            .unwrap_or_else(|| sid::seeded_or_random("CA", cfg.seed, 0));
        let (end_tx, _) = watch::channel(None);
        let (redirect_tx, _) = watch::channel(None);
        PreparedCall {
            engine: self,
            cfg,
            handle: CallHandle {
                call_sid,
                end: Arc::new(end_tx),
                redirect: Arc::new(redirect_tx),
            },
        }
    }
}

/// Steers a live call from outside, as the REST API's call update does.
#[derive(Clone, Debug)]
pub struct CallHandle {
    call_sid: String,
    end: Arc<watch::Sender<Option<String>>>,
    redirect: Arc<watch::Sender<Option<Redirect>>>,
}

/// New TwiML for a live call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// Fetch TwiML from this URL.
    Url {
        /// Absolute URL.
        url: String,
        /// Method to fetch it with.
        method: HttpMethod,
    },
    /// Run this TwiML document.
    Twiml(String),
}

impl CallHandle {
    /// The call's SID.
    pub fn call_sid(&self) -> &str {
        &self.call_sid
    }

    /// Hangs the call up (first reason wins); streams get `stop`.
    pub fn hangup(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.end.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(reason);
            true
        });
    }

    /// Replaces the running TwiML, interrupting the current verb (a `<Connect>` stream is
    /// stopped first).
    pub fn redirect(&self, to: Redirect) {
        self.redirect.send_replace(Some(to));
    }

    /// True once the call has been told to end.
    pub fn is_ended(&self) -> bool {
        self.end.borrow().is_some()
    }
}

/// A call set up by [`Engine::prepare`], not yet running.
pub struct PreparedCall<'e> {
    engine: &'e Engine,
    cfg: CallConfig,
    handle: CallHandle,
}

impl<'e> PreparedCall<'e> {
    /// A handle to steer the call once it runs.
    pub fn handle(&self) -> CallHandle {
        self.handle.clone()
    }

    /// What the call was placed with.
    pub fn config(&self) -> &CallConfig {
        &self.cfg
    }

    /// Runs the call to its end. (Set up before the future is made, so the future carries
    /// only the running call, not the config it was made from as well.)
    pub fn run(self, sink: Option<EventSink>) -> impl Future<Output = CallResult> + 'e {
        let (mut call, max_timer) = self.start(sink);
        // An async block, not an `async fn` taking the call: that would copy its argument
        // into the future beside the original.
        async move {
            let (status, reason) = call.run().await;
            call.stop_forks(None).await;
            call.stop_transcriptions(None, "call end").await;
            call.flush_leg_callbacks().await;
            max_timer.abort();
            call.report(status, reason)
        }
    }

    /// The call, ready to run, and its max-duration timer.
    fn start(self, sink: Option<EventSink>) -> (Call<'e>, JoinHandle<()>) {
        let PreparedCall {
            engine,
            cfg,
            handle,
        } = self;
        let call_sid = handle.call_sid.clone();
        let capture = cfg.capture.clone().map(|c| (c, call_sid.clone()));
        let timeline = Arc::new(Timeline::new(sink, capture, cfg.keep_timeline));
        let info = CallInfo {
            parent_call_sid: cfg.parent_call_sid.clone(),
            ..CallInfo::new(
                cfg.account_sid.clone(),
                call_sid.clone(),
                cfg.from.clone(),
                cfg.to.clone(),
                cfg.direction,
            )
        };
        let end_tx = handle.end.clone();
        let end = end_tx.subscribe();
        let redirect_tx = handle.redirect.clone();
        let redirect = redirect_tx.subscribe();
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
        let seed = cfg.seed.unwrap_or_else(rand::random);
        let faults = cfg
            .faults
            .clone()
            .filter(|f| !f.is_empty())
            .filter(|f| f.applies_to_call(seed));
        if let Some(f) = &faults {
            timeline.emit(EventKind::Fault {
                what: format!("faults armed: {f} (seed {seed}: rerun with --seed {seed})"),
            });
        }
        let doc_url = cfg.url.clone();
        let outbound = Arc::new(OutboundAudio::new(cfg.caller.live.clone()));
        let call = Call {
            engine,
            cfg,
            info,
            timeline: timeline.clone(),
            end,
            end_tx,
            redirect,
            redirect_tx,
            doc_url,
            caller_hangup: Arc::default(),
            seed,
            call_faults: CallFaults {
                armed: faults.is_some(),
                webhook_abandoned: false,
            },
            faults,
            streams_opened: 0,
            digits,
            outbound,
            forks: Vec::new(),
            streams: HeadTail::new(STREAMS_KEPT, STREAMS_KEPT),
            relay: Vec::new(),
            relay_audio: Vec::new(),
            dials: Vec::new(),
            speech: Vec::new(),
            last_dial: None,
            dials_placed: std::sync::atomic::AtomicU64::new(0),
            records: Vec::new(),
            records_made: 0,
            record_audio: Vec::new(),
            recordings_kept: 0,
            leg_callbacks: Mutex::default(),
            transcriptions: Vec::new(),
            transcription_reports: Vec::new(),
            transcriptions_started: 0,
            says_transcribed: 0,
            caller_started: Arc::default(),
            bridged_said: Vec::new(),
            audio: Vec::new(),
            audio_spans: Vec::new(),
            played: Vec::new(),
            answered_at: None,
            barge_in_at: None,
            key_barge: None,
            answer_backstop: None,
            failures: HeadTail::new(FAILURES_KEPT, 0),
            warnings: HeadTail::new(WARNINGS_KEPT, 0),
            documents: 0,
            idle_documents: 0,
        };
        (call, max_timer)
    }
}

impl Call<'_> {
    /// The finished call's report (its streams and forks are done).
    fn report(mut self, status: CallStatus, reason: String) -> CallResult {
        if let Some(t) = self.answer_backstop.take() {
            t.abort();
        }
        let call_audio = self.call_audio(Instant::now());
        let ended = self.timeline.emit(EventKind::Ended {
            status: status.as_str(),
            reason: reason.clone(),
        });
        let mut kept = self.timeline.take();
        for w in std::mem::take(&mut kept.warnings) {
            self.warnings.push(w);
        }
        let (failures, failures_omitted) = self.failures.into_parts();
        let (warnings, warnings_omitted) = self.warnings.into_parts();
        let warnings_omitted = warnings_omitted + kept.warnings_dropped;
        let (streams, streams_omitted) = self.streams.into_parts();
        CallResult {
            report: CallReport {
                call_sid: self.info.call_sid,
                status,
                end_reason: reason,
                faults: self.call_faults,
                duration_ms: ended.as_secs_f64() * 1e3,
                webhook_ms: kept.webhook_ms,
                webhooks: kept.webhooks,
                failures,
                failures_omitted,
                warnings,
                warnings_omitted,
                streams,
                streams_omitted,
                relay: self.relay,
                dials: self.dials,
                speech: self.speech,
                transcriptions: self.transcription_reports,
                recordings: self.records,
                timeline: kept.events,
                timeline_omitted: kept.omitted,
                webhook_us: kept.webhook_us,
            },
            audio: self.audio,
            relay_audio: self.relay_audio,
            call_audio,
            record_audio: self.record_audio,
        }
    }

    async fn run(&mut self) -> (CallStatus, String) {
        let first_status = match self.info.direction {
            Direction::Inbound => CallStatus::Ringing,
            _ => CallStatus::InProgress,
        };
        if first_status == CallStatus::InProgress {
            // An outbound call's TwiML is requested once the callee has answered.
            self.answered();
        }
        let url = self.cfg.url.clone();
        let first = match self.cfg.twiml.clone() {
            // Calls created with inline TwiML (REST `Twiml`) start from it, no request.
            Some(t) => self.inline(&t),
            None => {
                self.request("voice", &url, self.cfg.method, first_status, Vec::new())
                    .await
            }
        };
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
        if current
            .doc
            .verbs
            .first()
            .is_none_or(|n| !self.holds_answer(n))
        {
            self.answered();
        }
        loop {
            let doc_url = current.url.clone();
            self.doc_url = doc_url.clone();
            let verbs = std::mem::take(&mut current.doc.verbs);
            let mut replaced = None;
            for (index, node) in verbs.iter().enumerate() {
                let first_verb = self.documents == 1 && index == 0;
                if self.answered_at.is_none() && !self.holds_answer(node) {
                    // Still ringing after a `<Dial answerOnBridge>` nobody answered: the
                    // next verb that needs the line answers it.
                    self.answered();
                }
                let next = if self.interrupt_pending() {
                    self.interrupted().await
                } else {
                    self.execute(node, &doc_url, first_verb).await
                };
                match next {
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
                    let status = self.final_status();
                    if let Some(reason) = self.ended() {
                        return (status, reason);
                    }
                    return (status, END_OF_TWIML.into());
                }
            }
        }
    }

    /// How a call that ran out of TwiML ended: completed once answered; still ringing
    /// (a `<Dial answerOnBridge>` nobody answered), as that dial went.
    pub(super) fn final_status(&self) -> CallStatus {
        if self.answered_at.is_some() {
            return CallStatus::Completed;
        }
        match self.last_dial {
            Some(crate::dial::DialStatus::Busy) => CallStatus::Busy,
            Some(crate::dial::DialStatus::Failed) => CallStatus::Failed,
            // The caller hung up while it rang.
            Some(crate::dial::DialStatus::Canceled) => CallStatus::Canceled,
            _ => CallStatus::NoAnswer,
        }
    }

    /// True when `node` leaves an unanswered inbound call ringing: `<Reject>`, and a
    /// `<Dial answerOnBridge>` (the call is answered when the dialed party is).
    fn holds_answer(&self, node: &dialtone_twiml::Node) -> bool {
        use dialtone_twiml::Verb;
        self.info.direction == Direction::Inbound
            && match &node.verb {
                Verb::Reject(_) => true,
                Verb::Dial(d) => d.answer_on_bridge,
                _ => false,
            }
    }

    /// Waits for the dialed legs' status callbacks still on their way.
    async fn flush_leg_callbacks(&mut self) {
        let tasks =
            std::mem::take(&mut *self.leg_callbacks.lock().unwrap_or_else(|p| p.into_inner()));
        if tasks.is_empty() {
            return;
        }
        // Each callback is bounded by 15 s, but a stalled URL must not hold the report
        // for a queue's whole length: past the bound, what is left is counted, not sent.
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(CALLBACKS_FLUSH_LIMIT, all)
            .await
            .is_err()
        {
            let left = aborts.iter().filter(|a| !a.is_finished()).count();
            for a in aborts {
                a.abort();
            }
            self.warn(
                15003,
                format!(
                    "{left} status callback queue(s) still sending {} s after the call ended: \
                     their remaining callbacks were not sent",
                    CALLBACKS_FLUSH_LIMIT.as_secs()
                ),
            );
        }
    }

    fn ended(&self) -> Option<String> {
        self.end.borrow().clone()
    }

    /// Sleeps `d`, or less if the call ends or is redirected; true when interrupted.
    async fn wait(&mut self, d: Duration) -> bool {
        if !d.is_zero() {
            // The call advances (in virtual time too): the documents before were no loop.
            self.idle_documents = 0;
        }
        // A prompt the caller talks over stops there.
        let d = self
            .barge_in_at
            .map_or(d, |at| d.min(at.saturating_duration_since(Instant::now())));
        if self.cfg.fast {
            // Virtual time: verbs take no time (they still run in order).
            tokio::task::yield_now().await;
            return self.interrupt_pending();
        }
        let mut end = self.end.clone();
        let mut redirect = self.redirect.clone();
        let key = self.key_barge.clone();
        let until = Instant::now() + d;
        let keyed = async {
            match &key {
                Some(b) => b.barged(until).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep(d) => self.interrupt_pending(),
            () = keyed => self.interrupt_pending(),
            _ = end.wait_for(|r| r.is_some()) => true,
            _ = redirect.wait_for(|r| r.is_some()) => true,
        }
    }

    /// A live caller pressed a key (or typed a line) over the `<Gather>` prompts playing.
    fn key_barged(&self) -> bool {
        self.key_barge.as_ref().is_some_and(LiveBarge::is_barged)
    }

    /// A callback attribute's URL resolved against the document; one that cannot be is
    /// warned (11100, Twilio's invalid URL) and taken as absent, so the verb goes on.
    fn callback_url(&self, attribute: &str, value: Option<&str>, doc_url: &str) -> Option<String> {
        let value = value?;
        match crate::webhook::resolve(doc_url, value) {
            Ok(url) => Some(url),
            Err(e) => {
                self.timeline.warn(EventKind::Warning {
                    code: 11100,
                    message: format!("{attribute}={value:?} is not a URL ({e}): not sent"),
                });
                None
            }
        }
    }

    /// Sleeps until `at` (see [`Call::wait`]); true when interrupted.
    async fn wait_until(&mut self, at: Instant) -> bool {
        self.wait(at.saturating_duration_since(Instant::now()))
            .await
    }

    /// The call ended or new TwiML is waiting.
    fn interrupt_pending(&self) -> bool {
        self.ended().is_some() || self.redirect.borrow().is_some()
    }

    /// What to do after an interruption: end, or run the TwiML a redirect brought.
    async fn interrupted(&mut self) -> Next {
        if let Some(reason) = self.ended() {
            return Next::End {
                status: CallStatus::Completed,
                reason,
            };
        }
        let doc_url = self.doc_url.clone();
        let redirect = self.redirect_tx.send_replace(None);
        if let Some(r) = &redirect {
            self.timeline.emit(EventKind::Redirected {
                url: match r {
                    Redirect::Url { url, method } => Some(format!("{} {url}", method.as_str())),
                    Redirect::Twiml(_) => None,
                },
                twiml: match r {
                    Redirect::Twiml(t) => Some(t.chars().take(200).collect()),
                    Redirect::Url { .. } => None,
                },
            });
        }
        match redirect {
            Some(Redirect::Url { url, method }) => {
                self.follow("redirect", &doc_url, Some(&url), method, Vec::new())
                    .await
            }
            Some(Redirect::Twiml(t)) => match self.inline(&t) {
                Ok(f) => Next::Replace(f),
                Err(failure) => {
                    self.failures.push(failure);
                    Next::End {
                        status: CallStatus::Completed,
                        reason: "invalid TwiML in a live update".into(),
                    }
                }
            },
            None => Next::Continue,
        }
    }
}

mod caller_speech;
mod conference;
mod dial;
mod dial_record;
mod documents;
mod enqueue;
mod gather;
mod queue_bridge;
mod record;
mod recording;
mod recording_status;
mod relay;
mod streams;
mod transcription;
mod verbs;
mod whisper;

pub use recording::CallAudio;
pub(crate) use verbs::tone_frames;
