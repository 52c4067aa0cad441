//! Step 1: the captured voice webhook request sent again — same method and form body —
//! to the app under test, re-signed for its URL, and the stream URL found in its answer.

use std::time::Duration;

use dialtone_net::{Net, Request, Tunnels};
use dialtone_twiml::{ConnectTarget, StartTarget, Verb};

use crate::ReplayError;
use crate::capture::CapturedRequest;

/// Twilio's default webhook timeout.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Twilio refuses larger TwiML documents (11750); a runaway app costs no more than this.
const BODY_LIMIT: usize = 64 * 1024;

/// The app's answer to the replayed webhook.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The URL requested (query included for GET).
    pub(crate) url: String,
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

/// Checks that `url` is an `http://` or `https://` URL.
pub(crate) fn check_http_url(url: &str) -> Result<url::Url, ReplayError> {
    let bad = |why: &str| ReplayError::BadUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&format!("invalid URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(bad(&format!(
            "unsupported URL scheme {other:?} (use http:// or https://)"
        ))),
    }
}

/// Sends the captured request to `webhook` through `tunnels`, signed with `auth_token`.
pub(crate) async fn send(
    net: &Net,
    tunnels: &Tunnels,
    webhook: &url::Url,
    req: &CapturedRequest,
    auth_token: &str,
) -> Result<Answer, ReplayError> {
    let get = req.method.eq_ignore_ascii_case("GET");
    let base = webhook.to_string();
    // The captured parameters, byte for byte: the POST body as it was, or for GET the
    // captured query string moved onto the new URL. The signature is recomputed because the
    // URL (and maybe the token) differ from the capture's.
    let (wire_url, body) = if get {
        let query = req.url.split_once('?').map_or("", |(_, q)| q);
        let query = query.split('#').next().unwrap_or("");
        let wire = if query.is_empty() {
            base
        } else if base.contains('?') {
            format!("{base}&{query}")
        } else {
            format!("{base}?{query}")
        };
        (wire, None)
    } else {
        (base, Some(req.body.clone()))
    };
    let unreachable = |cause: String| ReplayError::WebhookUnreachable {
        url: wire_url.clone(),
        cause,
    };
    let method = if get {
        http::Method::GET
    } else {
        http::Method::POST
    };
    let request = Request::twilio_signed(method, &wire_url, body, auth_token, TIMEOUT)
        .map_err(|e| unreachable(e.to_string()))?;
    let response = net
        .send(tunnels, request)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let route = response.route;
    let mut response = response.inner;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unreachable(net.classify(tunnels, &route, TIMEOUT, &e).to_string()))?
    {
        if bytes.len() + chunk.len() > BODY_LIMIT {
            return Err(unreachable(format!(
                "the answer is larger than {} KB",
                BODY_LIMIT / 1024
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        url: wire_url,
        status,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// The first `<Connect><Stream>` or `<Start><Stream>` URL of a TwiML document, resolved
/// against the webhook URL (connected to and signed). `None` when the body is not TwiML or holds no stream.
pub(crate) fn stream_url(twiml: &str, webhook: &url::Url) -> Option<String> {
    let doc = dialtone_twiml::parse(twiml).ok()?;
    let url = doc.verbs.iter().find_map(|node| match &node.verb {
        Verb::Connect(c) => match &c.target {
            ConnectTarget::Stream(s) => Some(s.url.clone()),
            // Replay speaks Media Streams; a relay session is not one.
            ConnectTarget::ConversationRelay(_) | ConnectTarget::Other { .. } => None,
        },
        Verb::Start(s) => match &s.target {
            StartTarget::Stream(s) => Some(s.url.clone()),
            StartTarget::Transcription(_) | StartTarget::Other { .. } => None,
        },
        _ => None,
    })?;
    if url.is_empty() {
        return None;
    }
    // A relative stream URL resolves against the webhook, on the WebSocket scheme.
    let joined = webhook.join(&url).ok()?;
    let s = joined.to_string();
    Some(match joined.scheme() {
        "http" => s.replacen("http", "ws", 1),
        "https" => s.replacen("https", "wss", 1),
        _ => s,
    })
}

/// The captured TwiML with the captured webhook's authority swapped for the new one, so an
/// app that builds its stream URL from the Host header still compares equal.
pub(crate) fn normalize_authority(
    captured_body: &str,
    captured_url: &str,
    new: &url::Url,
) -> String {
    let Ok(old) = url::Url::parse(captured_url) else {
        return captured_body.to_string();
    };
    let authority = |u: &url::Url| {
        let host = u.host_str().unwrap_or("");
        match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    };
    let (old_a, new_a) = (authority(&old), authority(new));
    if old_a.is_empty() || old_a == new_a {
        return captured_body.to_string();
    }
    captured_body
        .replace(&format!("//{old_a}/"), &format!("//{new_a}/"))
        .replace(&format!("//{old_a}\""), &format!("//{new_a}\""))
}

/// The first `<Connect><ConversationRelay>` URL of a TwiML document, exactly as written (the
/// schema makes it absolute; it is signed and named as the TwiML wrote it, as the call engine
/// does). `None` when the body is not TwiML or holds no relay session.
pub(crate) fn relay_url(twiml: &str) -> Option<String> {
    let doc = dialtone_twiml::parse(twiml).ok()?;
    let url = doc.verbs.iter().find_map(|node| match &node.verb {
        Verb::Connect(c) => match &c.target {
            ConnectTarget::ConversationRelay(r) => Some(r.url.trim().to_string()),
            _ => None,
        },
        _ => None,
    })?;
    (!url.is_empty()).then_some(url)
}
