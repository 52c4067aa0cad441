//! The call's TwiML documents: handed over inline (REST `Twiml`), requested (voice URL,
//! fallback, with injected webhook timeouts), or followed (`action`, `<Redirect>`), and the
//! bound on documents that keep coming without the call advancing (a TwiML loop).

use dialtone_protocol::webhook::{self as params, CallStatus};

use super::{Call, FAULT_WEBHOOK_TIMEOUT, LOOP_DOCUMENTS, Next};
use crate::config::HttpMethod;
use crate::report::{EventKind, Failure};
use crate::webhook::{self, Fetched, TwimlRequest};

impl Call<'_> {
    /// Parses TwiML handed over directly (REST `Twiml`), not fetched.
    pub(super) fn inline(&mut self, twiml: &str) -> Result<Fetched, Failure> {
        let doc = dialtone_twiml::parse(twiml).map_err(|e| Failure::Twiml {
            url: "(inline TwiML)".into(),
            code: e.code(),
            error: e.to_string(),
        })?;
        self.timeline.emit(EventKind::Twiml {
            verbs: doc
                .verbs
                .iter()
                .map(|n| n.verb.name().to_string())
                .collect(),
        });
        self.documents += 1;
        self.idle_documents += 1;
        Ok(Fetched {
            doc,
            url: self.doc_url.clone(),
        })
    }

    pub(super) async fn request(
        &mut self,
        purpose: &'static str,
        url: &str,
        method: HttpMethod,
        status: CallStatus,
        extra: Vec<(String, String)>,
    ) -> Result<Fetched, Failure> {
        let mut p = params::voice_params(&self.info, status);
        p.extend(extra);
        let req = TwimlRequest {
            purpose,
            url,
            method,
            params: p,
        };
        let abandon = purpose == "voice"
            && self
                .faults
                .as_ref()
                .is_some_and(|f| f.webhook_times_out(self.seed));
        let timeout = if abandon {
            self.call_faults.webhook_abandoned = true;
            self.timeline.emit(EventKind::Fault {
                what: format!(
                    "voice webhook abandoned after {} ms, as Twilio abandons a slow one",
                    FAULT_WEBHOOK_TIMEOUT.as_millis()
                ),
            });
            FAULT_WEBHOOK_TIMEOUT
        } else {
            self.cfg.webhook_timeout
        };
        // Boxed: an HTTP exchange is kilobytes of future state, and every future that may
        // request a document (each verb's, the call's own) would otherwise carry that much
        // for the whole call, thousands of calls at once.
        let mut r = Box::pin(webhook::fetch_twiml(
            &self.engine.net,
            &self.cfg.tunnels,
            &self.cfg.auth_token,
            req,
            timeout,
            &self.timeline,
        ))
        .await;
        if abandon && r.is_ok() {
            // An app fast enough to answer within the bound: Twilio would have given up all
            // the same, and the fault must do what it says every time.
            r = Err(Failure::WebhookTimeout {
                url: url.to_string(),
                ms: timeout.as_millis() as u64,
            });
        }
        if r.is_ok() {
            self.documents += 1;
            self.idle_documents += 1;
        }
        r
    }

    /// Requests the TwiML that replaces the current document; a failure ends the call.
    pub(super) async fn follow(
        &mut self,
        purpose: &'static str,
        doc_url: &str,
        target: Option<&str>,
        method: HttpMethod,
        extra: Vec<(String, String)>,
    ) -> Next {
        self.follow_with(
            purpose,
            doc_url,
            target,
            method,
            CallStatus::InProgress,
            extra,
        )
        .await
    }

    /// [`Self::follow`] with the call reported as `status` (`completed` for an action
    /// requested after the caller hung up).
    pub(super) async fn follow_with(
        &mut self,
        purpose: &'static str,
        doc_url: &str,
        target: Option<&str>,
        method: HttpMethod,
        status: CallStatus,
        extra: Vec<(String, String)>,
    ) -> Next {
        if self.idle_documents >= LOOP_DOCUMENTS {
            // A loop: no further request, however fast the app answers.
            self.failures.push(Failure::TwimlLoop {
                url: doc_url.to_string(),
                documents: self.idle_documents,
            });
            return Next::End {
                status: CallStatus::Completed,
                reason: format!(
                    "TwiML loop: {LOOP_DOCUMENTS} documents without the call advancing"
                ),
            };
        }
        let url = match webhook::resolve(doc_url, target.unwrap_or(doc_url)) {
            Ok(u) => u,
            Err(e) => {
                self.failures.push(Failure::WebhookUnreachable {
                    url: target.unwrap_or_default().to_string(),
                    cause: e,
                });
                return Next::End {
                    status: CallStatus::Completed,
                    reason: format!("bad {purpose} URL"),
                };
            }
        };
        match self.request(purpose, &url, method, status, extra).await {
            Ok(f) => Next::Replace(f),
            Err(failure) => {
                self.failures.push(failure);
                Next::End {
                    status: CallStatus::Completed,
                    reason: format!("no TwiML from the {purpose} URL"),
                }
            }
        }
    }
}
