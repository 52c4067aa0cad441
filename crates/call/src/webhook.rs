//! TwiML requests as Twilio makes them: form parameters (or query for GET), a signature over
//! the exact URL put on the wire, Twilio's headers and timeout, and each failure classified
//! with Twilio's error code.

use std::time::Duration;

use dialtone_protocol::{signing, webhook as params};
use dialtone_twiml::Document;
use tokio::time::Instant;

use crate::capture::Captured;
use crate::config::HttpMethod;
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

/// Builds the shared HTTP client: redirects followed as a browser would, no proxy from the
/// environment (only what the user points dialtone at is contacted).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::limited(10))
        .pool_max_idle_per_host(64)
        .build()
        .expect("static HTTP client configuration")
}

/// Requests TwiML and parses it; every failure comes back as a classified [`Failure`].
pub(crate) async fn fetch_twiml(
    http: &reqwest::Client,
    auth_token: &str,
    req: TwimlRequest<'_>,
    timeout: Duration,
    timeline: &Timeline,
) -> Result<Fetched, Failure> {
    // Sign exactly what goes on the wire: the parsed form of the URL (e.g. with the `/`
    // path an authority-only URL gets), which is also what the app sees.
    let base = match url::Url::parse(req.url) {
        Ok(u) if u.scheme() == "http" => u.to_string(),
        Ok(u) if u.scheme() == "https" => {
            return Err(Failure::WebhookUnreachable {
                url: req.url.to_string(),
                cause: "https:// needs TLS, which this dialtone build does not include; \
                        reach local apps over http://"
                    .into(),
            });
        }
        Ok(u) => {
            return Err(Failure::WebhookUnreachable {
                url: req.url.to_string(),
                cause: format!("unsupported URL scheme {:?}", u.scheme()),
            });
        }
        Err(e) => {
            return Err(Failure::WebhookUnreachable {
                url: req.url.to_string(),
                cause: format!("invalid URL: {e}"),
            });
        }
    };
    let (wire_url, body, signature) = match req.method {
        HttpMethod::Post => {
            let sig = signing::signature(auth_token, &signing::url_to_sign(&base), &req.params);
            (base.clone(), Some(params::form_encode(&req.params)), sig)
        }
        HttpMethod::Get => {
            let full = params::append_query(&base, &req.params);
            let sig = signing::signature(auth_token, &signing::url_to_sign(&full), &[]);
            (full, None, sig)
        }
    };
    timeline.emit(EventKind::WebhookSent {
        purpose: req.purpose,
        url: wire_url.clone(),
        method: req.method.as_str(),
    });
    let mut builder = match req.method {
        HttpMethod::Post => http.post(&wire_url),
        HttpMethod::Get => http.get(&wire_url),
    };
    builder = builder
        .timeout(timeout)
        .header("X-Twilio-Signature", signature.clone())
        .header("User-Agent", "TwilioProxy/1.1")
        .header("Accept", "*/*")
        .header("Cache-Control", "max-age=259200")
        .header(
            "I-Twilio-Idempotency-Token",
            dialtone_protocol::sid::random("").to_lowercase(),
        );
    timeline.capture(&Captured::HttpRequest {
        purpose: req.purpose,
        method: req.method.as_str(),
        url: &wire_url,
        signature: &signature,
        body: body.as_deref().unwrap_or(""),
    });
    if let Some(body) = body {
        builder = builder
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
    }
    let started = Instant::now();
    let response = builder
        .send()
        .await
        .map_err(|e| classify(&wire_url, timeout, &e))?;
    let status = response.status().as_u16();
    let final_url = response.url().to_string();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = read_limited(response, TWIML_MAX_BYTES)
        .await
        .map_err(|e| match e {
            Limited::TooLarge => Failure::TwimlTooLarge {
                url: wire_url.clone(),
                limit: TWIML_MAX_BYTES,
            },
            Limited::Http(e) => classify(&wire_url, timeout, &e),
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
    // Relative URLs resolve against the document's URL: the one requested (without the
    // parameters a GET appended), or where a redirect led.
    let url = if final_url == wire_url {
        base
    } else {
        final_url
    };
    Ok(Fetched { doc, url })
}

/// Twilio's limit on a TwiML response body (error 11750).
const TWIML_MAX_BYTES: usize = 64 * 1024;

enum Limited {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads a body up to `limit` bytes, so a misbehaving app cannot grow memory without bound.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Limited> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Limited::Http)? {
        if out.len() + chunk.len() > limit {
            return Err(Limited::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn classify(url: &str, timeout: Duration, e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::WebhookTimeout {
            url: url.to_string(),
            ms: timeout.as_millis() as u64,
        };
    }
    if e.is_redirect() {
        return Failure::WebhookRedirects {
            url: url.to_string(),
        };
    }
    Failure::WebhookUnreachable {
        url: url.to_string(),
        cause: root_cause(e),
    }
}

/// The innermost error's words ("Connection refused (os error 111)"), which say more than
/// reqwest's outer "error sending request".
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    let mut words = e.to_string();
    while let Some(next) = cur.source() {
        words = next.to_string();
        cur = next;
    }
    if e.to_string().contains("builder") && !words.contains("URL") {
        return format!("invalid URL ({words})");
    }
    words
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
/// host with `ws`/`wss` in place of `http`/`https`.
pub(crate) fn resolve_stream(base: &str, reference: &str) -> Result<String, String> {
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
        assert_eq!(
            resolve("http://h/a/voice", "next").unwrap(),
            "http://h/a/next"
        );
    }
}
