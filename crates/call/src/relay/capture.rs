//! `--capture` of a relay session: the upgrade and its outcome, every message both ways and
//! the close, as `relay_*` records (`docs/capture.md`). Nothing is built when the call is not
//! captured.

use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::capture::Captured;
use crate::timeline::Timeline;

/// The session's capture handle: the call's timeline and the session's `VX…`.
pub(crate) struct RelayCapture<'a> {
    timeline: &'a Timeline,
    session_id: String,
    on: bool,
}

impl<'a> RelayCapture<'a> {
    pub(crate) fn new(timeline: &'a Timeline, session_id: &str) -> Self {
        Self {
            timeline,
            session_id: session_id.to_string(),
            on: timeline.capturing(),
        }
    }

    /// The upgrade: `status` 101 when it opened, the refusing status, or `None` with the
    /// error when nothing answered. `headers` are the ones sent (the signature).
    pub(crate) fn upgrade(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        status: Option<u16>,
        error: Option<&str>,
    ) {
        if !self.on {
            return;
        }
        let signature = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(dialtone_protocol::signing::HEADER))
            .map_or("", |(_, v)| v.as_str());
        self.timeline.capture(&Captured::RelayOpen {
            session_id: &self.session_id,
            url,
            signature,
            status,
            error,
        });
    }

    /// A message dialtone sent.
    pub(crate) fn sent(&self, text: &str) {
        if self.on {
            self.timeline.capture(&Captured::RelayOut {
                session_id: &self.session_id,
                text,
            });
        }
    }

    /// A text message the app sent (at most the socket's message limit, 1 MiB).
    pub(crate) fn received(&self, text: &str) {
        if self.on {
            self.timeline.capture(&Captured::RelayIn {
                session_id: &self.session_id,
                text,
            });
        }
    }

    /// The socket closed: `by` `dialtone` (our close frame) or `dropped`.
    pub(crate) fn closed(&self, by: &str, code: Option<u16>, reason: &str) {
        if self.on {
            self.timeline.capture(&Captured::RelayClose {
                session_id: &self.session_id,
                by,
                code,
                reason,
            });
        }
    }

    /// The app's close frame (a frame without a status has no code).
    pub(crate) fn closed_by_app(&self, frame: Option<&CloseFrame>) {
        let reason = frame.map_or("", |f| f.reason.as_str());
        self.closed("app", frame.map(|f| u16::from(f.code)), reason);
    }
}
