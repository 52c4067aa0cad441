//! TwiML requests as Twilio makes them: form parameters (or query for GET), a signature over
//! the exact URL put on the wire, Twilio's headers and timeout, and each failure classified
//! with Twilio's error code.

use std::time::Duration;

use dialtone_net::{HttpError, Net, Tunnels};
use dialtone_twiml::Document;
use tokio::time::Instant;

use crate::capture::Captured;
use crate::config::HttpMethod;
use crate::fetch::{BodyError, TWIML_MAX_BYTES, read_limited};
use crate::report::{EventKind, Failure};
use crate::timeline::Timeline;

/// A TwiML document and where it came from (relative URLs in it resolve against `url`).
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) doc: Document,
    pub(crate) url: String,
}

/// One TwiML request.
pub(crate) struct TwimlRequest<'a> {
    pub(crate) purpose: &'static str,
    pub(crate) url: &'a str,
    pub(crate) method: HttpMethod,
    pub(crate) params: Vec<(String, String)>,
}

/// Requests TwiML and parses it; every failure comes back as a classified [`Failure`].
pub(crate) async fn fetch_twiml(
    net: &Net,
    tunnels: &Tunnels,
    auth_token: &str,
    req: TwimlRequest<'_>,
    timeout: Duration,
    timeline: &Timeline,
) -> Result<Fetched, Failure> {
    // Sign exactly what goes on the wire: the parsed form of the URL (e.g. with the `/`
    // path an authority-only URL gets), which is also what the app sees. Behind a tunnel
    // that is the public URL: the app validates against the URL it is known by.
    let unreachable = |cause: String| Failure::WebhookUnreachable {
        url: req.url.to_string(),
        cause,
    };
    let parsed = match url::Url::parse(req.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(u) => {
            return Err(unreachable(format!(
                "unsupported URL scheme {:?} (http:// or https://)",
                u.scheme()
            )));
        }
        Err(e) => return Err(unreachable(format!("invalid URL: {e}"))),
    };
    let base = parsed.to_string();
    let request =
        dialtone_net::Request::twilio(req.method.into(), &parsed, auth_token, &req.params, timeout)
            .map_err(|e| unreachable(e.to_string()))?;
    let wire_url = request.url.to_string();
    let via = tunnels.route(&request.url).via();
    timeline.emit(EventKind::WebhookSent {
        purpose: req.purpose,
        url: wire_url.clone(),
        method: req.method.as_str(),
        via: via.clone(),
    });
    timeline.capture(&Captured::HttpRequest {
        purpose: req.purpose,
        method: req.method.as_str(),
        url: &wire_url,
        signature: request.signature().unwrap_or(""),
        body: request.body.as_deref().unwrap_or(""),
    });
    let started = Instant::now();
    let response = net
        .send(tunnels, request)
        .await
        .map_err(|e| classify(&wire_url, via.as_deref(), e))?;
    let route = response.route;
    let response = response.inner;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = read_limited(response, TWIML_MAX_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Failure::TwimlTooLarge {
                url: wire_url.clone(),
                limit: TWIML_MAX_BYTES,
            },
            BodyError::Http(e) => classify(
                &wire_url,
                via.as_deref(),
                net.classify(tunnels, &route, timeout, &e),
            ),
        })?;
    timeline.emit(EventKind::WebhookAnswered {
        status,
        elapsed: started.elapsed(),
        content_type: content_type.clone(),
        bytes: bytes.len(),
    });
    if timeline.capturing() {
        timeline.capture(&Captured::HttpResponse {
            url: &wire_url,
            status,
            content_type: &content_type,
            body: &String::from_utf8_lossy(&bytes),
        });
    }
    if !(200..300).contains(&status) {
        return Err(Failure::WebhookStatus {
            url: wire_url,
            status,
            hint: status_hint(status).to_string(),
            body: snippet(&bytes),
        });
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // Twilio parses XML (and, historically, HTML) as TwiML; JSON, plain text or a missing
    // type is the classic framework-default mistake it rejects with 12300.
    if !matches!(
        mime.as_str(),
        "text/xml" | "application/xml" | "text/html" | "application/xhtml+xml"
    ) {
        return Err(Failure::InvalidContentType {
            url: wire_url,
            content_type: if content_type.is_empty() {
                "(none)".into()
            } else {
                content_type
            },
        });
    }
    let text = String::from_utf8_lossy(&bytes);
    let doc = dialtone_twiml::parse(&text).map_err(|e| Failure::Twiml {
        url: wire_url.clone(),
        code: e.code(),
        error: e.to_string(),
    })?;
    timeline.emit(EventKind::Twiml {
        verbs: doc
            .verbs
            .iter()
            .map(|n| n.verb.name().to_string())
            .collect(),
    });
    // Relative URLs resolve against the document's (public) URL: the one requested
    // (without the parameters a GET appended), or where a redirect led.
    let url = if route.public.as_str() == wire_url {
        base
    } else {
        route.public.to_string()
    };
    Ok(Fetched { doc, url })
}

/// `via` is the local address of a tunnelled URL, named in the cause of a failed connect.
fn classify(url: &str, via: Option<&str>, e: HttpError) -> Failure {
    let url = url.to_string();
    match e {
        HttpError::Timeout(t) => Failure::WebhookTimeout {
            url,
            ms: t.as_millis() as u64,
        },
        HttpError::Redirects => Failure::WebhookRedirects { url },
        HttpError::BadUrl(cause) => Failure::WebhookUnreachable { url, cause },
        HttpError::Unreachable(cause) => Failure::WebhookUnreachable {
            url,
            cause: match via {
                Some(v) => format!("{cause} (connecting via the tunnel to {v})"),
                None => cause,
            },
        },
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            " (the app refused the request: signature rejected? check that it validates \
             X-Twilio-Signature with the same auth token and the same URL)"
        }
        404 => " (no route at this URL)",
        405 => " (method not allowed: Twilio uses POST unless configured otherwise)",
        500..=599 => " (the app failed while handling the webhook)",
        _ => "",
    }
}

fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    s.replace(['\n', '\r'], " ")
}

/// Resolves a URL from TwiML (`action`, `<Redirect>`, `<Play>`) against the document's URL.
pub(crate) fn resolve(base: &str, reference: &str) -> Result<String, String> {
    let base = url::Url::parse(base).map_err(|e| format!("bad base URL {base}: {e}"))?;
    base.join(reference.trim())
        .map(|u| u.to_string())
        .map_err(|e| format!("bad URL {reference:?}: {e}"))
}

/// Resolves a `<Stream url>` against the document's URL: relative URLs take the document's
/// host with `ws`/`wss` in place of `http`/`https`. An absolute `ws(s)://` URL is kept as
/// the TwiML wrote it (checked, not normalized): Twilio signs the upgrade over that text, and
/// an app checks the signature against the URL it wrote.
pub(crate) fn resolve_stream(base: &str, reference: &str) -> Result<String, String> {
    let written = reference.trim();
    let scheme = written
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("ws" | "wss")) {
        url::Url::parse(written).map_err(|e| format!("bad URL {reference:?}: {e}"))?;
        return Ok(written.to_string());
    }
    let joined = resolve(base, reference)?;
    Ok(if let Some(rest) = joined.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = joined.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        joined
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls_resolve_to_websocket_schemes() {
        assert_eq!(
            resolve_stream("http://127.0.0.1:8080/voice", "/media").unwrap(),
            "ws://127.0.0.1:8080/media"
        );
        assert_eq!(
            resolve_stream("https://app.example/voice", "wss://x.example/s").unwrap(),
            "wss://x.example/s"
        );
        // Absolute: as written (no trailing slash added, no case folded), but checked.
        assert_eq!(
            resolve_stream("http://h/voice", " wss://App.Example:443?x=a%20b ").unwrap(),
            "wss://App.Example:443?x=a%20b"
        );
        assert!(resolve_stream("http://h/voice", "wss://bad host/").is_err());
        assert_eq!(
            resolve("http://h/a/voice", "next").unwrap(),
            "http://h/a/next"
        );
    }
}
