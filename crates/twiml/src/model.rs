//! The typed TwiML voice document: one struct per verb, with Twilio's documented defaults.
//!
//! Everything here is plain data; parsing lives in `parse`/`verbs`, serializing in `write`.

/// A parsed `<Response>`: the verbs in document order.
///
/// Equality ignores source line numbers (see [`Node`]), so `parse(&doc.to_xml())? == doc`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Top-level verbs, top to bottom, as Twilio executes them.
    pub verbs: Vec<Node>,
}

/// One verb plus where it started in the source document.
///
/// `PartialEq`/`Eq` compare only [`Node::verb`]: the line is diagnostic metadata, and ignoring it
/// lets a re-serialized document (which is all on one line) compare equal to the original.
#[derive(Debug, Clone)]
pub struct Node {
    /// 1-based line of the element's start tag (0 for nodes built in code).
    pub line: u32,
    /// The verb itself.
    pub verb: Verb,
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.verb == other.verb
    }
}

impl Eq for Node {}

impl Node {
    /// A node with no source position (line 0), for documents built in code.
    pub fn new(verb: Verb) -> Self {
        Self { line: 0, verb }
    }
}

impl From<Verb> for Node {
    fn from(verb: Verb) -> Self {
        Self::new(verb)
    }
}

/// A TwiML voice verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Say>`: text to speech.
    Say(Say),
    /// `<Play>`: an audio URL and/or DTMF digits.
    Play(Play),
    /// `<Pause>`: silence.
    Pause(Pause),
    /// `<Gather>`: collect DTMF and/or speech while nested prompts play.
    Gather(Gather),
    /// `<Hangup>`: end the call.
    Hangup,
    /// `<Reject>`: refuse an inbound call without answering it.
    Reject(Reject),
    /// `<Redirect>`: fetch a new document and run it instead.
    Redirect(Redirect),
    /// `<Connect>`: hand the call to a noun (bidirectional `<Stream>`, ...) and block.
    Connect(Connect),
    /// `<Start>`: start a background fork (unidirectional `<Stream>`, ...) and continue.
    Start(Start),
    /// `<Stop>`: stop a fork started with `<Start>`.
    Stop(Stop),
    /// `<Record>`: record the caller.
    Record(Record),
    /// `<Dial>`: call another party.
    Dial(Dial),
    /// `<Enqueue>`: wait in a call queue until dequeued.
    Enqueue(Enqueue),
    /// `<Leave>`: leave the queue the call waits in (meaningful in a `waitUrl` document).
    Leave,
    /// A real Twilio voice verb that dialtone parses but does not simulate (Pay, Refer, Echo,
    /// Sms, Queue). Its attributes and content are accepted without validation.
    Unsupported {
        /// The element name, e.g. `"Pay"`.
        name: String,
    },
}

impl Verb {
    /// The TwiML element name: `"Say"`, `"Play"`, ... or the unsupported verb's own name.
    pub fn name(&self) -> &str {
        match self {
            Verb::Say(_) => "Say",
            Verb::Play(_) => "Play",
            Verb::Pause(_) => "Pause",
            Verb::Gather(_) => "Gather",
            Verb::Hangup => "Hangup",
            Verb::Reject(_) => "Reject",
            Verb::Redirect(_) => "Redirect",
            Verb::Connect(_) => "Connect",
            Verb::Start(_) => "Start",
            Verb::Stop(_) => "Stop",
            Verb::Record(_) => "Record",
            Verb::Dial(_) => "Dial",
            Verb::Enqueue(_) => "Enqueue",
            Verb::Leave => "Leave",
            Verb::Unsupported { name } => name,
        }
    }
}

/// HTTP method for an action/callback URL. Parsed case-insensitively; Twilio's default is POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// `GET`: parameters appended to the query string.
    Get,
    /// `POST`: parameters form-encoded in the body (the default).
    #[default]
    Post,
}

impl Method {
    /// The canonical upper-case spelling, as written back to XML.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// `<Say>`: speak `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    /// Text to speak, with SSML markup removed (its text content kept), whitespace runs collapsed
    /// to one space and trimmed. May be empty (`<Say/>` is accepted and says nothing).
    pub text: String,
    /// `voice` (`man`, `woman`, `alice`, `Polly.*`, `Google.*`...), passed through unvalidated.
    pub voice: Option<String>,
    /// `language` (e.g. `en-US`), passed through unvalidated.
    pub language: Option<String>,
    /// `loop`: 1 by default; 0 means repeat until the call ends.
    pub loop_count: u32,
}

impl Default for Say {
    fn default() -> Self {
        Self {
            text: String::new(),
            voice: None,
            language: None,
            loop_count: 1,
        }
    }
}

/// `<Play>`: play an audio URL and/or send DTMF `digits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    /// The audio URL (trimmed text content); `None` when only `digits` is given.
    pub url: Option<String>,
    /// `loop`: 1 by default; 0 means repeat until the call ends (Twilio caps it at 1000).
    pub loop_count: u32,
    /// `digits`: DTMF to play, `0-9 * #` plus `w`/`W` (0.5 s / 1 s pause).
    pub digits: Option<String>,
}

impl Default for Play {
    fn default() -> Self {
        Self {
            url: None,
            loop_count: 1,
            digits: None,
        }
    }
}

/// `<Pause>`: silence for `length_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// `length` in seconds; default 1, must be at least 1.
    pub length_secs: u32,
}

impl Default for Pause {
    fn default() -> Self {
        Self { length_secs: 1 }
    }
}

/// One value of `<Gather input="...">`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatherInput {
    /// Key presses.
    Dtmf,
    /// Speech recognition.
    Speech,
}

/// `<Gather>`: collect input while the nested prompts play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// `input`: default `[Dtmf]`; `"dtmf speech"` gives both, in the order written, deduplicated.
    pub input: Vec<GatherInput>,
    /// `action`: `None` means "the current document URL".
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Method,
    /// `timeout` in seconds (default 5), counted after the nested prompts finish. 0 is accepted.
    pub timeout_secs: u32,
    /// `numDigits`: stop after this many digits (at least 1); `None` = unlimited.
    pub num_digits: Option<u32>,
    /// `finishOnKey`: default `"#"`; `""` disables; otherwise one of `0-9 * #`.
    pub finish_on_key: String,
    /// `actionOnEmptyResult`: request `action` even when nothing was gathered (default false).
    pub action_on_empty_result: bool,
    /// `speechTimeout`: `"auto"` or whole seconds, kept as written; `None` = same as `timeout`.
    pub speech_timeout: Option<String>,
    /// `language` for speech recognition (Twilio's default is `en-US`).
    pub language: Option<String>,
    /// `hints`: comma-separated phrases for speech recognition.
    pub hints: Option<String>,
    /// `bargeIn`: input interrupts the nested prompts (default true).
    pub barge_in: bool,
    /// `profanityFilter` (default true).
    pub profanity_filter: bool,
    /// `speechModel`, passed through.
    pub speech_model: Option<String>,
    /// `partialResultCallback`: URL for interim speech results.
    pub partial_result_callback: Option<String>,
    /// `partialResultCallbackMethod`.
    pub partial_result_callback_method: Method,
    /// `maxSpeechTime` in seconds, if given.
    pub max_speech_time_secs: Option<u32>,
    /// Nested prompts: only `Say`, `Play` (without `digits`) and `Pause`.
    pub children: Vec<Node>,
}

impl Default for Gather {
    fn default() -> Self {
        Self {
            input: vec![GatherInput::Dtmf],
            action: None,
            method: Method::Post,
            timeout_secs: 5,
            num_digits: None,
            finish_on_key: "#".to_owned(),
            action_on_empty_result: false,
            speech_timeout: None,
            language: None,
            hints: None,
            barge_in: true,
            profanity_filter: true,
            speech_model: None,
            partial_result_callback: None,
            partial_result_callback_method: Method::Post,
            max_speech_time_secs: None,
            children: Vec::new(),
        }
    }
}

/// `<Reject reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RejectReason {
    /// `rejected` (the default).
    #[default]
    Rejected,
    /// `busy`: the caller hears a busy signal.
    Busy,
}

/// `<Reject>`: refuse the call. Parsed anywhere; Twilio only honours it as the first verb of an
/// inbound call, which is the engine's decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reject {
    /// Why the call is refused.
    pub reason: RejectReason,
}

/// `<Redirect>`: continue with the document at `url`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirect {
    /// Absolute or relative URL (trimmed text content; never empty).
    pub url: String,
    /// `method` used to fetch it.
    pub method: Method,
}

/// Which audio a `<Stream>` forks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Track {
    /// `inbound_track` (the default): audio from the caller.
    #[default]
    Inbound,
    /// `outbound_track`: audio Twilio plays to the caller.
    Outbound,
    /// `both_tracks`.
    Both,
}

impl Track {
    /// The attribute spelling: `inbound_track`, `outbound_track` or `both_tracks`.
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Inbound => "inbound_track",
            Track::Outbound => "outbound_track",
            Track::Both => "both_tracks",
        }
    }
}

/// `<Stream>` noun of `<Connect>` (bidirectional) or `<Start>` (unidirectional).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    /// `url`: `ws://`/`wss://` or relative (resolved by the engine). Empty only when
    /// `connector_name` is used instead.
    pub url: String,
    /// `name`: unique per call, used by `<Stop>`.
    pub name: Option<String>,
    /// `track`; accepted but meaningless for `<Connect>` (bidirectional is always inbound).
    pub track: Track,
    /// `statusCallback` URL.
    pub status_callback: Option<String>,
    /// `statusCallbackMethod`.
    pub status_callback_method: Method,
    /// `connectorName`: a Twilio Stream Connector instead of a URL (not simulated).
    pub connector_name: Option<String>,
    /// `<Parameter name value/>` children in document order (delivered as `customParameters`).
    pub parameters: Vec<(String, String)>,
}

/// What a `<Connect>` connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTarget {
    /// `<Connect><Stream>`: a bidirectional media stream.
    Stream(Stream),
    /// `<Connect><ConversationRelay>`: the app speaks text; Twilio recognizes and speaks.
    ConversationRelay(Box<crate::relay::ConversationRelay>),
    /// A recognised noun dialtone does not simulate (Room, VirtualAgent...).
    Other {
        /// The noun's element name.
        name: String,
    },
}

/// `<Connect>`: blocks while its noun lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// `action`: requested when the noun ends; `None` = continue with the next verb.
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Method,
    /// The one noun inside.
    pub target: ConnectTarget,
}

/// What a `<Start>` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartTarget {
    /// `<Start><Stream>`: a unidirectional media stream fork.
    Stream(Stream),
    /// `<Start><Transcription>`: real-time transcription of the call's audio.
    Transcription(Box<crate::transcription::Transcription>),
    /// A recognised noun dialtone does not simulate (Siprec, Recording).
    Other {
        /// The noun's element name.
        name: String,
    },
}

/// `<Start>`: starts a fork and continues immediately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// `action` (accepted by the helper libraries).
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Method,
    /// The one noun inside.
    pub target: StartTarget,
}

/// `<Stop>`: stops a fork. `<Stop><Stream name="x"/></Stop>` gives `stream_name: Some("x")`;
/// `<Stop><Transcription name="t"/></Stop>` gives `other: Some("Transcription")` and
/// `name: Some("t")`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stop {
    /// `name` of the `<Stream>` to stop; `None` for a nameless `<Stream/>` or another noun.
    pub stream_name: Option<String>,
    /// Element name of a non-Stream noun (`Siprec`, `Transcription`...); `None` for `<Stream>`.
    pub other: Option<String>,
    /// `name` of the `<Transcription>` to stop; `None` for a nameless one and for the
    /// unsimulated nouns (whose attributes are not read).
    pub name: Option<String>,
}

/// `<Record>`: record the caller until silence, a key, or `maxLength`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `action`: `None` means "the current document URL".
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Method,
    /// `timeout`: seconds of silence that end the recording (default 5).
    pub timeout_secs: u32,
    /// `finishOnKey`: any of these keys ends the recording (default `"1234567890*#"`).
    pub finish_on_key: String,
    /// `maxLength` in seconds (default 3600; at most 86400, Twilio's ceiling).
    pub max_length_secs: u32,
    /// `playBeep` (default true).
    pub play_beep: bool,
    /// `trim`: `trim-silence` (Twilio's default) or `do-not-trim`, if given.
    pub trim: Option<String>,
    /// `recordingStatusCallback` URL.
    pub recording_status_callback: Option<String>,
    /// `recordingStatusCallbackMethod`.
    pub recording_status_callback_method: Method,
    /// `recordingStatusCallbackEvent`: `in-progress`, `completed`, `absent` (default
    /// `completed`), validated and deduplicated in the order written.
    pub recording_status_callback_events: Vec<String>,
    /// `transcribe` (default false).
    pub transcribe: bool,
    /// `transcribeCallback` URL.
    pub transcribe_callback: Option<String>,
}

impl Record {
    /// Whether leading and trailing silence is cut from the recording: `trim-silence`,
    /// Twilio's default.
    pub fn trims_silence(&self) -> bool {
        self.trim.as_deref() != Some("do-not-trim")
    }

    /// Whether the recording is transcribed: `transcribe="true"`, or a `transcribeCallback`,
    /// which Twilio's reference says implies it.
    pub fn transcribes(&self) -> bool {
        self.transcribe || self.transcribe_callback.is_some()
    }
}

impl Default for Record {
    fn default() -> Self {
        Self {
            action: None,
            method: Method::Post,
            timeout_secs: 5,
            finish_on_key: "1234567890*#".to_owned(),
            max_length_secs: 3600,
            play_beep: true,
            trim: None,
            recording_status_callback: None,
            recording_status_callback_method: Method::Post,
            recording_status_callback_events: vec!["completed".into()],
            transcribe: false,
            transcribe_callback: None,
        }
    }
}

/// One noun inside `<Dial>` (`<Number>`, `<Client>`, `<Sip>`, `<Conference>`, `<Queue>`...).
///
/// Stored as written; [`DialNoun::kind`], [`DialNoun::number_options`],
/// [`DialNoun::conference_options`] and [`DialNoun::queue_options`] give typed views whose
/// values were validated when the document was parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DialNoun {
    /// Element name, e.g. `"Number"`.
    pub name: String,
    /// Trimmed text content, including text of nested `<Identity>`/`<Uri>`/`<ApplicationSid>`.
    pub value: String,
    /// The noun's attributes, verbatim and in document order (names checked against Twilio's list).
    pub attributes: Vec<(String, String)>,
}

/// `<Dial>`: call another party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// `action`: requested when the dialed call ends; `None` = continue with the next verb.
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Method,
    /// `timeout`: seconds to ring (default 30).
    pub timeout_secs: u32,
    /// `callerId`.
    pub caller_id: Option<String>,
    /// `timeLimit`: maximum call length in seconds (default 14400).
    pub time_limit_secs: u32,
    /// Who to call: the trimmed text when `<Dial>` holds a bare number, otherwise the `value`
    /// of the first noun (`nouns[0].value`).
    pub target: String,
    /// The nouns, when `<Dial>` holds nouns instead of text (empty for a bare number).
    pub nouns: Vec<DialNoun>,
    /// `hangupOnStar` (default false).
    pub hangup_on_star: bool,
    /// `answerOnBridge` (default false).
    pub answer_on_bridge: bool,
    /// `record`: `do-not-record`, `record-from-answer`, `record-from-ringing`, their
    /// `-dual` forms, or the legacy `true`/`false`, as written.
    pub record: Option<String>,
    /// `ringTone`: the country whose ringback the caller hears (`us`, `uk`, `de`...).
    pub ring_tone: Option<String>,
    /// `recordingStatusCallback` URL.
    pub recording_status_callback: Option<String>,
    /// `recordingStatusCallbackMethod` (default POST).
    pub recording_status_callback_method: Method,
    /// `recordingStatusCallbackEvent`: `in-progress`, `completed`, `absent` (default
    /// `completed`).
    pub recording_status_callback_events: Vec<String>,
}

/// What a `<Dial record>` value asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialRecording {
    /// From the start of ringing rather than from the answer.
    pub from_ringing: bool,
    /// Two channels (caller, callee) rather than one mixed.
    pub dual: bool,
}

impl Dial {
    /// The recording `record` asks for; `None` for `do-not-record`, `false` or no `record`.
    pub fn recording(&self) -> Option<DialRecording> {
        let r = self.record.as_deref()?;
        if r == "do-not-record" || r == "false" {
            return None;
        }
        Some(DialRecording {
            from_ringing: r.starts_with("record-from-ringing"),
            dual: r.ends_with("-dual"),
        })
    }
}

impl Default for Dial {
    fn default() -> Self {
        Self {
            action: None,
            method: Method::Post,
            timeout_secs: 30,
            caller_id: None,
            time_limit_secs: 14400,
            target: String::new(),
            nouns: Vec::new(),
            hangup_on_star: false,
            answer_on_bridge: false,
            record: None,
            ring_tone: None,
            recording_status_callback: None,
            recording_status_callback_method: Method::Post,
            recording_status_callback_events: vec!["completed".into()],
        }
    }
}

/// Which `<Dial>` noun a [`DialNoun`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NounKind {
    /// `<Number>`: a phone number.
    Number,
    /// `<Client>`: a Voice SDK client identity.
    Client,
    /// `<Sip>`: a SIP URI.
    Sip,
    /// `<Conference>`: a named conference room.
    Conference,
    /// `<Queue>`: the first caller waiting in a named queue.
    Queue,
    /// `<Sim>`: a Programmable Wireless SIM.
    Sim,
    /// `<Application>`: a TwiML App.
    Application,
    /// `<WhatsApp>`: a WhatsApp user.
    WhatsApp,
}

impl NounKind {
    /// The kind named by a `<Dial>` child element, or `None` if it is not a Dial noun.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "Number" => NounKind::Number,
            "Client" => NounKind::Client,
            "Sip" => NounKind::Sip,
            "Conference" => NounKind::Conference,
            "Queue" => NounKind::Queue,
            "Sim" => NounKind::Sim,
            "Application" => NounKind::Application,
            "WhatsApp" => NounKind::WhatsApp,
            _ => return None,
        })
    }
}

/// Typed attributes of a dialed party: `<Number>`, `<Client>` or `<Sip>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberOptions {
    /// `url`: a document run on the called party's leg before the calls are bridged.
    pub url: Option<String>,
    /// `method` for `url`.
    pub method: Method,
    /// `sendDigits`: DTMF (`0-9 * #`, `w`/`W` pauses) sent once the party answers.
    pub send_digits: Option<String>,
    /// `statusCallback` URL for call progress events.
    pub status_callback: Option<String>,
    /// `statusCallbackMethod`.
    pub status_callback_method: Method,
    /// `statusCallbackEvent`: a subset of `initiated`, `ringing`, `answered`, `completed` in
    /// the order written; `["completed"]` when absent.
    pub status_callback_events: Vec<String>,
}

impl Default for NumberOptions {
    fn default() -> Self {
        Self {
            url: None,
            method: Method::Post,
            send_digits: None,
            status_callback: None,
            status_callback_method: Method::Post,
            status_callback_events: vec!["completed".to_owned()],
        }
    }
}

/// `<Conference beep>`: when the room hears a notification beep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Beep {
    /// `true` (the default): when a participant joins and when one leaves.
    #[default]
    True,
    /// `false`: never.
    False,
    /// `onEnter`: only when a participant joins.
    OnEnter,
    /// `onExit`: only when a participant leaves.
    OnExit,
}

/// Typed attributes of `<Conference>`, with Twilio's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceOptions {
    /// `muted`: the participant only listens (default false).
    pub muted: bool,
    /// `beep`.
    pub beep: Beep,
    /// `startConferenceOnEnter`: joining starts the conference (default true); otherwise the
    /// participant hears the wait music until a participant with it set joins.
    pub start_conference_on_enter: bool,
    /// `endConferenceOnExit`: leaving ends the conference for everyone (default false).
    pub end_conference_on_exit: bool,
    /// `waitUrl`: played until the conference starts. `None` is Twilio's default hold music;
    /// `Some("")` is silence.
    pub wait_url: Option<String>,
    /// `waitMethod` for `wait_url`.
    pub wait_method: Method,
    /// `maxParticipants`: 1 to 250 (default 250).
    pub max_participants: u32,
    /// `record`: `do-not-record` (Twilio's default) or `record-from-start`, if given.
    pub record: Option<String>,
    /// `statusCallback` URL for conference events.
    pub status_callback: Option<String>,
    /// `statusCallbackMethod`.
    pub status_callback_method: Method,
    /// `statusCallbackEvent`: a subset of `start`, `end`, `join`, `leave`, `mute`, `hold`,
    /// `modify`, `speaker`, `announcement` in the order written; empty when absent.
    pub status_callback_events: Vec<String>,
    /// `coach`: the Call SID of the participant this one coaches.
    pub coach: Option<String>,
    /// `participantLabel`.
    pub participant_label: Option<String>,
}

impl Default for ConferenceOptions {
    fn default() -> Self {
        Self {
            muted: false,
            beep: Beep::True,
            start_conference_on_enter: true,
            end_conference_on_exit: false,
            wait_url: None,
            wait_method: Method::Post,
            max_participants: 250,
            record: None,
            status_callback: None,
            status_callback_method: Method::Post,
            status_callback_events: Vec::new(),
            coach: None,
            participant_label: None,
        }
    }
}

/// Typed attributes of `<Queue>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueOptions {
    /// `url`: a document run on the dequeued caller's leg before the calls are bridged.
    pub url: Option<String>,
    /// `method` for `url`.
    pub method: Method,
}

/// `<Task>` inside `<Enqueue workflowSid>`: the TaskRouter task created for the call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Task {
    /// The task attributes: trimmed text content, JSON by contract (passed through unparsed).
    pub attributes: String,
    /// `priority`, if given.
    pub priority: Option<u32>,
    /// `timeout` in seconds (at least 1), if given.
    pub timeout_secs: Option<u32>,
}

/// `<Enqueue>`: put the call in a queue, where it hears `wait_url` until dequeued.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enqueue {
    /// The queue name: trimmed text content, at most 64 characters. Empty only when
    /// `workflow_sid` routes the call through TaskRouter instead.
    pub queue: String,
    /// `action`: requested when the call leaves the queue; `None` = continue with the next verb.
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Method,
    /// `waitUrl`: the document or audio played while waiting; `None` = Twilio's hold music.
    pub wait_url: Option<String>,
    /// `waitUrlMethod` for `wait_url`.
    pub wait_url_method: Method,
    /// `workflowSid`: the TaskRouter Workflow that routes the call.
    pub workflow_sid: Option<String>,
    /// The `<Task>` child, if any.
    pub task: Option<Task>,
}
