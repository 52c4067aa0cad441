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
    /// A real Twilio voice verb that dialtone parses but does not simulate (Enqueue, Leave, Pay,
    /// Refer, Echo, Sms, Queue...). Its attributes and content are accepted without validation.
    Unsupported {
        /// The element name, e.g. `"Enqueue"`.
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
    /// A recognised noun dialtone does not simulate (Siprec, Transcription, Recording).
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

/// `<Stop>`: stops a fork. `<Stop><Stream name="x"/></Stop>` gives `stream_name: Some("x")`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stop {
    /// `name` of the `<Stream>` to stop; `None` for a nameless `<Stream/>` or another noun.
    pub stream_name: Option<String>,
    /// Element name of a non-Stream noun (`Siprec`, `Transcription`...); `None` for `<Stream>`.
    pub other: Option<String>,
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
    /// `maxLength` in seconds (default 3600).
    pub max_length_secs: u32,
    /// `playBeep` (default true).
    pub play_beep: bool,
    /// `trim`: `trim-silence` (Twilio's default) or `do-not-trim`, if given.
    pub trim: Option<String>,
    /// `recordingStatusCallback` URL.
    pub recording_status_callback: Option<String>,
    /// `recordingStatusCallbackMethod`.
    pub recording_status_callback_method: Method,
    /// `recordingStatusCallbackEvent` (space-separated events), passed through.
    pub recording_status_callback_event: Option<String>,
    /// `transcribe` (default false).
    pub transcribe: bool,
    /// `transcribeCallback` URL.
    pub transcribe_callback: Option<String>,
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
            recording_status_callback_event: None,
            transcribe: false,
            transcribe_callback: None,
        }
    }
}

/// One noun inside `<Dial>` (`<Number>`, `<Client>`, `<Sip>`, `<Conference>`, `<Queue>`...).
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
    /// `record` (`do-not-record`, `record-from-answer`...), passed through.
    pub record: Option<String>,
    /// `ringTone`, passed through.
    pub ring_tone: Option<String>,
    /// `recordingStatusCallback` URL.
    pub recording_status_callback: Option<String>,
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
        }
    }
}
