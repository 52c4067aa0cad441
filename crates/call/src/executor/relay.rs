//! `<Connect><ConversationRelay>`: the session runs, blocking the TwiML as `<Connect>` does;
//! then `action` gets the session's end (`SessionId`, `SessionStatus`, `SessionDuration`,
//! `HandoffData`, `ErrorCode`/`ErrorMessage`), or the next verb runs.

use dialtone_protocol::relay::Setup;
use dialtone_protocol::sid;
use dialtone_twiml::{Connect, ConversationRelay};

use super::{Call, Next};
use dialtone_protocol::webhook::CallStatus;

use crate::relay::driver::{self, RelayLink};
use crate::relay::{RelayConfig, SessionStatus};
use crate::report::Failure;

impl Call<'_> {
    pub(super) async fn connect_relay(
        &mut self,
        c: &Connect,
        noun: &ConversationRelay,
        doc_url: &str,
    ) -> Next {
        // Absolute by the schema (ws:// or wss://): signed and named exactly as the TwiML
        // wrote it, as Twilio does, not as a URL parser would normalize it.
        let url = noun.url.trim().to_string();
        if self.cfg.fast {
            // The app answers on its own clock (an LLM, a synthesizer): no virtual time.
            self.warn(
                0,
                "--fast: the ConversationRelay session runs in real time (the app answers on \
                 its own clock)"
                    .into(),
            );
        }
        let index = self.streams_opened;
        self.streams_opened += 1;
        let session_id = sid::seeded_or_random("VX", self.cfg.seed, index);
        let cfg = RelayConfig {
            noun: noun.clone(),
            setup: Setup {
                session_id: session_id.clone(),
                account_sid: self.info.account_sid.clone(),
                parent_call_sid: self.info.parent_call_sid.clone().unwrap_or_default(),
                call_sid: self.info.call_sid.clone(),
                from: self.info.from.clone(),
                to: self.info.to.clone(),
                forwarded_from: String::new(),
                call_type: "PSTN".into(),
                caller_name: String::new(),
                direction: self.info.direction.as_str().to_string(),
                call_status: "IN-PROGRESS".into(),
                custom_parameters: noun.parameters.clone(),
            },
            turns: self.cfg.caller.turns.clone(),
            digits: self.cfg.caller.stream_dtmf.clone(),
            speech: self.cfg.relay_speech,
            // A live caller has no scripted turns: it hangs up when it says so.
            tail: if self.cfg.caller.live.is_some() {
                self.cfg.max_duration
            } else {
                self.cfg.caller.tail
            },
            record: self.cfg.record,
        };
        let link = RelayLink {
            net: &self.engine.net,
            tunnels: &self.cfg.tunnels,
            url: &url,
            auth_token: &self.cfg.auth_token,
            timeline: &self.timeline,
            caller_epoch: self.caller_epoch(),
            fetch_timeout: self.cfg.webhook_timeout,
            play_max: self.cfg.max_duration.min(crate::fetch::PLAY_MAX_DURATION),
            max_duration: self.cfg.max_duration,
        };
        let session_id_kept = session_id.clone();
        let mut params = vec![("SessionId".to_string(), session_id)];
        let status = match driver::run(link, cfg, self.end.clone()).await {
            Err(cause) => {
                self.failures.push(Failure::RelayConnect {
                    url: url.clone(),
                    cause: cause.clone(),
                });
                params.extend([
                    ("SessionStatus".into(), "failed".into()),
                    ("SessionDuration".into(), "0".into()),
                    (
                        "ErrorCode".into(),
                        dialtone_protocol::relay::UNABLE_TO_CONNECT.to_string(),
                    ),
                    ("ErrorMessage".into(), cause),
                ]);
                SessionStatus::Failed
            }
            Ok(run) => {
                let report = run.report;
                let end = report.end.clone();
                if self.relay.len() < super::STREAMS_KEPT {
                    if let Some(heard) = run.heard {
                        self.relay_audio.push(super::RelayAudio {
                            session_id: session_id_kept.clone(),
                            heard,
                        });
                    }
                    self.relay.push(report);
                }
                let status = end.as_ref().map_or(SessionStatus::Completed, |e| e.status);
                params.push(("SessionStatus".into(), status.as_str().into()));
                let lasted = end.as_ref().map_or(0.0, |e| e.at_ms / 1e3);
                params.push(("SessionDuration".into(), (lasted as u64).to_string()));
                if let Some(handoff) = end.as_ref().and_then(|e| e.handoff_data.clone()) {
                    params.push(("HandoffData".into(), handoff));
                }
                if let Some((code, message)) = end.and_then(|e| e.error) {
                    self.failures.push(Failure::RelayEnded {
                        url: url.clone(),
                        cause: message.clone(),
                    });
                    params.push(("ErrorCode".into(), code.to_string()));
                    params.push(("ErrorMessage".into(), message));
                }
                status
            }
        };
        if let Some(action) = &c.action {
            let next = self
                .follow("action", doc_url, Some(action), c.method.into(), params)
                .await;
            if status != SessionStatus::Completed {
                return next;
            }
        }
        match status {
            // The caller hung up (or the call was ended from outside): whatever the action
            // answered, the call is over.
            SessionStatus::Completed => Next::End {
                status: CallStatus::Completed,
                reason: self.end.borrow().clone().unwrap_or_else(|| {
                    "caller hung up (ConversationRelay session completed)".into()
                }),
            },
            SessionStatus::Ended => Next::Continue,
            // Twilio does not reconnect: without an action, the call ends failed.
            SessionStatus::Failed => Next::End {
                status: CallStatus::Failed,
                reason: "ConversationRelay session failed".into(),
            },
        }
    }
}
