//! Starting and stopping what a run needs beside its calls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dialtone_call::capture::Capture;
use dialtone_events::MilestoneInbox;
use tokio::task::JoinHandle;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct TargetOptions<'a> {
    /// The app's voice webhook; `None` starts the reference app, which reports its milestones
    /// to the endpoint started here.
    pub webhook: Option<&'a str>,
    /// The token calls are signed with: the embedded app checks signatures with it.
    pub auth_token: &'a str,
    /// Where the milestone endpoint listens (`127.0.0.1:0`: a free loopback port).
    pub events_listen: SocketAddr,
    /// A capture file every call of the run writes.
    pub capture: Option<&'a Path>,
    /// What the reference app speaks when it is started (no `webhook`).
    pub embedded_app: EmbeddedApp,
}

/// What the embedded reference app answers calls with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EmbeddedApp {
    /// `<Connect><Stream>`: Media Streams, VAD, audio replies, barge-in.
    #[default]
    Stream,
    /// `<Connect><ConversationRelay>`: text prompts answered with streamed tokens
    /// ([`dialtone_bot::RelayMode`]'s default timing).
    Relay,
}

/// Why the target could not be set up (bad input: the CLI exits 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The milestone endpoint could not bind.
    #[error("cannot listen for milestones on {addr}: {source}")]
    Events {
        /// `--events-listen`.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The reference app could not start.
    #[error("cannot start the reference app on a loopback port: {0}")]
    Bot(std::io::Error),
    /// The capture file could not be created.
    #[error("cannot create --capture {}: {source}", path.display())]
    Capture {
        /// `--capture`.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How the capture file ended.
#[derive(Debug)]
pub enum CaptureOutcome {
    /// Every record written and flushed.
    Written {
        /// The file.
        path: PathBuf,
        /// Records in it.
        records: u64,
    },
    /// Some records are missing; the file is kept for what it has.
    Incomplete {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl std::fmt::Display for CaptureOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureOutcome::Written { path, records } => {
                write!(f, "captured {records} records to {}", path.display())
            }
            CaptureOutcome::Incomplete { path, error } => {
                write!(f, "capture {} is incomplete: {error}", path.display())
            }
        }
    }
}

/// The running target of a run.
#[derive(Debug)]
pub struct Target {
    url: String,
    events_url: String,
    milestones: MilestoneInbox,
    capture: Option<(Arc<Capture>, PathBuf)>,
    bot: Option<JoinHandle<()>>,
    events_task: JoinHandle<std::io::Result<()>>,
}

impl Target {
    /// Binds the milestone endpoint, starts the reference app when no webhook is given (it
    /// reports to that endpoint) and creates the capture file.
    pub async fn start(opts: TargetOptions<'_>) -> Result<Target, SetupError> {
        let events_error = |source| SetupError::Events {
            addr: opts.events_listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(opts.events_listen)
            .await
            .map_err(events_error)?;
        let events_url = format!(
            "http://{}/events",
            listener.local_addr().map_err(events_error)?
        );
        let milestones = MilestoneInbox::new();
        let events_task = tokio::spawn(dialtone_events::serve(
            listener,
            milestones.clone(),
            std::future::pending(),
        ));
        let (url, bot) = match opts.webhook {
            Some(u) => (u.to_string(), None),
            None => {
                let config = dialtone_bot::BotConfig {
                    auth_token: opts.auth_token.to_string(),
                    events_url: Some(events_url.clone()),
                    relay: (opts.embedded_app == EmbeddedApp::Relay)
                        .then(dialtone_bot::RelayMode::default),
                    ..dialtone_bot::BotConfig::default()
                };
                match dialtone_bot::spawn_loopback(config).await {
                    Ok((url, handle)) => (url, Some(handle)),
                    Err(e) => {
                        events_task.abort();
                        return Err(SetupError::Bot(e));
                    }
                }
            }
        };
        let target = Target {
            url,
            events_url,
            milestones,
            capture: None,
            bot,
            events_task,
        };
        let capture = match opts.capture {
            Some(path) => match Capture::create(path) {
                Ok(c) => Some((Arc::new(c), path.to_path_buf())),
                Err(source) => {
                    target.stop();
                    return Err(SetupError::Capture {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            },
            None => None,
        };
        Ok(Target { capture, ..target })
    }

    /// The voice webhook the calls request: the user's, or the embedded app's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the target is the embedded reference app.
    pub fn embedded(&self) -> bool {
        self.bot.is_some()
    }

    /// Where the app POSTs its milestone records.
    pub fn events_url(&self) -> &str {
        &self.events_url
    }

    /// The records received so far, by call SID.
    pub fn milestones(&self) -> &MilestoneInbox {
        &self.milestones
    }

    /// The capture every call writes (for `CallConfig::capture`).
    pub fn capture(&self) -> Option<Arc<Capture>> {
        self.capture.as_ref().map(|(c, _)| c.clone())
    }

    /// Stops the app and the endpoint and flushes the capture; says how the capture ended.
    pub fn finish(self) -> Option<CaptureOutcome> {
        let outcome = self.capture.as_ref().map(|(c, path)| match c.finish() {
            Ok(()) => CaptureOutcome::Written {
                path: path.clone(),
                records: c.records(),
            },
            Err(error) => CaptureOutcome::Incomplete {
                path: path.clone(),
                error,
            },
        });
        self.stop();
        outcome
    }

    fn stop(self) {
        if let Some(b) = self.bot {
            b.abort();
        }
        self.events_task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[tokio::test]
    async fn without_a_webhook_the_reference_app_answers_and_reports_here() {
        let target = Target::start(TargetOptions {
            webhook: None,
            auth_token: "t",
            events_listen: loopback(),
            capture: None,
            embedded_app: EmbeddedApp::Stream,
        })
        .await
        .unwrap();
        assert!(target.embedded());
        let health = target.url().replace("/voice", "/health");
        let body = reqwest::get(&health).await.unwrap().text().await.unwrap();
        assert_eq!(body, "ok");
        let posted = reqwest::Client::new()
            .post(target.events_url())
            .body(r#"{"call_sid":"CA1","event":"vad.speech_end","ts":1732460000123}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 202, "{}", posted.text().await.unwrap());
        assert_eq!(target.milestones().take("CA1").len(), 1);
        assert!(target.finish().is_none());
    }

    #[tokio::test]
    async fn a_given_webhook_is_used_as_is_and_the_capture_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let target = Target::start(TargetOptions {
            webhook: Some("https://bot.example.ts.net/voice"),
            auth_token: "t",
            events_listen: loopback(),
            capture: Some(&path),
            embedded_app: EmbeddedApp::Stream,
        })
        .await
        .unwrap();
        assert!(!target.embedded());
        assert_eq!(target.url(), "https://bot.example.ts.net/voice");
        assert!(target.capture().is_some());
        match target.finish() {
            Some(CaptureOutcome::Written { records: 0, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(path.exists());
    }

    #[tokio::test]
    async fn an_uncreatable_capture_and_a_taken_port_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = Target::start(TargetOptions {
            webhook: None,
            auth_token: "t",
            events_listen: loopback(),
            capture: Some(&dir.path().join("no/such/dir/c.jsonl")),
            embedded_app: EmbeddedApp::Stream,
        })
        .await
        .unwrap_err();
        assert!(matches!(e, SetupError::Capture { .. }), "{e}");
        let taken = std::net::TcpListener::bind(loopback()).unwrap();
        let e = Target::start(TargetOptions {
            webhook: None,
            auth_token: "t",
            events_listen: taken.local_addr().unwrap(),
            capture: None,
            embedded_app: EmbeddedApp::Stream,
        })
        .await
        .unwrap_err();
        assert!(
            e.to_string().starts_with("cannot listen for milestones on"),
            "{e}"
        );
    }
}
