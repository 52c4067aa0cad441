//! Watches a leg the engine runs: every engine event becomes a line of the call's timeline,
//! the first TwiML that does not `<Reject>` answers an inbound leg, and streams whose
//! `statusCallback` is known get their stream status callbacks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dialtone_call::{CallEvent, EventKind, EventSink};
use dialtone_twiml::{ConnectTarget, Document, StartTarget, Verb};

use crate::Shared;
use crate::callbacks::{Callbacks, StreamTarget};

type OnAnswer = Box<dyn FnOnce() + Send>;

/// One engine-run leg's observer.
pub(crate) struct Observer {
    shared: Arc<Shared>,
    sid: String,
    cb: Arc<Callbacks>,
    on_answer: Mutex<Option<OnAnswer>>,
    streams: Mutex<Streams>,
}

#[derive(Default)]
struct Streams {
    /// `(url, target)` of every `<Stream statusCallback>` known from inline TwiML.
    targets: Vec<(String, StreamTarget)>,
    /// The target of the stream being connected.
    connecting: Option<StreamTarget>,
    by_sid: HashMap<String, StreamTarget>,
}

impl Observer {
    /// Observes leg `sid`; `on_answer` runs once, at the first TwiML that does not reject
    /// (`None` when the leg was answered before the engine ran).
    pub(crate) fn new(
        shared: Arc<Shared>,
        sid: String,
        cb: Arc<Callbacks>,
        on_answer: Option<OnAnswer>,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared,
            sid,
            cb,
            on_answer: Mutex::new(on_answer),
            streams: Mutex::default(),
        })
    }

    /// Learns the `<Stream statusCallback>`s of a TwiML document the server holds.
    pub(crate) fn learn_streams(&self, doc: &Document) {
        let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        for node in &doc.verbs {
            let stream = match &node.verb {
                Verb::Connect(c) => match &c.target {
                    ConnectTarget::Stream(s) => Some(s),
                    _ => None,
                },
                Verb::Start(st) => match &st.target {
                    StartTarget::Stream(s) => Some(s),
                    _ => None,
                },
                _ => None,
            };
            if let Some(stream) = stream
                && let Some(url) = &stream.status_callback
            {
                s.targets.push((
                    stream.url.clone(),
                    StreamTarget {
                        url: url.clone(),
                        method: stream.status_callback_method.into(),
                        name: stream.name.clone(),
                    },
                ));
            }
        }
    }

    /// The engine's event sink for this leg.
    pub(crate) fn sink(self: &Arc<Self>) -> EventSink {
        let me = self.clone();
        Arc::new(move |e: &CallEvent| me.on_event(e))
    }

    fn on_event(&self, e: &CallEvent) {
        if dialtone_call::report::answers(&e.kind) {
            let answer = self
                .on_answer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(answer) = answer {
                answer();
            }
        }
        self.stream_callbacks(&e.kind);
        // The end is logged once, with its final status, when the leg finishes; the answer
        // once, by the leg as its status changes (`Leg::answer`).
        if !matches!(e.kind, EventKind::Ended { .. } | EventKind::Answered) {
            let (level, text) = describe(&e.kind);
            self.shared.store.log(&self.sid, level, text);
        }
    }

    fn stream_callbacks(&self, kind: &EventKind) {
        let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        match kind {
            EventKind::StreamConnecting {
                url,
                name,
                status_callback,
                status_callback_method,
                ..
            } => {
                if let Some(t) = s.connecting.take() {
                    self.cb.stream(
                        &t,
                        &dialtone_protocol::sid::random("MZ"),
                        "stream-error",
                        Some("connection failed".into()),
                    );
                }
                let strip = |u: &str| {
                    u.split_once("://")
                        .map_or(u.to_string(), |(_, r)| r.to_string())
                };
                // The engine reports the stream's statusCallback for any TwiML (fetched or
                // inline); the targets noted from inline TwiML remain the fallback.
                s.connecting = match status_callback {
                    Some(cb) => Some(StreamTarget {
                        url: cb.clone(),
                        method: if *status_callback_method == "GET" {
                            dialtone_call::HttpMethod::Get
                        } else {
                            dialtone_call::HttpMethod::Post
                        },
                        name: name.clone(),
                    }),
                    None => s
                        .targets
                        .iter()
                        .find(|(u, _)| strip(u) == strip(url) || url.ends_with(u.as_str()))
                        .map(|(_, t)| t.clone()),
                };
            }
            EventKind::StreamConnected { stream_sid, .. } => {
                if let Some(t) = s.connecting.take() {
                    self.cb.stream(&t, stream_sid, "stream-started", None);
                    s.by_sid.insert(stream_sid.clone(), t);
                }
            }
            EventKind::StreamClosed {
                stream_sid,
                by,
                code,
                ..
            } => {
                if let Some(t) = s.by_sid.remove(stream_sid) {
                    if *by == "dropped" || *by == "stalled" {
                        let why = format!("the WebSocket was {by} (31903)");
                        self.cb.stream(&t, stream_sid, "stream-error", Some(why));
                    } else if *by == "dialtone"
                        && let Some(code @ (1002 | 1007 | 1009)) = code
                    {
                        // dialtone failed the connection for the app's protocol breach.
                        let why = format!(
                            "the app broke the WebSocket protocol (close {code}) ({})",
                            dialtone_protocol::media::PROTOCOL_ERROR
                        );
                        self.cb.stream(&t, stream_sid, "stream-error", Some(why));
                    } else {
                        self.cb.stream(&t, stream_sid, "stream-stopped", None);
                    }
                }
            }
            EventKind::Ended { .. } => {
                if let Some(t) = s.connecting.take() {
                    self.cb.stream(
                        &t,
                        &dialtone_protocol::sid::random("MZ"),
                        "stream-error",
                        Some("connection failed".into()),
                    );
                }
            }
            _ => {}
        }
    }
}

/// One timeline line per engine event: (level, words), as `dialtone call` words it.
pub(crate) fn describe(kind: &EventKind) -> (&'static str, String) {
    let text = kind.text();
    (text.level, text.words)
}
