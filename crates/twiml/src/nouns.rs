//! Schema layer for the verbs that hold nouns: `<Connect>`, `<Start>`, `<Stop>` (with
//! `<Stream>` and `<Parameter>`) and `<Dial>` (with `<Number>`, `<Client>`, `<Sip>`...).

use std::borrow::Cow;

use crate::attrs::Attrs;
use crate::cursor::{Attr, Cursor, Elem, Ev};
use crate::error::TwimlError;
use crate::model::{
    Beep, ConferenceOptions, Connect, ConnectTarget, Dial, DialNoun, NounKind, NumberOptions,
    QueueOptions, Start, StartTarget, Stop, Stream, Track,
};
use crate::verbs::{bad_child, parameter, reject_text};

const STREAM_ATTRS: &[&str] = &[
    "url",
    "name",
    "track",
    "statusCallback",
    "statusCallbackMethod",
    "connectorName",
];

/// Twilio's limit on one `<Parameter>`: name and value together must stay under this.
const PARAMETER_LIMIT: usize = 500;

/// `<Connect>` nouns that are recognised but not simulated (their content is not validated).
const CONNECT_OTHER: &[&str] = &[
    "Room",
    "VirtualAgent",
    "Conversation",
    "Autopilot",
    "AiSession",
    "ConversationRelaySession",
    "Assistant",
];

/// `<Start>`/`<Stop>` nouns that are recognised but not simulated.
const FORK_OTHER: &[&str] = &["Siprec", "Recording"];

/// `<Stream>`; `require_url` is false under `<Stop>`, which only needs the name.
fn stream(cur: &mut Cursor<'_>, e: &Elem<'_>, require_url: bool) -> Result<Stream, TwimlError> {
    let attrs = Attrs::check(e, STREAM_ATTRS)?;
    let url = attrs.string("url").unwrap_or_default();
    let connector_name = attrs.string("connectorName");
    if url.trim().is_empty() {
        if require_url && connector_name.is_none() {
            return Err(attrs.err("<Stream> requires a url attribute"));
        }
    } else if let Some(scheme) = url_scheme(&url)
        && !scheme.eq_ignore_ascii_case("wss")
        && !scheme.eq_ignore_ascii_case("ws")
    {
        // Twilio only speaks wss; ws is dialtone's allowance for local testing.
        return Err(attrs.err(format!("<Stream> url must be ws:// or wss://, found {url}")));
    }
    let track = match attrs.choice("track", &["inbound_track", "outbound_track", "both_tracks"])? {
        Some(t) if t == "outbound_track" => Track::Outbound,
        Some(t) if t == "both_tracks" => Track::Both,
        _ => Track::Inbound,
    };
    let mut stream = Stream {
        url,
        name: attrs.string("name"),
        track,
        status_callback: attrs.string("statusCallback"),
        status_callback_method: attrs.method("statusCallbackMethod")?,
        connector_name,
        parameters: Vec::new(),
    };
    loop {
        match cur.next()? {
            Ev::Open(child) if child.name == "Parameter" => {
                let (name, value) = parameter(cur, &child)?;
                let len = name.chars().count() + value.chars().count();
                if len >= PARAMETER_LIMIT {
                    return Err(TwimlError::schema(
                        child.line,
                        child.name,
                        format!(
                            "<Parameter> name and value must be under {PARAMETER_LIMIT} characters combined, found {len}"
                        ),
                    ));
                }
                stream.parameters.push((name, value));
            }
            Ev::Open(child) => return Err(bad_child(e, &child, "<Parameter>")),
            Ev::Text(t) => reject_text(e, &t)?,
            Ev::Close | Ev::Eof => return Ok(stream),
        }
    }
}

/// The scheme of an absolute URL (RFC 3986: a letter, then letters/digits/`+-.`, then `:`),
/// or `None` for a relative reference.
fn url_scheme(url: &str) -> Option<&str> {
    let url = url.trim_start();
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// The one noun of a `<Connect>`/`<Start>`/`<Stop>`, found by `pick`, which consumes the
/// child and returns `None` when the child is not an allowed noun.
fn single_noun<T>(
    cur: &mut Cursor<'_>,
    e: &Elem<'_>,
    allowed: &str,
    mut pick: impl FnMut(&mut Cursor<'_>, &Elem<'_>) -> Result<Option<T>, TwimlError>,
) -> Result<T, TwimlError> {
    let mut found: Option<T> = None;
    loop {
        match cur.next()? {
            Ev::Open(child) => {
                if found.is_some() {
                    return Err(TwimlError::schema(
                        child.line,
                        child.name,
                        format!(
                            "<{}> may contain only one noun, found a second <{}>",
                            e.name, child.name
                        ),
                    ));
                }
                match pick(cur, &child)? {
                    Some(noun) => found = Some(noun),
                    None => return Err(bad_child(e, &child, allowed)),
                }
            }
            Ev::Text(t) => reject_text(e, &t)?,
            Ev::Close | Ev::Eof => break,
        }
    }
    found.ok_or_else(|| {
        TwimlError::schema(
            e.line,
            e.name,
            format!("<{}> must contain one of {allowed}", e.name),
        )
    })
}

/// `<Connect>`: exactly one noun; a bidirectional `<Stream>` is the simulated one.
pub(crate) fn connect(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Connect, TwimlError> {
    let attrs = Attrs::check(e, &["action", "method"])?;
    let action = attrs.string("action");
    let method = attrs.method("method")?;
    let allowed = "<Stream>, <Room>, <ConversationRelay>, <VirtualAgent>, <Conversation>";
    let target = single_noun(cur, e, allowed, |cur, child| {
        Ok(match child.name {
            "Stream" => Some(ConnectTarget::Stream(stream(cur, child, true)?)),
            "ConversationRelay" => Some(ConnectTarget::ConversationRelay(Box::new(
                crate::relay::conversation_relay(cur, child)?,
            ))),
            name if CONNECT_OTHER.contains(&name) => {
                cur.skip_element()?;
                Some(ConnectTarget::Other {
                    name: name.to_owned(),
                })
            }
            _ => None,
        })
    })?;
    Ok(Connect {
        action,
        method,
        target,
    })
}

/// `<Start>`: exactly one noun; a unidirectional `<Stream>` is the simulated one.
pub(crate) fn start(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Start, TwimlError> {
    let attrs = Attrs::check(e, &["action", "method"])?;
    let action = attrs.string("action");
    let method = attrs.method("method")?;
    let allowed = "<Stream>, <Siprec>, <Transcription>, <Recording>";
    let target = single_noun(cur, e, allowed, |cur, child| {
        Ok(match child.name {
            "Stream" => Some(StartTarget::Stream(stream(cur, child, true)?)),
            "Transcription" => Some(StartTarget::Transcription(Box::new(
                crate::transcription::transcription(cur, child)?,
            ))),
            name if FORK_OTHER.contains(&name) => {
                cur.skip_element()?;
                Some(StartTarget::Other {
                    name: name.to_owned(),
                })
            }
            _ => None,
        })
    })?;
    Ok(Start {
        action,
        method,
        target,
    })
}

/// `<Stop>`: exactly one noun naming the fork to stop.
pub(crate) fn stop(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Stop, TwimlError> {
    Attrs::check(e, &[])?;
    let allowed = "<Stream>, <Siprec>, <Transcription>, <Recording>";
    single_noun(cur, e, allowed, |cur, child| {
        Ok(match child.name {
            "Stream" => Some(Stop {
                stream_name: stream(cur, child, false)?.name,
                ..Stop::default()
            }),
            "Transcription" => Some(Stop {
                other: Some("Transcription".to_owned()),
                name: crate::transcription::transcription(cur, child)?.name,
                ..Stop::default()
            }),
            name if FORK_OTHER.contains(&name) => {
                cur.skip_element()?;
                Some(Stop {
                    other: Some(name.to_owned()),
                    ..Stop::default()
                })
            }
            _ => None,
        })
    })
}

const DIAL_ATTRS: &[&str] = &[
    "action",
    "method",
    "timeout",
    "hangupOnStar",
    "timeLimit",
    "callerId",
    "record",
    "trim",
    "recordingStatusCallback",
    "recordingStatusCallbackMethod",
    "recordingStatusCallbackEvent",
    "answerOnBridge",
    "ringTone",
    "recordingTrack",
    "sequential",
    "referUrl",
    "referMethod",
];

/// `<Dial record>` values (`true`/`false` are the legacy spelling).
const DIAL_RECORD: &[&str] = &[
    "do-not-record",
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
    "true",
    "false",
];

/// `<Dial ringTone>` countries.
const RING_TONES: &[&str] = &[
    "at", "au", "bg", "br", "be", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr",
    "hu", "il", "in", "it", "lt", "jp", "mx", "my", "nl", "no", "nz", "ph", "pl", "pt", "ru", "se",
    "sg", "th", "uk", "us", "us-old", "tw", "ve", "za",
];

/// `recordingStatusCallbackEvent` events (`<Dial>`, `<Record>`).
pub(crate) const RECORDING_EVENTS: &[&str] = &["in-progress", "completed", "absent"];

/// Status-callback attributes shared by every dialable noun.
const CALLBACKS: &[&str] = &[
    "url",
    "method",
    "statusCallbackEvent",
    "statusCallback",
    "statusCallbackMethod",
];

const AMD: &[&str] = &[
    "machineDetection",
    "amdStatusCallbackMethod",
    "amdStatusCallback",
    "machineDetectionTimeout",
    "machineDetectionSpeechThreshold",
    "machineDetectionSpeechEndThreshold",
    "machineDetectionSilenceTimeout",
];

const CONFERENCE_ATTRS: &[&str] = &[
    "muted",
    "beep",
    "startConferenceOnEnter",
    "endConferenceOnExit",
    "waitUrl",
    "waitMethod",
    "maxParticipants",
    "record",
    "recordingConfigurationId",
    "region",
    "coach",
    "trim",
    "statusCallbackEvent",
    "statusCallback",
    "statusCallbackMethod",
    "recordingStatusCallback",
    "recordingStatusCallbackMethod",
    "recordingStatusCallbackEvent",
    "eventCallbackUrl",
    "jitterBufferSize",
    "participantLabel",
];

/// Call progress events of a dialed party's `statusCallbackEvent`.
const CALL_EVENTS: &[&str] = &["initiated", "ringing", "answered", "completed"];

/// Conference events of `<Conference statusCallbackEvent>`.
const CONFERENCE_EVENTS: &[&str] = &[
    "start",
    "end",
    "join",
    "leave",
    "mute",
    "hold",
    "modify",
    "speaker",
    "announcement",
];

/// Twilio's limit on a conference name (warning 13237).
const CONFERENCE_NAME_MAX: usize = 128;

/// Kinds that are a called party, with call progress callbacks.
fn is_party(kind: NounKind) -> bool {
    matches!(
        kind,
        NounKind::Number
            | NounKind::Sip
            | NounKind::Application
            | NounKind::Client
            | NounKind::WhatsApp
    )
}

/// Attribute names documented for a `<Dial>` noun.
fn dial_noun_attrs(kind: NounKind) -> Vec<&'static str> {
    let extra: &[&str] = match kind {
        NounKind::Number => &["sendDigits", "byoc"],
        NounKind::Sip => &["username", "password"],
        NounKind::Application => &["customerId", "copyParentTo"],
        NounKind::Client | NounKind::WhatsApp | NounKind::Sim => &[],
        NounKind::Queue => &["url", "method", "reservationSid", "postWorkActivitySid"],
        NounKind::Conference => CONFERENCE_ATTRS,
    };
    let mut all = extra.to_vec();
    if is_party(kind) {
        all.extend_from_slice(CALLBACKS);
    }
    if matches!(kind, NounKind::Number | NounKind::Sip) {
        all.extend_from_slice(AMD);
    }
    all
}

/// `<Dial>`: a bare number as text, or one or more nouns.
pub(crate) fn dial(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Dial, TwimlError> {
    let attrs = Attrs::check(e, DIAL_ATTRS)?;
    attrs.boolean("sequential", false)?;
    let mut dial = Dial {
        action: attrs.string("action"),
        method: attrs.method("method")?,
        timeout_secs: attrs.uint("timeout", 30, 0)?,
        caller_id: attrs.string("callerId"),
        time_limit_secs: attrs.uint("timeLimit", 14400, 0)?,
        hangup_on_star: attrs.boolean("hangupOnStar", false)?,
        answer_on_bridge: attrs.boolean("answerOnBridge", false)?,
        record: attrs.choice("record", DIAL_RECORD)?,
        ring_tone: attrs.choice("ringTone", RING_TONES)?,
        recording_status_callback: attrs.string("recordingStatusCallback"),
        recording_status_callback_method: attrs.method("recordingStatusCallbackMethod")?,
        recording_status_callback_events: attrs.words(
            "recordingStatusCallbackEvent",
            RECORDING_EVENTS,
            &["completed"],
        )?,
        ..Dial::default()
    };
    let mut text = String::new();
    loop {
        match cur.next()? {
            Ev::Text(t) => text.push_str(&t),
            Ev::Open(child) => {
                let Some(kind) = NounKind::from_name(child.name) else {
                    return Err(bad_child(
                        e,
                        &child,
                        "a number or <Number>, <Client>, <Sip>, <Conference>, <Queue>, <Sim>, <Application>, <WhatsApp>",
                    ));
                };
                dial.nouns.push(dial_noun(cur, &child, kind)?);
            }
            Ev::Close | Ev::Eof => break,
        }
    }
    let text = text.trim();
    match (text.is_empty(), dial.nouns.first()) {
        (false, Some(_)) => {
            Err(attrs.err("<Dial> must contain either a number as text or nouns, not both"))
        }
        (false, None) => {
            dial.target = text.to_owned();
            Ok(dial)
        }
        (true, Some(first)) => {
            dial.target = first.value.clone();
            Ok(dial)
        }
        (true, None) => {
            Err(attrs.err("<Dial> needs a number as its text or a noun such as <Number>"))
        }
    }
}

fn dial_noun(cur: &mut Cursor<'_>, e: &Elem<'_>, kind: NounKind) -> Result<DialNoun, TwimlError> {
    let attrs = Attrs::check(e, &dial_noun_attrs(kind))?;
    // The typed views read these same attributes later and must not fail: check them now.
    match kind {
        NounKind::Conference => {
            conference_options(&attrs)?;
        }
        NounKind::Queue => {
            queue_options(&attrs)?;
        }
        kind if is_party(kind) => {
            number_options(&attrs)?;
        }
        _ => {}
    }
    let attributes = e
        .attrs
        .iter()
        .map(|a| (a.key.to_owned(), a.value.as_ref().to_owned()))
        .collect();
    let mut value = String::new();
    noun_text(cur, e, &mut value)?;
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(attrs.err(format!("<{}> needs a value as its text", e.name)));
    }
    let len = value.chars().count();
    if kind == NounKind::Conference && len > CONFERENCE_NAME_MAX {
        return Err(attrs.err(format!(
            "conference name must be at most {CONFERENCE_NAME_MAX} characters, found {len}"
        )));
    }
    Ok(DialNoun {
        name: e.name.to_owned(),
        value,
        attributes,
    })
}

/// Text of a Dial noun, including `<Identity>`/`<Uri>`/`<ApplicationSid>` children; custom
/// `<Parameter>`s and SIP `<Headers>` are accepted and skipped.
fn noun_text(cur: &mut Cursor<'_>, e: &Elem<'_>, out: &mut String) -> Result<(), TwimlError> {
    loop {
        match cur.next()? {
            Ev::Text(t) => out.push_str(&t),
            Ev::Open(child) => match child.name {
                "Identity" | "Uri" | "ApplicationSid" => noun_text(cur, &child, out)?,
                "Parameter" | "Headers" => cur.skip_element()?,
                _ => {
                    return Err(bad_child(
                        e,
                        &child,
                        "text, <Identity>, <Uri>, <ApplicationSid>, <Parameter>, <Headers>",
                    ));
                }
            },
            Ev::Close | Ev::Eof => return Ok(()),
        }
    }
}

fn number_options(attrs: &Attrs<'_, '_>) -> Result<NumberOptions, TwimlError> {
    let send_digits = match attrs.get("sendDigits") {
        None => None,
        Some(d) => Some(attrs.keys("sendDigits", d, "0123456789*#wW", None)?),
    };
    Ok(NumberOptions {
        url: attrs.string("url"),
        method: attrs.method("method")?,
        send_digits,
        status_callback: attrs.string("statusCallback"),
        status_callback_method: attrs.method("statusCallbackMethod")?,
        status_callback_events: attrs.words("statusCallbackEvent", CALL_EVENTS, &["completed"])?,
    })
}

fn conference_options(attrs: &Attrs<'_, '_>) -> Result<ConferenceOptions, TwimlError> {
    let beep = match attrs.get("beep") {
        None => Beep::True,
        Some("onEnter") => Beep::OnEnter,
        Some("onExit") => Beep::OnExit,
        Some(value) => match attrs.boolean("beep", true) {
            Ok(true) => Beep::True,
            Ok(false) => Beep::False,
            Err(_) => {
                return Err(attrs.err(format!(
                    "attribute beep=\"{value}\" must be true, false, onEnter or onExit"
                )));
            }
        },
    };
    let max_participants = attrs.uint("maxParticipants", 250, 1)?;
    if max_participants > 250 {
        return Err(attrs.err(format!(
            "attribute maxParticipants=\"{max_participants}\" must be at most 250"
        )));
    }
    Ok(ConferenceOptions {
        muted: attrs.boolean("muted", false)?,
        beep,
        start_conference_on_enter: attrs.boolean("startConferenceOnEnter", true)?,
        end_conference_on_exit: attrs.boolean("endConferenceOnExit", false)?,
        wait_url: attrs.string("waitUrl"),
        wait_method: attrs.method("waitMethod")?,
        max_participants,
        record: attrs.choice("record", &["do-not-record", "record-from-start"])?,
        status_callback: attrs.string("statusCallback"),
        status_callback_method: attrs.method("statusCallbackMethod")?,
        status_callback_events: attrs.words("statusCallbackEvent", CONFERENCE_EVENTS, &[])?,
        coach: attrs.string("coach"),
        participant_label: attrs.string("participantLabel"),
    })
}

fn queue_options(attrs: &Attrs<'_, '_>) -> Result<QueueOptions, TwimlError> {
    Ok(QueueOptions {
        url: attrs.string("url"),
        method: attrs.method("method")?,
    })
}

impl DialNoun {
    /// The value of attribute `name` as written, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Which noun this is. A name that is not a Dial noun (possible only for a noun built in
    /// code) reads as [`NounKind::Number`], what a bare `<Dial>` text dials.
    pub fn kind(&self) -> NounKind {
        NounKind::from_name(&self.name).unwrap_or(NounKind::Number)
    }

    /// The attributes of a `<Number>`, `<Client>` or `<Sip>`, with Twilio's defaults.
    pub fn number_options(&self) -> NumberOptions {
        self.view(number_options)
    }

    /// The attributes of a `<Conference>`, with Twilio's defaults.
    pub fn conference_options(&self) -> ConferenceOptions {
        self.view(conference_options)
    }

    /// The attributes of a `<Queue>`, with Twilio's defaults.
    pub fn queue_options(&self) -> QueueOptions {
        self.view(queue_options)
    }

    /// Read the attributes with the parser that validated them, so a parsed noun always reads
    /// back cleanly; only a noun built in code with bad values falls back to the defaults.
    fn view<T: Default>(&self, read: fn(&Attrs<'_, '_>) -> Result<T, TwimlError>) -> T {
        let elem = Elem {
            name: &self.name,
            line: 0,
            attrs: self
                .attributes
                .iter()
                .map(|(key, value)| Attr {
                    key,
                    value: Cow::Borrowed(value),
                })
                .collect(),
        };
        read(&Attrs::checked(&elem)).unwrap_or_default()
    }
}
