//! Schema layer for `<Response>` and the simple verbs: turns cursor events into typed verbs and
//! raises 12200 for unknown verbs, bad nesting, bad attributes and missing content.

use crate::attrs::Attrs;
use crate::cursor::{Cursor, Elem, Ev};
use crate::error::TwimlError;
use crate::model::{
    Document, Enqueue, Gather, GatherInput, Node, Pause, Play, Record, Redirect, Reject,
    RejectReason, Say, Task, Verb,
};
use crate::nouns;

/// Verbs parsed into typed structs, for "did you mean" hints on wrong case.
const KNOWN_VERBS: &[&str] = &[
    "Say", "Play", "Pause", "Gather", "Hangup", "Reject", "Redirect", "Connect", "Start", "Stop",
    "Record", "Dial", "Enqueue", "Leave",
];

/// Real Twilio voice verbs that dialtone recognises without simulating them.
const UNSUPPORTED_VERBS: &[&str] = &["Pay", "Refer", "Echo", "Sms", "Queue"];

/// Twilio's limit on a queue name (the `<Enqueue>` reference).
const QUEUE_NAME_MAX: usize = 64;

/// Nouns that are valid TwiML but never directly under `<Response>`.
const NOUNS: &[&str] = &[
    "Stream",
    "Parameter",
    "Number",
    "Client",
    "Conference",
    "Sip",
    "Sim",
    "Application",
    "WhatsApp",
    "Room",
    "ConversationRelay",
    "VirtualAgent",
    "Siprec",
    "Transcription",
    "Recording",
    "Identity",
    "Uri",
    "Prompt",
    "Task",
];

/// SSML elements Twilio accepts inside `<Say>`; their text content is spoken.
const SSML: &[&str] = &[
    "break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w", "mark",
];

/// SSML elements that separate words, so their boundaries become spaces in `Say::text`.
const SSML_BLOCKS: &[&str] = &["break", "p", "s"];

/// Parse a whole document; the cursor guarantees the first element is `<Response>`.
pub(crate) fn document(cur: &mut Cursor<'_>) -> Result<Document, TwimlError> {
    // The cursor turns anything else before the root into a 12100, so this always matches.
    let Ev::Open(root) = cur.next()? else {
        return Ok(Document::default());
    };
    Attrs::check(&root, &["version"])?;
    let mut verbs = Vec::new();
    loop {
        match cur.next()? {
            Ev::Open(e) => verbs.push(verb(cur, e)?),
            Ev::Text(t) => reject_text(&root, &t)?,
            Ev::Close | Ev::Eof => break,
        }
    }
    // A document lives as long as its call runs it: no spare capacity (a Vec's first
    // growth is to four, and most documents have one or two verbs).
    verbs.shrink_to_fit();
    // After </Response> the cursor only yields Eof or a 12100 (trailing content).
    cur.drain().map_or(Ok(Document { verbs }), Err)
}

/// One top-level verb, consuming its whole element.
fn verb(cur: &mut Cursor<'_>, e: Elem<'_>) -> Result<Node, TwimlError> {
    let line = e.line;
    let verb = match e.name {
        "Say" => Verb::Say(say(cur, &e)?),
        "Play" => Verb::Play(play(cur, &e, false)?),
        "Pause" => Verb::Pause(pause(cur, &e)?),
        "Gather" => Verb::Gather(gather(cur, &e)?),
        "Hangup" => {
            Attrs::check(&e, &[])?;
            empty_content(cur, &e, true)?;
            Verb::Hangup
        }
        "Reject" => Verb::Reject(reject(cur, &e)?),
        "Redirect" => Verb::Redirect(redirect(cur, &e)?),
        "Record" => Verb::Record(record(cur, &e)?),
        "Connect" => Verb::Connect(nouns::connect(cur, &e)?),
        "Start" => Verb::Start(nouns::start(cur, &e)?),
        "Stop" => Verb::Stop(nouns::stop(cur, &e)?),
        "Dial" => Verb::Dial(nouns::dial(cur, &e)?),
        "Enqueue" => Verb::Enqueue(enqueue(cur, &e)?),
        "Leave" => {
            Attrs::check(&e, &[])?;
            empty_content(cur, &e, false)?;
            Verb::Leave
        }
        name if UNSUPPORTED_VERBS.contains(&name) => {
            cur.skip_element()?;
            Verb::Unsupported {
                name: name.to_owned(),
            }
        }
        name => return Err(unknown_verb(&e, name)),
    };
    Ok(Node { line, verb })
}

fn unknown_verb(e: &Elem<'_>, name: &str) -> TwimlError {
    let message = if let Some(right) = KNOWN_VERBS.iter().find(|v| v.eq_ignore_ascii_case(name)) {
        format!("unknown verb <{name}> (TwiML is case-sensitive: did you mean <{right}>?)")
    } else if NOUNS.contains(&name) {
        format!("<{name}> is a noun and cannot be used directly inside <Response>")
    } else {
        format!("unknown verb <{name}>")
    };
    TwimlError::schema(e.line, name, message)
}

/// 12200 unless `text` is whitespace: `parent` has element-only content.
pub(crate) fn reject_text(parent: &Elem<'_>, text: &str) -> Result<(), TwimlError> {
    if text.trim().is_empty() {
        Ok(())
    } else {
        Err(TwimlError::schema(
            parent.line,
            parent.name,
            format!("text is not allowed directly inside <{}>", parent.name),
        ))
    }
}

/// 12200 naming the `child` that `parent` may not contain.
pub(crate) fn bad_child(parent: &Elem<'_>, child: &Elem<'_>, allowed: &str) -> TwimlError {
    TwimlError::schema(
        child.line,
        child.name,
        format!(
            "<{}> may only contain {allowed}, found <{}>",
            parent.name, child.name
        ),
    )
}

/// Consume an element that holds nothing (except `<Parameter>` children when `params`).
pub(crate) fn empty_content(
    cur: &mut Cursor<'_>,
    parent: &Elem<'_>,
    params: bool,
) -> Result<(), TwimlError> {
    loop {
        match cur.next()? {
            Ev::Open(child) if params && child.name == "Parameter" => {
                parameter(cur, &child)?;
            }
            Ev::Open(child) => {
                let allowed = if params { "<Parameter>" } else { "no elements" };
                return Err(bad_child(parent, &child, allowed));
            }
            Ev::Text(t) => reject_text(parent, &t)?,
            Ev::Close | Ev::Eof => return Ok(()),
        }
    }
}

/// Consume an element holding only text; returns the text as written (not trimmed).
pub(crate) fn text_content(cur: &mut Cursor<'_>, parent: &Elem<'_>) -> Result<String, TwimlError> {
    let mut text = String::new();
    loop {
        match cur.next()? {
            Ev::Text(t) => text.push_str(&t),
            Ev::Open(child) => return Err(bad_child(parent, &child, "text")),
            Ev::Close | Ev::Eof => return Ok(text),
        }
    }
}

/// `<Parameter name value/>`: name required, value defaults to empty, no content.
pub(crate) fn parameter(
    cur: &mut Cursor<'_>,
    e: &Elem<'_>,
) -> Result<(String, String), TwimlError> {
    let attrs = Attrs::check(e, &["name", "value"])?;
    let name = attrs.string("name").unwrap_or_default();
    if name.is_empty() {
        return Err(attrs.err("<Parameter> requires a name attribute"));
    }
    let value = attrs.string("value").unwrap_or_default();
    empty_content(cur, e, false)?;
    Ok((name, value))
}

fn say(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Say, TwimlError> {
    let attrs = Attrs::check(e, &["voice", "language", "loop"])?;
    let loop_count = attrs.uint("loop", 1, 0)?;
    let voice = attrs.string("voice");
    let language = attrs.string("language");
    let mut raw = String::new();
    ssml_text(cur, e, &mut raw)?;
    Ok(Say {
        text: normalize_space(&raw),
        voice,
        language,
        loop_count,
    })
}

/// Append the text of a `<Say>` (or SSML element) body to `out`, descending into SSML.
fn ssml_text(cur: &mut Cursor<'_>, parent: &Elem<'_>, out: &mut String) -> Result<(), TwimlError> {
    loop {
        match cur.next()? {
            Ev::Text(t) => out.push_str(&t),
            Ev::Open(child) if is_ssml(child.name) => {
                let block = SSML_BLOCKS.contains(&child.name);
                if block {
                    out.push(' ');
                }
                ssml_text(cur, &child, out)?;
                if block {
                    out.push(' ');
                }
            }
            Ev::Open(child) => {
                return Err(bad_child(parent, &child, "text and SSML elements"));
            }
            Ev::Close | Ev::Eof => return Ok(()),
        }
    }
}

fn is_ssml(name: &str) -> bool {
    // Polly's vendor extensions (<amazon:effect>, <amazon:domain>...) are SSML too.
    SSML.contains(&name) || name.starts_with("amazon:")
}

/// Collapse whitespace runs to one space and trim: what a TTS engine hears.
fn normalize_space(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

pub(crate) fn play(
    cur: &mut Cursor<'_>,
    e: &Elem<'_>,
    in_gather: bool,
) -> Result<Play, TwimlError> {
    let attrs = Attrs::check(e, &["loop", "digits"])?;
    let loop_count = attrs.uint("loop", 1, 0)?;
    let digits = match attrs.get("digits") {
        None => None,
        Some(_) if in_gather => {
            return Err(attrs.err("the digits attribute is not allowed on <Play> inside <Gather>"));
        }
        Some(d) => Some(attrs.keys("digits", d, "0123456789*#wW", None)?),
    };
    if digits.as_deref() == Some("") {
        return Err(attrs.err("attribute digits=\"\" is empty"));
    }
    let text = text_content(cur, e)?;
    let url = Some(text.trim())
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    if url.is_none() && digits.is_none() {
        return Err(attrs.err("<Play> needs an audio URL as its text or a digits attribute"));
    }
    Ok(Play {
        url,
        loop_count,
        digits,
    })
}

fn pause(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Pause, TwimlError> {
    let attrs = Attrs::check(e, &["length"])?;
    // Twilio documents `length` as an integer > 0 (warning 13910 otherwise).
    let length_secs = attrs.uint("length", 1, 1)?;
    empty_content(cur, e, false)?;
    Ok(Pause { length_secs })
}

fn reject(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Reject, TwimlError> {
    let attrs = Attrs::check(e, &["reason"])?;
    let reason = match attrs.choice("reason", &["rejected", "busy"])?.as_deref() {
        Some("busy") => RejectReason::Busy,
        _ => RejectReason::Rejected,
    };
    // <Parameter> children are documented for Voice SDK clients; they carry no call behaviour.
    empty_content(cur, e, true)?;
    Ok(Reject { reason })
}

fn redirect(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Redirect, TwimlError> {
    let attrs = Attrs::check(e, &["method"])?;
    let method = attrs.method("method")?;
    let url = text_content(cur, e)?.trim().to_owned();
    if url.is_empty() {
        return Err(attrs.err("<Redirect> needs a URL as its text"));
    }
    Ok(Redirect { url, method })
}

const GATHER_ATTRS: &[&str] = &[
    "input",
    "action",
    "method",
    "timeout",
    "speechTimeout",
    "maxSpeechTime",
    "profanityFilter",
    "finishOnKey",
    "numDigits",
    "partialResultCallback",
    "partialResultCallbackMethod",
    "language",
    "hints",
    "bargeIn",
    "debug",
    "actionOnEmptyResult",
    "speechModel",
    "enhanced",
];

fn gather(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Gather, TwimlError> {
    let attrs = Attrs::check(e, GATHER_ATTRS)?;
    let input = match attrs.get("input") {
        None => vec![GatherInput::Dtmf],
        Some(value) => gather_input(&attrs, value)?,
    };
    let speech_timeout = attrs.string("speechTimeout");
    if let Some(st) = &speech_timeout
        && st != "auto"
    {
        attrs.opt_uint("speechTimeout", 0).map_err(|_| {
            attrs.err(format!(
                "attribute speechTimeout=\"{st}\" must be auto or a whole number"
            ))
        })?;
    }
    // Validated for their type even though the simulator does not act on them.
    attrs.boolean("debug", false)?;
    attrs.boolean("enhanced", false)?;
    let mut gather = Gather {
        input,
        action: attrs.string("action"),
        method: attrs.method("method")?,
        timeout_secs: attrs.uint("timeout", 5, 0)?,
        num_digits: attrs.opt_uint("numDigits", 1)?,
        finish_on_key: attrs.keys("finishOnKey", "#", "0123456789*#", Some(1))?,
        action_on_empty_result: attrs.boolean("actionOnEmptyResult", false)?,
        speech_timeout,
        language: attrs.string("language"),
        hints: attrs.string("hints"),
        barge_in: attrs.boolean("bargeIn", true)?,
        profanity_filter: attrs.boolean("profanityFilter", true)?,
        speech_model: attrs.string("speechModel"),
        partial_result_callback: attrs.string("partialResultCallback"),
        partial_result_callback_method: attrs.method("partialResultCallbackMethod")?,
        max_speech_time_secs: attrs.opt_uint("maxSpeechTime", 1)?,
        children: Vec::new(),
    };
    loop {
        match cur.next()? {
            Ev::Open(child) => {
                let line = child.line;
                let verb = match child.name {
                    "Say" => Verb::Say(say(cur, &child)?),
                    "Play" => Verb::Play(play(cur, &child, true)?),
                    "Pause" => Verb::Pause(pause(cur, &child)?),
                    _ => return Err(bad_child(e, &child, "<Say>, <Play>, <Pause>")),
                };
                gather.children.push(Node { line, verb });
            }
            Ev::Text(t) => reject_text(e, &t)?,
            Ev::Close | Ev::Eof => return Ok(gather),
        }
    }
}

fn gather_input(attrs: &Attrs<'_, '_>, value: &str) -> Result<Vec<GatherInput>, TwimlError> {
    let mut input = Vec::new();
    for word in value.split_whitespace() {
        let kind = match word {
            "dtmf" => GatherInput::Dtmf,
            "speech" => GatherInput::Speech,
            _ => {
                return Err(attrs.err(format!(
                    "attribute input=\"{value}\" must be dtmf, speech or \"dtmf speech\""
                )));
            }
        };
        if !input.contains(&kind) {
            input.push(kind);
        }
    }
    if input.is_empty() {
        return Err(attrs.err("attribute input=\"\" must be dtmf, speech or \"dtmf speech\""));
    }
    Ok(input)
}

const RECORD_ATTRS: &[&str] = &[
    "action",
    "method",
    "timeout",
    "finishOnKey",
    "maxLength",
    "playBeep",
    "trim",
    "recordingStatusCallback",
    "recordingStatusCallbackMethod",
    "recordingStatusCallbackEvent",
    "transcribe",
    "transcribeCallback",
];

fn record(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Record, TwimlError> {
    let attrs = Attrs::check(e, RECORD_ATTRS)?;
    let record = Record {
        action: attrs.string("action"),
        method: attrs.method("method")?,
        timeout_secs: attrs.uint("timeout", 5, 0)?,
        finish_on_key: attrs.keys("finishOnKey", "1234567890*#", "0123456789*#", None)?,
        max_length_secs: max_length(&attrs)?,
        play_beep: attrs.boolean("playBeep", true)?,
        trim: attrs.choice("trim", &["trim-silence", "do-not-trim"])?,
        recording_status_callback: attrs.string("recordingStatusCallback"),
        recording_status_callback_method: attrs.method("recordingStatusCallbackMethod")?,
        recording_status_callback_events: attrs.words(
            "recordingStatusCallbackEvent",
            nouns::RECORDING_EVENTS,
            &["completed"],
        )?,
        transcribe: attrs.boolean("transcribe", false)?,
        transcribe_callback: attrs.string("transcribeCallback"),
    };
    empty_content(cur, e, false)?;
    Ok(record)
}

/// The longest `maxLength` Twilio's reference allows: 86400 s (24 hours), for accounts whose
/// calls may last that long (14400 s, 4 hours, otherwise).
const RECORD_MAX_LENGTH: u32 = 86_400;

/// `maxLength`: 1 to [`RECORD_MAX_LENGTH`] seconds, 3600 when absent.
fn max_length(attrs: &Attrs<'_, '_>) -> Result<u32, TwimlError> {
    let secs = attrs.uint("maxLength", 3600, 1)?;
    if secs > RECORD_MAX_LENGTH {
        return Err(attrs.err(format!(
            "attribute maxLength=\"{secs}\" must be at most {RECORD_MAX_LENGTH} (24 hours)"
        )));
    }
    Ok(secs)
}

const ENQUEUE_ATTRS: &[&str] = &[
    "action",
    "method",
    "waitUrl",
    "waitUrlMethod",
    "workflowSid",
    "maxQueueSize",
];

fn enqueue(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Enqueue, TwimlError> {
    let attrs = Attrs::check(e, ENQUEUE_ATTRS)?;
    // The helper libraries write maxQueueSize, but Twilio's reference does not document it
    // (a queue's size is set with the REST API): checked for its type, not kept.
    attrs.opt_uint("maxQueueSize", 1)?;
    let mut enqueue = Enqueue {
        action: attrs.string("action"),
        method: attrs.method("method")?,
        wait_url: attrs.string("waitUrl"),
        wait_url_method: attrs.method("waitUrlMethod")?,
        workflow_sid: attrs.string("workflowSid"),
        ..Enqueue::default()
    };
    let mut text = String::new();
    loop {
        match cur.next()? {
            Ev::Text(t) => text.push_str(&t),
            Ev::Open(child) if child.name == "Task" => {
                if enqueue.task.is_some() {
                    return Err(TwimlError::schema(
                        child.line,
                        child.name,
                        "<Enqueue> may contain only one <Task>",
                    ));
                }
                enqueue.task = Some(task(cur, &child)?);
            }
            Ev::Open(child) => return Err(bad_child(e, &child, "a queue name and <Task>")),
            Ev::Close | Ev::Eof => break,
        }
    }
    enqueue.queue = text.trim().to_owned();
    let routed = enqueue
        .workflow_sid
        .as_deref()
        .is_some_and(|sid| !sid.trim().is_empty());
    if enqueue.queue.is_empty() && !routed {
        return Err(attrs.err("<Enqueue> needs a queue name as its text or a workflowSid"));
    }
    let len = enqueue.queue.chars().count();
    if len > QUEUE_NAME_MAX {
        return Err(attrs.err(format!(
            "queue name must be at most {QUEUE_NAME_MAX} characters, found {len}"
        )));
    }
    Ok(enqueue)
}

/// `<Task priority timeout>` holding the task's JSON attributes.
fn task(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Task, TwimlError> {
    let attrs = Attrs::check(e, &["priority", "timeout"])?;
    let priority = attrs.opt_uint("priority", 0)?;
    let timeout_secs = attrs.opt_uint("timeout", 1)?;
    Ok(Task {
        attributes: text_content(cur, e)?.trim().to_owned(),
        priority,
        timeout_secs,
    })
}
