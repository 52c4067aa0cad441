//! HTTP requests routed through the tunnel table. Redirects are followed here rather than
//! by reqwest, so that every hop is routed (an app behind a tunnel redirects to its public
//! URL) and the final URL is the public one.

use std::time::Duration;

use tokio::time::Instant;

use crate::tunnel::{Route, Tunnels};
use crate::{Net, root_cause};

/// At most this many redirects are followed (Twilio's limit; error 11215 past it).
pub const MAX_REDIRECTS: u32 = 10;

/// One request as Twilio makes it, to the URL Twilio would request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: http::Method,
    /// The URL, as public as the app knows it.
    pub url: url::Url,
    /// Headers (Twilio's own); `Host` and the forwarding headers are added when tunnelled.
    pub headers: Vec<(&'static str, String)>,
    /// Form body (POST).
    pub body: Option<String>,
    /// For the whole exchange, redirects and reading the body included.
    pub timeout: Duration,
}

/// The `User-Agent` of Twilio's HTTP requests (webhooks, callbacks, `<Play>` fetches).
pub const USER_AGENT: &str = "TwilioProxy/1.1";

impl Request {
    /// A request with only Twilio's `User-Agent`, as Twilio fetches media (`<Play>`): not
    /// signed, no body. Every other Twilio request starts from this one, so the header's
    /// spelling and place live once.
    pub fn twilio_fetch(method: http::Method, url: url::Url, timeout: Duration) -> Self {
        Self {
            method,
            url,
            headers: vec![("User-Agent", USER_AGENT.into())],
            body: None,
            timeout,
        }
    }

    /// A signed request whose wire form is already known (as `dialtone replay` resends a
    /// captured one): `url` as requested (a GET's parameters already in its query) and
    /// `body` as sent (a POST's form, byte for byte). The signature is computed over `url`
    /// as given and the parameters parsed from `body`.
    pub fn twilio_signed(
        method: http::Method,
        url: &str,
        body: Option<String>,
        auth_token: &str,
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        use dialtone_protocol::signing;
        let form: Vec<(String, String)> = body.as_deref().map_or_else(Vec::new, |b| {
            url::form_urlencoded::parse(b.as_bytes())
                .into_owned()
                .collect()
        });
        let signature = signing::signature(auth_token, &signing::url_to_sign(url), &form);
        let url = url::Url::parse(url).map_err(|e| HttpError::BadUrl(e.to_string()))?;
        Ok(Self::with_signature(method, url, body, signature, timeout))
    }

    /// A request as Twilio makes one: `params` form-encoded in a POST body (or appended to
    /// a GET's query), `X-Twilio-Signature` over the URL as requested, and Twilio's
    /// headers. The signature is in [`Request::signature`].
    pub fn twilio(
        method: http::Method,
        url: &url::Url,
        auth_token: &str,
        params: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        use dialtone_protocol::webhook::{signed_get, signed_post};
        let (url, body, signature) = if method == http::Method::GET {
            let (full, sig) = signed_get(auth_token, url.as_str(), params);
            let full = url::Url::parse(&full).map_err(|e| HttpError::BadUrl(e.to_string()))?;
            (full, None, sig)
        } else {
            let signed = signed_post(auth_token, url.as_str(), params);
            (url.clone(), Some(signed.body), signed.signature)
        };
        let mut req = Self::with_signature(method, url, body, signature, timeout);
        req.headers.extend([
            ("Cache-Control", "max-age=259200".into()),
            (
                "I-Twilio-Idempotency-Token",
                dialtone_protocol::sid::random("").to_lowercase(),
            ),
        ]);
        Ok(req)
    }

    /// `signature` first, then Twilio's `User-Agent` and `Accept`: the headers every
    /// signed Twilio request starts with, in the order Twilio sends them.
    fn with_signature(
        method: http::Method,
        url: url::Url,
        body: Option<String>,
        signature: String,
        timeout: Duration,
    ) -> Self {
        let mut req = Self::twilio_fetch(method, url, timeout);
        req.headers
            .insert(0, (dialtone_protocol::signing::HEADER, signature));
        req.headers.push(("Accept", "*/*".into()));
        req.body = body;
        req
    }

    /// The `X-Twilio-Signature` this request carries, if any.
    pub fn signature(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(dialtone_protocol::signing::HEADER))
            .map(|(_, v)| v.as_str())
    }
}

/// The final answer and how it was reached.
#[derive(Debug)]
pub struct Response {
    /// The answer; read its body within the request's timeout.
    pub inner: reqwest::Response,
    /// The route of the final hop (its public URL is where relative URLs resolve).
    pub route: Route,
    /// Redirects followed.
    pub redirects: u32,
}

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// Not an http(s) URL this client can request.
    #[error("{0}")]
    BadUrl(String),
    /// No complete answer within the timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    Redirects,
    /// Could not connect, TLS failed, or the connection broke (the cause in words).
    #[error("{0}")]
    Unreachable(String),
}

impl Net {
    /// Sends `req` through `tunnels`, following redirects.
    pub async fn send(&self, tunnels: &Tunnels, mut req: Request) -> Result<Response, HttpError> {
        let deadline = Instant::now() + req.timeout;
        let mut redirects = 0;
        loop {
            check_scheme(&req.url)?;
            let route = tunnels.route(&req.url);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(HttpError::Timeout(req.timeout));
            }
            let mut b = self
                .http
                .request(req.method.clone(), route.connect.clone())
                .timeout(remaining);
            for (name, value) in route
                .forwarding_headers()
                .into_iter()
                .chain(req.headers.clone())
            {
                b = b.header(name, value);
            }
            if let Some(body) = &req.body {
                b = b
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            let resp = b
                .send()
                .await
                .map_err(|e| self.classify(tunnels, &route, req.timeout, &e))?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                return Ok(Response {
                    inner: resp,
                    route,
                    redirects,
                });
            };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(HttpError::Redirects);
            }
            // Relative to the public URL: that is the URL the app believes it answered.
            req.url = route
                .public
                .join(&location)
                .map_err(|e| HttpError::BadUrl(format!("bad redirect {location:?}: {e}")))?;
            // 301/302/303 turn a POST into a body-less GET, as browsers and Twilio do.
            if matches!(status.as_u16(), 301..=303) && req.method == http::Method::POST {
                req.method = http::Method::GET;
                req.body = None;
            }
        }
    }

    /// The words for a failed request: the innermost cause, a TLS problem named, and how to
    /// map a public host that is not in the table.
    pub fn classify(
        &self,
        tunnels: &Tunnels,
        route: &Route,
        timeout: Duration,
        e: &reqwest::Error,
    ) -> HttpError {
        if e.is_timeout() {
            return HttpError::Timeout(timeout);
        }
        let host = route
            .connect
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Some(tls) = crate::tls::describe_tls(e, host) {
            return HttpError::Unreachable(tls);
        }
        let mut cause = root_cause(e);
        if let Some(hint) = tunnels.unmapped_hint(&route.public) {
            cause = format!("{cause}; {hint}");
        }
        HttpError::Unreachable(cause)
    }
}

fn check_scheme(url: &url::Url) -> Result<(), HttpError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(HttpError::BadUrl(format!(
            "unsupported URL scheme {other:?} (http:// and https:// only)"
        ))),
    }
}
