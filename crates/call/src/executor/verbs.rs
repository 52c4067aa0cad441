//! The verbs of a TwiML document and what each does to the call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::{FrameSet, Truncated};
use dialtone_protocol::webhook::{CallStatus, Direction};
use dialtone_twiml::{ConnectTarget, Node, StartTarget, Verb};
use tokio::time::Instant;

use super::{Call, Next, PLAY_CACHE_MAX, SAY_MS_PER_WORD};
use crate::report::{EventKind, Failure};
use crate::{fetch, webhook};

/// `<Start><Stream>` forks a call keeps at once; more are skipped with a warning. Twilio
/// documents no figure we found; four covers every use we know (a transcriber, a recorder,
/// an analytics tap, one spare).
pub(crate) const MAX_FORKS: usize = 4;
/// Most decoded `<Play>` audio the engine keeps, in bytes of frames (μ-law and base64): past
/// it the cache starts over, so many long files cannot pile up.
const PLAY_CACHE_BYTES: usize = 256 << 20;

/// Fetched `<Play>` audio shared by the engine's calls, bounded in entries and in bytes.
#[derive(Default)]
pub(super) struct PlayCache {
    entries: HashMap<String, (Arc<FrameSet>, Option<Truncated>)>,
    bytes: usize,
}

impl PlayCache {
    fn get(&self, key: &str) -> Option<(Arc<FrameSet>, Option<Truncated>)> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: String, frames: Arc<FrameSet>, cut: Option<Truncated>) {
        // μ-law plus its base64: 160 + 216 bytes a frame.
        let size = frames.len() * 376;
        if size > PLAY_CACHE_BYTES {
            return;
        }
        if self.entries.len() >= PLAY_CACHE_MAX || self.bytes + size > PLAY_CACHE_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        if let Some((old, _)) = self.entries.insert(key, (frames, cut)) {
            self.bytes -= old.len() * 376;
        }
    }
}

impl Call<'_> {
    pub(super) fn verb_event(&self, node: &Node, detail: String) {
        self.timeline.emit(EventKind::Verb {
            verb: node.verb.name().to_string(),
            line: node.line,
            detail,
        });
    }

    pub(super) fn warn(&mut self, code: u16, message: String) {
        self.timeline.emit(EventKind::Warning {
            code,
            message: message.clone(),
        });
        self.warnings.push((code, message));
    }

    pub(super) async fn execute(&mut self, node: &Node, doc_url: &str, first_verb: bool) -> Next {
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
                    return self.interrupted().await;
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
                    match self.start_stream(s, doc_url, true) {
                        Ok(stream) => self.await_connect(stream).await,
                        Err(f) => self.failures.push(f),
                    }
                    if self.interrupt_pending() {
                        return self.interrupted().await;
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
                ConnectTarget::ConversationRelay(r) => {
                    self.verb_event(node, format!("<ConversationRelay url={:?}>", r.url));
                    self.connect_relay(c, r, doc_url).await
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
                    if self.forks.len() >= MAX_FORKS {
                        // Each fork is a live WebSocket: an app that starts them in a loop
                        // and never stops one must not open thousands.
                        self.warn(
                            0,
                            format!(
                                "<Start><Stream url={:?}> skipped: {MAX_FORKS} forks are already running on this call (stop one with <Stop><Stream>)",
                                stream.url
                            ),
                        );
                        return Next::Continue;
                    }
                    match self.start_stream(stream, doc_url, false) {
                        Ok(fork) => {
                            let name = stream.name.clone().unwrap_or_default();
                            self.forks.push((name, fork));
                        }
                        Err(f) => self.failures.push(f),
                    }
                    Next::Continue
                }
                StartTarget::Transcription(t) => {
                    self.verb_event(
                        node,
                        format!(
                            "<Transcription{} track={}>",
                            name_attr(t.name.as_deref()),
                            t.track.as_str()
                        ),
                    );
                    self.start_transcription(t, doc_url);
                    Next::Continue
                }
                StartTarget::Other { name } => {
                    self.verb_event(node, format!("<{name}>"));
                    self.warn(0, format!("<Start><{name}> is not simulated; skipped"));
                    Next::Continue
                }
            },
            Verb::Stop(s) => {
                self.stop(node, s).await;
                Next::Continue
            }
            Verb::Record(r) => self.record(node, r, doc_url).await,
            Verb::Dial(d) => self.dial(node, d, doc_url).await,
            Verb::Enqueue(e) => self.enqueue(node, e, doc_url).await,
            Verb::Leave => {
                // Only a waitUrl document (executor/enqueue.rs) has a queue to leave.
                self.verb_event(node, String::new());
                self.warn(0, "<Leave> outside a queue's waitUrl does nothing".into());
                Next::Continue
            }
            Verb::Unsupported { .. } => {
                self.verb_event(node, String::new());
                let name = node.verb.name();
                self.warn(0, format!("<{name}> is not simulated; skipped"));
                Next::Continue
            }
        }
    }

    pub(super) async fn say(&mut self, text: &str, loops: u32) -> Next {
        let words = text.split_whitespace().count().max(1) as u64;
        let once = Duration::from_millis((words * SAY_MS_PER_WORD).max(500));
        let tone = self.engine.say_tone.clone();
        let from = Instant::now();
        self.outbound.set(Some(tone.clone()));
        self.transcribe_say(text, once, loops);
        let ended = if loops == 0 {
            // loop="0" repeats until the caller hangs up.
            self.wait(self.cfg.max_duration).await
        } else {
            self.wait(once * loops).await
        };
        self.outbound.set(None);
        self.note_played(tone, from);
        // A caller talking over a speech <Gather>'s prompt stopped it early.
        let barged = self.barge_in_at.is_some_and(|at| at <= Instant::now()) || self.key_barged();
        if ended || barged {
            // Only the words said so far were heard.
            self.say_cut(Instant::now());
        }
        if ended {
            return self.interrupted().await;
        }
        Next::Continue
    }

    /// `<Stop>`: the named `<Stream>` fork or `<Transcription>`.
    async fn stop(&mut self, node: &Node, s: &dialtone_twiml::Stop) {
        match s.other.as_deref() {
            None => {
                self.verb_event(
                    node,
                    format!("<Stream{}>", name_attr(s.stream_name.as_deref())),
                );
                match &s.stream_name {
                    Some(name) => self.stop_forks(Some(name)).await,
                    None => self.warn(0, "<Stop> without a named <Stream>; nothing stopped".into()),
                }
            }
            Some("Transcription") => {
                self.verb_event(
                    node,
                    format!("<Transcription{}>", name_attr(s.name.as_deref())),
                );
                match &s.name {
                    Some(name) => self.stop_transcriptions(Some(name), "<Stop>").await,
                    None => self.warn(
                        0,
                        "<Stop> without a named <Transcription>; nothing stopped".into(),
                    ),
                }
            }
            Some(other) => {
                self.verb_event(node, format!("<{other}>"));
                self.warn(0, format!("<Stop><{other}> is not simulated; skipped"));
            }
        }
    }

    pub(super) async fn play(&mut self, play: &dialtone_twiml::Play, doc_url: &str) -> Next {
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
                return self.interrupted().await;
            }
            return Next::Continue;
        };
        let frames = match self.fetch_audio(doc_url, src).await {
            Ok((f, cut)) => {
                if let Some(cut) = cut {
                    // Played as far as the call can last; said, not silent.
                    self.warn(
                        0,
                        format!("<Play> {src}: {cut} (the call lasts at most that long)"),
                    );
                }
                f
            }
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
        let from = Instant::now();
        self.outbound.set(Some(frames.clone()));
        let ended = self.wait(frames.duration() * loops).await;
        self.outbound.set(None);
        self.note_played(frames, from);
        if ended {
            return self.interrupted().await;
        }
        Next::Continue
    }

    /// The `<Play>` file at `src` (relative to `doc_url`), read no further than the call can
    /// last (and [`fetch::PLAY_MAX_DURATION`]) and shared through the engine's cache; with
    /// what the bound cut from it.
    pub(super) async fn fetch_audio(
        &self,
        doc_url: &str,
        src: &str,
    ) -> Result<(Arc<FrameSet>, Option<Truncated>), Failure> {
        let url = webhook::resolve(doc_url, src).map_err(|cause| Failure::PlayFailed {
            url: src.to_string(),
            cause,
        })?;
        let fail = |cause: String| Failure::PlayFailed {
            url: url.clone(),
            cause,
        };
        let parsed = url::Url::parse(&url).map_err(|e| fail(e.to_string()))?;
        // Calls with different tunnel tables share the engine: one public URL may be two
        // files; calls with different bounds read different lengths of it.
        let max = self.cfg.max_duration.min(fetch::PLAY_MAX_DURATION);
        let key = match self.cfg.tunnels.route(&parsed).via() {
            Some(via) => format!("{url} via {via} for {} ms", max.as_millis()),
            None => format!("{url} for {} ms", max.as_millis()),
        };
        if let Some(hit) = self.engine.play_cache.lock().expect("cache").get(&key) {
            return Ok(hit);
        }
        // Boxed for the same reason as a document's request.
        let audio = Box::pin(fetch::fetch_audio(
            &self.engine.net,
            &self.cfg.tunnels,
            parsed,
            self.cfg.webhook_timeout,
            max,
        ))
        .await
        .map_err(fail)?;
        let frames = Arc::new(FrameSet::from_pcm(&audio.pcm));
        self.engine.play_cache.lock().expect("cache").insert(
            key,
            Arc::clone(&frames),
            audio.truncated,
        );
        Ok((frames, audio.truncated))
    }
}

/// What `<Say>` sounds like to the outbound track: a soft 440 Hz tone, so a fork's outbound
/// audio is distinguishable from silence.
pub(crate) fn tone_frames(d: Duration) -> FrameSet {
    FrameSet::from_pcm(&dialtone_audio::tones::sine(
        440.0,
        3000.0,
        d.as_millis() as usize,
    ))
}

/// ` name="…"` as the TwiML has it, or nothing.
fn name_attr(name: Option<&str>) -> String {
    name.map_or_else(String::new, |n| format!(" name={n:?}"))
}

fn truncate(s: &str, n: usize) -> String {
    let t: String = s.chars().take(n).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}
