//! Serialize a [`Document`] back to TwiML, one line like twilio-python's output; attributes equal
//! to Twilio's defaults are omitted so the output stays what an app would have written.

use std::fmt::Write as _;

use crate::model::{
    ConnectTarget, Dial, Document, Enqueue, Gather, GatherInput, Method, Node, Record,
    RejectReason, StartTarget, Stream, Track, Verb,
};
use crate::relay::{ConversationRelay, RelayInput};
use crate::transcription::Transcription;

impl Document {
    /// `<?xml version="1.0" encoding="UTF-8"?><Response>…</Response>` with text and attributes
    /// escaped, such that `parse(&doc.to_xml())` equals `doc` (lines aside).
    pub fn to_xml(&self) -> String {
        let mut w = Writer {
            out: String::with_capacity(256),
        };
        w.out
            .push_str(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
        for node in &self.verbs {
            w.node(node);
        }
        w.out.push_str("</Response>");
        w.out
    }
}

/// An element being written: attributes first, then content or a self-close.
struct Tag<'w> {
    out: &'w mut String,
    name: &'w str,
}

impl<'w> Tag<'w> {
    fn attr(self, key: &str, value: &str) -> Self {
        let _ = write!(self.out, " {key}=\"");
        escape_into(self.out, value, true);
        self.out.push('"');
        self
    }

    fn opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.attr(key, v),
            None => self,
        }
    }

    /// Only written when different from Twilio's default, to keep output minimal.
    fn num(self, key: &str, value: u32, default: u32) -> Self {
        if value == default {
            self
        } else {
            self.attr(key, &value.to_string())
        }
    }

    fn flag(self, key: &str, value: bool, default: bool) -> Self {
        if value == default {
            self
        } else {
            self.attr(key, if value { "true" } else { "false" })
        }
    }

    fn method(self, key: &str, value: Method) -> Self {
        if value == Method::Post {
            self
        } else {
            self.attr(key, value.as_str())
        }
    }

    /// Finish with text content (or self-close when empty).
    fn text(self, text: &str) {
        if text.is_empty() {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
            escape_into(self.out, text, false);
            let _ = write!(self.out, "</{}>", self.name);
        }
    }

    /// Finish with child content written by `body`.
    fn children(self, body: impl FnOnce(&mut Writer)) {
        self.out.push('>');
        let mut w = Writer {
            out: std::mem::take(self.out),
        };
        body(&mut w);
        *self.out = w.out;
        let _ = write!(self.out, "</{}>", self.name);
    }
}

struct Writer {
    out: String,
}

impl Writer {
    fn tag<'w>(&'w mut self, name: &'w str) -> Tag<'w> {
        self.out.push('<');
        self.out.push_str(name);
        Tag {
            out: &mut self.out,
            name,
        }
    }

    fn node(&mut self, node: &Node) {
        match &node.verb {
            Verb::Say(s) => self
                .tag("Say")
                .opt("voice", s.voice.as_deref())
                .opt("language", s.language.as_deref())
                .num("loop", s.loop_count, 1)
                .text(&s.text),
            Verb::Play(p) => self
                .tag("Play")
                .num("loop", p.loop_count, 1)
                .opt("digits", p.digits.as_deref())
                .text(p.url.as_deref().unwrap_or("")),
            Verb::Pause(p) => self.tag("Pause").num("length", p.length_secs, 1).text(""),
            Verb::Gather(g) => self.gather(g),
            Verb::Hangup => self.tag("Hangup").text(""),
            Verb::Reject(r) => {
                let tag = self.tag("Reject");
                match r.reason {
                    RejectReason::Rejected => tag.text(""),
                    RejectReason::Busy => tag.attr("reason", "busy").text(""),
                }
            }
            Verb::Redirect(r) => self.tag("Redirect").method("method", r.method).text(&r.url),
            Verb::Connect(c) => {
                let tag = self.tag("Connect").opt("action", c.action.as_deref());
                tag.method("method", c.method)
                    .children(|w| match &c.target {
                        ConnectTarget::Stream(s) => w.stream(s),
                        ConnectTarget::ConversationRelay(r) => w.relay(r),
                        ConnectTarget::Other { name } => w.tag(name).text(""),
                    });
            }
            Verb::Start(s) => {
                let tag = self.tag("Start").opt("action", s.action.as_deref());
                tag.method("method", s.method)
                    .children(|w| match &s.target {
                        StartTarget::Stream(st) => w.stream(st),
                        StartTarget::Transcription(t) => w.transcription(t),
                        StartTarget::Other { name } => w.tag(name).text(""),
                    });
            }
            Verb::Stop(s) => self.tag("Stop").children(|w| match &s.other {
                Some(name) if s.stream_name.is_none() => {
                    w.tag(name).opt("name", s.name.as_deref()).text("");
                }
                _ => w
                    .tag("Stream")
                    .opt("name", s.stream_name.as_deref())
                    .text(""),
            }),
            Verb::Record(r) => self.record(r),
            Verb::Dial(d) => self.dial(d),
            Verb::Enqueue(e) => self.enqueue(e),
            Verb::Leave => self.tag("Leave").text(""),
            Verb::Unsupported { name } => self.tag(name).text(""),
        }
    }

    fn gather(&mut self, g: &Gather) {
        let input = if g.input == [GatherInput::Dtmf] {
            None
        } else {
            let words: Vec<&str> = g
                .input
                .iter()
                .map(|i| match i {
                    GatherInput::Dtmf => "dtmf",
                    GatherInput::Speech => "speech",
                })
                .collect();
            Some(words.join(" "))
        };
        let finish = (g.finish_on_key != "#").then_some(g.finish_on_key.as_str());
        self.tag("Gather")
            .opt("input", input.as_deref())
            .opt("action", g.action.as_deref())
            .method("method", g.method)
            .num("timeout", g.timeout_secs, 5)
            .opt("numDigits", g.num_digits.map(|n| n.to_string()).as_deref())
            .opt("finishOnKey", finish)
            .flag("actionOnEmptyResult", g.action_on_empty_result, false)
            .opt("speechTimeout", g.speech_timeout.as_deref())
            .opt("language", g.language.as_deref())
            .opt("hints", g.hints.as_deref())
            .flag("bargeIn", g.barge_in, true)
            .flag("profanityFilter", g.profanity_filter, true)
            .opt("speechModel", g.speech_model.as_deref())
            .opt(
                "partialResultCallback",
                g.partial_result_callback.as_deref(),
            )
            .method(
                "partialResultCallbackMethod",
                g.partial_result_callback_method,
            )
            .opt(
                "maxSpeechTime",
                g.max_speech_time_secs.map(|n| n.to_string()).as_deref(),
            )
            .children(|w| g.children.iter().for_each(|child| w.node(child)));
    }

    fn stream(&mut self, s: &Stream) {
        let url = (!s.url.is_empty()).then_some(s.url.as_str());
        let track = (s.track != Track::Inbound).then_some(s.track.as_str());
        let tag = self
            .tag("Stream")
            .opt("url", url)
            .opt("name", s.name.as_deref())
            .opt("track", track)
            .opt("statusCallback", s.status_callback.as_deref())
            .method("statusCallbackMethod", s.status_callback_method)
            .opt("connectorName", s.connector_name.as_deref());
        if s.parameters.is_empty() {
            tag.text("");
        } else {
            tag.children(|w| {
                for (name, value) in &s.parameters {
                    w.tag("Parameter")
                        .attr("name", name)
                        .attr("value", value)
                        .text("");
                }
            });
        }
    }

    fn transcription(&mut self, t: &Transcription) {
        let track = (t.track != Track::Both).then_some(t.track.as_str());
        let tag = self
            .tag("Transcription")
            .opt("name", t.name.as_deref())
            .opt("track", track)
            .opt("statusCallbackUrl", t.status_callback_url.as_deref())
            .method("statusCallbackMethod", t.status_callback_method)
            .opt("inboundTrackLabel", t.inbound_track_label.as_deref())
            .opt("outboundTrackLabel", t.outbound_track_label.as_deref())
            .flag("partialResults", t.partial_results, false)
            .opt("languageCode", t.language_code.as_deref())
            .opt("transcriptionEngine", t.transcription_engine.as_deref())
            .flag("profanityFilter", t.profanity_filter, true)
            .opt("speechModel", t.speech_model.as_deref())
            .opt("hints", t.hints.as_deref())
            .flag(
                "enableAutomaticPunctuation",
                t.enable_automatic_punctuation,
                true,
            )
            .opt("intelligenceService", t.intelligence_service.as_deref());
        if t.config.is_empty() && t.parameters.is_empty() {
            return tag.text("");
        }
        tag.children(|w| {
            for (element, pairs) in [("Config", &t.config), ("Parameter", &t.parameters)] {
                for (name, value) in pairs {
                    w.tag(element)
                        .attr("name", name)
                        .attr("value", value)
                        .text("");
                }
            }
        });
    }

    fn relay(&mut self, r: &ConversationRelay) {
        let input = |v: RelayInput, default: RelayInput| (v != default).then_some(v.as_str());
        let mut tag = self
            .tag("ConversationRelay")
            .attr("url", &r.url)
            .opt("welcomeGreeting", r.welcome_greeting.as_deref())
            .opt(
                "welcomeGreetingInterruptible",
                input(r.welcome_greeting_interruptible, RelayInput::Any),
            )
            .opt("interruptible", input(r.interruptible, RelayInput::Any))
            .flag("preemptible", r.preemptible, false)
            .flag("dtmfDetection", r.dtmf_detection, false)
            .flag("partialPrompts", r.partial_prompts, false)
            .opt(
                "reportInputDuringAgentSpeech",
                input(r.report_input_during_agent_speech, RelayInput::None),
            )
            .opt("language", r.language.as_deref())
            .opt("ttsLanguage", r.tts_language.as_deref())
            .opt("transcriptionLanguage", r.transcription_language.as_deref())
            .opt("hints", r.hints.as_deref())
            .opt("debug", r.debug.as_deref());
        for (key, value) in &r.settings {
            tag = tag.attr(key, value);
        }
        if r.languages.is_empty() && r.parameters.is_empty() {
            return tag.text("");
        }
        tag.children(|w| {
            for l in &r.languages {
                w.tag("Language")
                    .attr("code", &l.code)
                    .opt("ttsProvider", l.tts_provider.as_deref())
                    .opt("voice", l.voice.as_deref())
                    .opt("transcriptionProvider", l.transcription_provider.as_deref())
                    .opt("speechModel", l.speech_model.as_deref())
                    .text("");
            }
            for (name, value) in &r.parameters {
                w.tag("Parameter")
                    .attr("name", name)
                    .attr("value", value)
                    .text("");
            }
        });
    }

    fn record(&mut self, r: &Record) {
        let finish = (r.finish_on_key != "1234567890*#").then_some(r.finish_on_key.as_str());
        let events = (r.recording_status_callback_events != ["completed"])
            .then(|| r.recording_status_callback_events.join(" "));
        self.tag("Record")
            .opt("action", r.action.as_deref())
            .method("method", r.method)
            .num("timeout", r.timeout_secs, 5)
            .opt("finishOnKey", finish)
            .num("maxLength", r.max_length_secs, 3600)
            .flag("playBeep", r.play_beep, true)
            .opt("trim", r.trim.as_deref())
            .opt(
                "recordingStatusCallback",
                r.recording_status_callback.as_deref(),
            )
            .method(
                "recordingStatusCallbackMethod",
                r.recording_status_callback_method,
            )
            .opt("recordingStatusCallbackEvent", events.as_deref())
            .flag("transcribe", r.transcribe, false)
            .opt("transcribeCallback", r.transcribe_callback.as_deref())
            .text("");
    }

    fn enqueue(&mut self, e: &Enqueue) {
        let tag = self
            .tag("Enqueue")
            .opt("action", e.action.as_deref())
            .method("method", e.method)
            .opt("waitUrl", e.wait_url.as_deref())
            .method("waitUrlMethod", e.wait_url_method)
            .opt("workflowSid", e.workflow_sid.as_deref());
        let Some(task) = &e.task else {
            return tag.text(&e.queue);
        };
        tag.children(|w| {
            escape_into(&mut w.out, &e.queue, false);
            w.tag("Task")
                .opt("priority", task.priority.map(|n| n.to_string()).as_deref())
                .opt(
                    "timeout",
                    task.timeout_secs.map(|n| n.to_string()).as_deref(),
                )
                .text(&task.attributes);
        });
    }

    fn dial(&mut self, d: &Dial) {
        let tag = self
            .tag("Dial")
            .opt("action", d.action.as_deref())
            .method("method", d.method)
            .num("timeout", d.timeout_secs, 30)
            .opt("callerId", d.caller_id.as_deref())
            .num("timeLimit", d.time_limit_secs, 14400)
            .flag("hangupOnStar", d.hangup_on_star, false)
            .flag("answerOnBridge", d.answer_on_bridge, false)
            .opt("record", d.record.as_deref())
            .opt("ringTone", d.ring_tone.as_deref())
            .opt(
                "recordingStatusCallback",
                d.recording_status_callback.as_deref(),
            )
            .method(
                "recordingStatusCallbackMethod",
                d.recording_status_callback_method,
            );
        let tag = if d.recording_status_callback_events == ["completed"] {
            tag
        } else {
            tag.attr(
                "recordingStatusCallbackEvent",
                &d.recording_status_callback_events.join(" "),
            )
        };
        if d.nouns.is_empty() {
            tag.text(&d.target);
        } else {
            tag.children(|w| {
                for noun in &d.nouns {
                    let mut tag = w.tag(&noun.name);
                    for (key, value) in &noun.attributes {
                        tag = tag.attr(key, value);
                    }
                    tag.text(&noun.value);
                }
            });
        }
    }
}

/// XML-escape `s` into `out`. In attributes, tabs and newlines become character references,
/// because a parser would otherwise normalise them to spaces; `\r` is always a reference so it
/// survives line-ending normalisation.
fn escape_into(out: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}
