//! Twilio's REST value formats: RFC 2822 dates in UTC, phone numbers (E.164 checks and the
//! national `*_formatted` form), and the URL checks behind 21205.

pub use dialtone_protocol::dates::{date, iso8601_ms as iso8601};
pub use dialtone_protocol::webhook::rfc2822;

/// E.164: `+` then 2 to 15 digits, the first not `0`.
pub fn is_phone_number(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A valid call endpoint: an E.164 number, `client:name` ([`is_client_name`]), or a `sip:`
/// URI ([`is_sip_uri`]).
pub fn is_call_endpoint(s: &str) -> bool {
    is_phone_number(s) || s.strip_prefix("client:").is_some_and(is_client_name) || is_sip_uri(s)
}

/// Longest client name (twilio.com/docs/api/errors/31105).
pub const MAX_CLIENT_NAME: usize = 256;

/// Twilio's rule for a client name (error 31105): "should not contain control, space, delims,
/// or unwise characters and should not be longer than 256 characters" — RFC 2396's delims
/// `<>#%"` and unwise `{}|\^[]` and backquote.
pub fn is_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_CLIENT_NAME
        && name
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"<>#%\"{}|\\^[]`".contains(c))
}

/// A `sip:user@host[:port][;params][?headers]` URI as Twilio takes it for `To`
/// (twilio.com/docs/voice/api/sip-making-calls): the URI "under 255 characters", its headers
/// portion fewer than 1024 (warning 21227); printable ASCII only, without the characters a
/// URI never holds bare (space, `<>"{}|\^` and backquote).
pub fn is_sip_uri(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("sip:") else {
        return false;
    };
    let (body, headers) = rest.split_once('?').unwrap_or((rest, ""));
    if "sip:".len() + body.len() >= 255 || headers.len() >= 1024 {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_graphic() && !"<>\"{}|\\^`".contains(c))
    {
        return false;
    }
    let addr = body.split(';').next().unwrap_or_default();
    let Some((user, host_port)) = addr.split_once('@') else {
        return false;
    };
    // `port` keeps its `:`; an IPv6 reference `[…]` is checked whole.
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, port)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => ("ipv6", port),
            _ => return false,
        },
        None => host_port.split_at(host_port.find(':').unwrap_or(host_port.len())),
    };
    let port_ok = match port.strip_prefix(':') {
        Some(p) => (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    };
    !user.is_empty()
        && !user.contains(['@', '[', ']'])
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && port_ok
}

/// Why `s` is not a call endpoint, in words (for 21211/21212 messages).
pub fn endpoint_problem(s: &str) -> String {
    if s.starts_with("client:") {
        format!(
            "a client name is 1 to {MAX_CLIENT_NAME} characters without spaces, control \
             characters or any of <>#%\"{{}}|\\^[]` (31105)"
        )
    } else if s.starts_with("sip:") {
        "a SIP URI is sip:user@host[:port][;params][?headers], under 255 characters \
         (headers under 1024), printable ASCII without spaces or <>\"{}|\\^`"
            .to_string()
    } else {
        "expected an E.164 number (+ and up to 15 digits), client:name or a sip: URI".to_string()
    }
}

/// A valid caller ID for `From`: as [`is_call_endpoint`], plus short codes and
/// alphanumeric sender IDs Twilio accepts for some products (letters, digits, spaces, up
/// to 11 characters).
pub fn is_caller_id(s: &str) -> bool {
    is_call_endpoint(s)
        || (!s.is_empty()
            && s.len() <= 11
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && s.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// Twilio's `*_formatted` fields: the national format for NANP numbers
/// (`(555) 987-0000`), the number unchanged otherwise.
pub fn national(s: &str) -> String {
    match s.strip_prefix("+1") {
        Some(d) if d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..])
        }
        _ => s.to_string(),
    }
}

/// An absolute `http://` or `https://` URL with a host.
pub fn is_http_url(s: &str) -> bool {
    url::Url::parse(s)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn rfc2822_matches_twilio() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_283_286_988);
        assert_eq!(rfc2822(t), "Tue, 31 Aug 2010 20:36:28 +0000");
        assert_eq!(iso8601(t), "2010-08-31T20:36:28.000Z");
        assert_eq!(date(t), "2010-08-31");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(date(leap), "2000-02-29");
    }

    #[test]
    fn numbers() {
        assert!(is_phone_number("+15005550006"));
        assert!(!is_phone_number("15005550006"));
        assert!(!is_phone_number("+1500x550006"));
        assert!(!is_phone_number("+0123"));
        assert!(is_call_endpoint("client:alice"));
        assert!(is_call_endpoint("sip:bob@example.com"));
        assert!(!is_call_endpoint("bob"));
        assert!(is_caller_id("ACME"));
        assert_eq!(national("+15559870000"), "(555) 987-0000");
        assert_eq!(national("+442071838750"), "+442071838750");
    }

    #[test]
    fn client_names_and_sip_uris_as_twilio_takes_them() {
        for ok in [
            "client:alice",
            "client:alice_1.b-c",
            "client:Zoë",
            &format!("client:{}", "a".repeat(256)),
            "sip:bob@example.com",
            "sip:bob@example.com:5060;transport=tcp",
            "sip:bob@10.0.0.1?X-Custom=1&User-to-User=abc%20d",
            "sip:+15551234567@pbx.example.com",
            "sip:bob@[2001:db8::1]:5061",
        ] {
            assert!(is_call_endpoint(ok), "{ok}");
        }
        for bad in [
            "client:",
            "client:al\r\nice",
            "client:bob smith",
            "client:<b>x</b>",
            "client:a#b",
            "client:a%0D",
            "client:{x}",
            "client:a\tb",
            &format!("client:{}", "a".repeat(257)),
            "sip:",
            "sip:example.com",
            "sip:@example.com",
            "sip:bob@ex\r\nample.com",
            "sip:<script>@x",
            "sip:bob@exa mple.com",
            "sip:bob@example.com:99999999",
            "sip:bob@exa_mple.com",
            "sip:bob@[nope]",
            "sip:a@b@c",
            &format!("sip:bob@{}.com", "a".repeat(250)),
            &format!("sip:bob@x.com?X-H={}", "a".repeat(1100)),
        ] {
            assert!(!is_call_endpoint(bad), "{bad:?}");
            assert!(!is_caller_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        assert!(is_http_url("http://127.0.0.1:3000/voice"));
        assert!(is_http_url("https://example.com"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("/voice"));
    }
}
