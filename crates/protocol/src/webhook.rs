//! Voice webhook requests: the standard parameter set Twilio sends on every voice
//! request (Voice URL, action URLs, redirects, fallbacks), and its form encoding.
//!
//! Parameter order: recent raw captures of Twilio voice webhooks (inbound-call bodies
//! pasted into public code, one with `CallToken`, one GET query with `Digits` and
//! `Recording*`) list every parameter sorted by name in byte order, including the
//! verb-specific ones. Captures from 2016–2019 show a different, hash-like order; apps
//! must not depend on order, but dialtone emits the current sorted order.
//!
//! Encoding: the captures escape `+` as `%2B` and `*` as `%2A` and use `+` for spaces in
//! bodies; only `A-Z a-z 0-9 - _ . ~` are left bare (the same rule as Go's
//! `url.QueryEscape`, whose `Values.Encode` also sorts keys — consistent with both).

use crate::signing;

/// Value of the `ApiVersion` parameter on every voice request.
pub const API_VERSION: &str = "2010-04-01";

/// Which way a call goes, as Twilio reports it in `Direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A call into one of the account's numbers.
    Inbound,
    /// A call created with the REST API (`Calls.create`).
    OutboundApi,
    /// A child leg created by `<Dial>`.
    OutboundDial,
}

impl Direction {
    /// Twilio's wire spelling: `inbound`, `outbound-api`, `outbound-dial`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::OutboundApi => "outbound-api",
            Self::OutboundDial => "outbound-dial",
        }
    }
}

/// A call's status as reported in `CallStatus` on voice requests and in the REST API.
///
/// `initiated` is deliberately absent: it appears only in status callbacks, never in
/// the Call resource or in TwiML requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallStatus {
    /// Created, not yet dialled.
    Queued,
    /// Ringing (also the status of an inbound call's first request).
    Ringing,
    /// Answered.
    InProgress,
    /// Ended normally after being answered.
    Completed,
    /// The callee was busy.
    Busy,
    /// The call could not be placed.
    Failed,
    /// Nobody answered.
    NoAnswer,
    /// Ended through the REST API while queued or ringing.
    Canceled,
}

impl CallStatus {
    /// Twilio's wire spelling, e.g. `in-progress`, `no-answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::NoAnswer => "no-answer",
            Self::Canceled => "canceled",
        }
    }

    /// True for the statuses a call can end in.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Busy | Self::Failed | Self::NoAnswer | Self::Canceled
        )
    }
}

/// Everything about a call that goes into voice webhook parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// `AC…` of the account that owns the call.
    pub account_sid: String,
    /// `CA…` of this call leg.
    pub call_sid: String,
    /// Caller: E.164 number, `client:name`, `sip:…`, or e.g. `anonymous`.
    pub from: String,
    /// Callee, same forms as `from`.
    pub to: String,
    /// Direction of this leg.
    pub direction: Direction,
    /// Opaque token Twilio adds on inbound PSTN calls only.
    pub call_token: Option<String>,
    /// Caller's country code, e.g. `"US"` (sent as `FromCountry` and `CallerCountry`).
    pub caller_country: String,
    /// Callee's country code (sent as `ToCountry` and `CalledCountry`).
    pub called_country: String,
    /// Parent leg of a `<Dial>` child leg; absent on first legs.
    pub parent_call_sid: Option<String>,
}

/// The country dialtone reports for both parties (`FromCountry`, `CallerCountry`,
/// `ToCountry`, `CalledCountry`). Twilio looks it up from the number; dialtone does no
/// lookup, and its default numbers are +1 (`+1500555…`), so `"US"` is what apps have
/// always received here.
pub const DEFAULT_COUNTRY: &str = "US";

impl CallInfo {
    /// A first leg (no parent, no `CallToken`) with both countries [`DEFAULT_COUNTRY`]:
    /// the one place a `CallInfo` is filled, so the country defaults live once. Set the
    /// other fields with struct update syntax.
    pub fn new(
        account_sid: impl Into<String>,
        call_sid: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
        direction: Direction,
    ) -> Self {
        Self {
            account_sid: account_sid.into(),
            call_sid: call_sid.into(),
            from: from.into(),
            to: to.into(),
            direction,
            call_token: None,
            caller_country: DEFAULT_COUNTRY.into(),
            called_country: DEFAULT_COUNTRY.into(),
            parent_call_sid: None,
        }
    }
}

/// The standard parameter set Twilio sends on every voice request, sorted by name in
/// byte order as current Twilio traffic is: `AccountSid`, `ApiVersion`, `CallSid`,
/// `CallStatus`, `CallToken` (only when set), `Called`, `CalledCity`, `CalledCountry`,
/// `CalledState`, `CalledZip`, `Caller`, `CallerCity`, `CallerCountry`, `CallerState`, `CallerZip`,
/// `Direction`, `From`, `FromCity`, `FromCountry`, `FromState`, `FromZip`,
/// `ParentCallSid` (only when set), `To`, `ToCity`, `ToCountry`, `ToState`, `ToZip`.
///
/// `Called`/`Caller` repeat `To`/`From` (legacy twins). City, state and zip are sent
/// empty, as Twilio often does when its lookup finds nothing; countries come from
/// `info`. To add verb-specific parameters (`Digits`, `RecordingUrl`, …) push them and
/// call [`sort_params`] to keep Twilio's order.
pub fn voice_params(info: &CallInfo, status: CallStatus) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(27);
    let mut push = |name: &str, value: &str| out.push((name.to_owned(), value.to_owned()));
    push("AccountSid", &info.account_sid);
    push("ApiVersion", API_VERSION);
    push("CallSid", &info.call_sid);
    push("CallStatus", status.as_str());
    if let Some(token) = &info.call_token {
        push("CallToken", token);
    }
    push("Called", &info.to);
    push("CalledCity", "");
    push("CalledCountry", &info.called_country);
    push("CalledState", "");
    push("CalledZip", "");
    push("Caller", &info.from);
    push("CallerCity", "");
    push("CallerCountry", &info.caller_country);
    push("CallerState", "");
    push("CallerZip", "");
    push("Direction", info.direction.as_str());
    push("From", &info.from);
    push("FromCity", "");
    push("FromCountry", &info.caller_country);
    push("FromState", "");
    push("FromZip", "");
    if let Some(parent) = &info.parent_call_sid {
        push("ParentCallSid", parent);
    }
    push("To", &info.to);
    push("ToCity", "");
    push("ToCountry", &info.called_country);
    push("ToState", "");
    push("ToZip", "");
    out
}

/// `Tue, 31 Aug 2010 20:36:28 +0000`: what Twilio puts in `date_created` and friends, and in
/// status callbacks' `Timestamp`. (HTTP dates are the same fields with `GMT`.)
pub fn rfc2822(t: std::time::SystemTime) -> String {
    let http = httpdate::fmt_http_date(t);
    match http.strip_suffix(" GMT") {
        Some(head) => format!("{head} +0000"),
        None => http,
    }
}

/// A call progress status callback's parameters (`initiated`, `ringing`, `answered`,
/// `completed`): the voice parameters with `CallStatus` as given (`initiated` is only ever
/// seen here), `CallbackSource`, `SequenceNumber` and `Timestamp`, then `extra` (terminal
/// fields such as `CallDuration`), sorted.
pub fn progress_params(
    info: &CallInfo,
    status: &str,
    sequence: u32,
    timestamp: String,
    extra: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut params = voice_params(info, CallStatus::Queued);
    for (name, value) in params.iter_mut() {
        if name == "CallStatus" {
            *value = status.to_string();
        }
    }
    params.push(("CallbackSource".into(), "call-progress-events".into()));
    params.push(("SequenceNumber".into(), sequence.to_string()));
    params.push(("Timestamp".into(), timestamp));
    params.extend(extra);
    sort_params(&mut params);
    params
}

/// Sort parameters the way Twilio orders them on the wire: by name, byte order,
/// stable for repeated names.
pub fn sort_params(params: &mut [(String, String)]) {
    params.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
}

/// Form-encode params (`application/x-www-form-urlencoded`) as Twilio does: `name=value`
/// joined by `&`, spaces as `+`, and every byte outside `A-Z a-z 0-9 - _ . ~`
/// percent-encoded with uppercase hex (so `+` is `%2B`, `*` is `%2A`).
pub fn form_encode(params: &[(String, String)]) -> String {
    let mut out = String::with_capacity(params.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_escaped(&mut out, name);
        out.push('=');
        push_escaped(&mut out, value);
    }
    out
}

/// For GET webhooks: append the form-encoded params to the URL's existing query string
/// with `&`, or start one with `?`. A fragment, if any, stays at the end. With no params
/// the URL is returned unchanged; a URL already ending in `?` or `&` gets no extra
/// separator.
pub fn append_query(url: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let (base, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let encoded = form_encode(params);
    let mut out = String::with_capacity(url.len() + encoded.len() + 1);
    out.push_str(base);
    if !base.contains('?') {
        out.push('?');
    } else if !(base.ends_with('?') || base.ends_with('&')) {
        out.push('&');
    }
    out.push_str(&encoded);
    out.push_str(fragment);
    out
}

/// A fully prepared webhook request body and signature, for the common POST case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedForm {
    /// The `application/x-www-form-urlencoded` body.
    pub body: String,
    /// Value for the `X-Twilio-Signature` header.
    pub signature: String,
}

/// Encode `params` as a POST body and sign it for `url` as Twilio would (see
/// [`signing::url_to_sign`]).
pub fn signed_post(auth_token: &str, url: &str, params: &[(String, String)]) -> SignedForm {
    SignedForm {
        body: form_encode(params),
        signature: signing::signature(auth_token, &signing::url_to_sign(url), params),
    }
}

/// Build a GET webhook URL and its signature: params go in the query string, and the
/// signature covers the final URL with no body params (Twilio's GET rule).
pub fn signed_get(auth_token: &str, url: &str, params: &[(String, String)]) -> (String, String) {
    let full = append_query(url, params);
    let signature = signing::signature(auth_token, &signing::url_to_sign(&full), &[]);
    (full, signature)
}

fn push_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_twilio_captures() {
        let p = vec![
            ("Called".to_owned(), "+19252717005".to_owned()),
            ("CallerCity".to_owned(), "NEW YORK CITY".to_owned()),
            ("Digits".to_owned(), "*".to_owned()),
            ("Url".to_owned(), "https://a.b/c?d=e&f=~g".to_owned()),
            ("Uni".to_owned(), "é".to_owned()),
        ];
        assert_eq!(
            form_encode(&p),
            "Called=%2B19252717005&CallerCity=NEW+YORK+CITY&Digits=%2A\
             &Url=https%3A%2F%2Fa.b%2Fc%3Fd%3De%26f%3D~g&Uni=%C3%A9"
        );
    }
}
