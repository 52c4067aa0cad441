//! `/voice`: the call webhook. Validates the signature, turns away unregistered
//! callers, and answers everyone else with a greeting and a bidirectional stream (in relay
//! mode, `<Connect><ConversationRelay>` with the greeting as its `welcomeGreeting`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::hostile;
use crate::misbehave::{self, Behaviour};
use crate::signature::{self, Rejection};

/// The TwiML an unregistered caller gets.
const NOT_REGISTERED: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "<Response><Say>Sorry, this number is not registered.</Say><Hangup/></Response>"
);

/// `POST /voice` (form body) or `GET /voice` (query string).
pub(crate) async fn voice(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let config = &state.config;
    let base = signature::http_base(config, &headers)?;
    // Twilio signs the full URL (query included) plus, for POST, the sorted form
    // fields; for GET its parameters are already in the URL, so none are appended.
    let signed_params: Vec<(String, String)> = if method == Method::POST {
        form_urlencoded::parse(&body).into_owned().collect()
    } else {
        Vec::new()
    };
    signature::check(
        config,
        &headers,
        signature::request_url(&base, &uri),
        &signed_params,
    )?;

    let call_params: Vec<(String, String)> = if method == Method::POST {
        signed_params
    } else {
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    };
    let param = |name: &str| {
        call_params
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let (from, call_sid) = (param("From"), param("CallSid"));

    // Deliberate faults (`BotConfig::misbehave`), after the signature check like a real
    // app's bug would be.
    let fault = config.misbehave.for_call(call_sid);
    match fault {
        Some(Behaviour::Http500) => {
            tracing::info!(call_sid, "misbehave http500");
            let plain = [(header::CONTENT_TYPE, "text/plain")];
            let body = misbehave::HTTP500_BODY;
            return Ok((StatusCode::INTERNAL_SERVER_ERROR, plain, body).into_response());
        }
        Some(Behaviour::BadTwiml) => {
            tracing::info!(call_sid, "misbehave bad_twiml");
            let xml = [(header::CONTENT_TYPE, "text/xml")];
            return Ok((xml, misbehave::BAD_TWIML).into_response());
        }
        Some(Behaviour::HugeTwiml) => {
            tracing::info!(call_sid, "misbehave huge_twiml");
            return Ok(hostile::huge_twiml());
        }
        Some(Behaviour::SlowTwiml) => {
            tracing::info!(call_sid, "misbehave slow_twiml");
            return Ok(hostile::slow_twiml());
        }
        Some(Behaviour::RedirectLoop) => {
            tracing::debug!(call_sid, "misbehave redirect_loop");
            let xml = [(header::CONTENT_TYPE, "text/xml")];
            let twiml = hostile::redirect_loop(&format!("{base}/voice"));
            return Ok((xml, twiml).into_response());
        }
        _ => {}
    }

    let registered = config
        .registered
        .as_ref()
        .is_none_or(|list| list.iter().any(|n| n == from));
    let twiml = if registered {
        tracing::info!(call_sid, from, "answering call");
        let path = if config.relay.is_some() {
            "relay"
        } else {
            "media"
        };
        let mut stream_url = format!("{}/{path}", signature::ws_base(&base));
        if let Some(b @ (Behaviour::RefuseUpgrade | Behaviour::StuckUpgrade)) = fault {
            // The upgrade carries no call SID: mark the URL so `/media` knows what to do.
            stream_url.push_str(&format!("?{}={b}", misbehave::UPGRADE_QUERY));
        }
        let play = (fault == Some(Behaviour::HugePlay))
            .then(|| format!("{base}{}", hostile::HUGE_PLAY_PATH));
        if config.relay.is_some() {
            relay_twiml(&config.greeting, play.as_deref(), &stream_url)
        } else {
            connect_twiml(
                &config.greeting,
                play.as_deref(),
                &stream_url,
                from,
                call_sid,
            )
        }
    } else {
        tracing::info!(call_sid, from, "caller not registered; hanging up");
        NOT_REGISTERED.to_owned()
    };
    Ok(([(header::CONTENT_TYPE, "text/xml")], twiml).into_response())
}

/// `<Say>{greeting}</Say>` (then `<Play>{play}</Play>` if given) `<Connect><Stream url=…>`
/// with the caller and call SID passed as `<Parameter>`s, so the stream handler knows who it
/// is talking to.
fn connect_twiml(
    greeting: &str,
    play: Option<&str>,
    stream_url: &str,
    from: &str,
    call_sid: &str,
) -> String {
    let mut out = String::with_capacity(256 + greeting.len() + stream_url.len());
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>"#);
    escape_into(&mut out, greeting);
    out.push_str("</Say>");
    if let Some(play) = play {
        out.push_str("<Play>");
        escape_into(&mut out, play);
        out.push_str("</Play>");
    }
    out.push_str(r#"<Connect><Stream url=""#);
    escape_into(&mut out, stream_url);
    out.push_str(r#""><Parameter name="caller" value=""#);
    escape_into(&mut out, from);
    out.push_str(r#""/><Parameter name="callSid" value=""#);
    escape_into(&mut out, call_sid);
    out.push_str(r#""/></Stream></Connect></Response>"#);
    out
}

/// Relay mode: (`<Play>{play}</Play>` if given) `<Connect><ConversationRelay url=…
/// welcomeGreeting=…/>`. `setup` tells the socket who is calling.
fn relay_twiml(greeting: &str, play: Option<&str>, relay_url: &str) -> String {
    let mut out = String::with_capacity(256 + greeting.len() + relay_url.len());
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
    if let Some(play) = play {
        out.push_str("<Play>");
        escape_into(&mut out, play);
        out.push_str("</Play>");
    }
    out.push_str(r#"<Connect><ConversationRelay url=""#);
    escape_into(&mut out, relay_url);
    out.push_str(r#"" welcomeGreeting=""#);
    escape_into(&mut out, greeting);
    out.push_str(r#""/></Connect></Response>"#);
    out
}

/// Appends `text` escaped for both element content and double-quoted attributes.
/// Control characters XML 1.0 forbids are dropped rather than producing a document
/// Twilio would reject (12100).
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_is_escaped() {
        let xml = connect_twiml(
            "Hi <you> & \"them\"",
            None,
            "ws://h:1/media",
            "+1&2",
            "CA'1\u{1}",
        );
        assert_eq!(
            xml,
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hi &lt;you&gt; &amp; &quot;them&quot;</Say>"#,
                r#"<Connect><Stream url="ws://h:1/media"><Parameter name="caller" value="+1&amp;2"/>"#,
                r#"<Parameter name="callSid" value="CA&apos;1"/></Stream></Connect></Response>"#
            )
        );
        assert_eq!(
            relay_twiml("Hi & \"bye\"", None, "wss://h/relay?a=1&b=2"),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><ConversationRelay "#,
                r#"url="wss://h/relay?a=1&amp;b=2" welcomeGreeting="Hi &amp; &quot;bye&quot;"/>"#,
                r#"</Connect></Response>"#
            )
        );
    }
}
