//! `X-Twilio-Signature`: computing it for requests dialtone sends, and validating it
//! the way Twilio's helper libraries do.
//!
//! Algorithm (Twilio "Webhooks Security" page, reproduced by both official SDKs):
//! take the full URL Twilio requested, append `name + value` of every form-body
//! parameter sorted by name (case-sensitive byte order, no separators), HMAC-SHA1 the
//! result with the auth token as key, and base64 (standard alphabet, padded) the digest.
//! Query-string parameters are part of the URL and are not appended again.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// Name of the header Twilio puts the signature in.
pub const HEADER: &str = "X-Twilio-Signature";

/// `X-Twilio-Signature`: base64(HMAC-SHA1(auth_token, url + concat of name+value for
/// every param sorted by name)). Sorting is byte order and stable, so repeated names
/// keep the order they were given in.
///
/// Caution for repeated names: both official validators (twilio-python, twilio-node)
/// de-duplicate a name's values and sort them before signing, so a request whose
/// repeated values are not already sorted and distinct fails validation in apps.
/// Twilio's voice webhooks do not repeat names; dialtone should not either.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut order: Vec<&(String, String)> = params.iter().collect();
    // `sort_by` is stable: equal names keep their original relative order.
    order.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut mac = new_mac(auth_token);
    mac.update(url.as_bytes());
    for (name, value) in order {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Validate like twilio-python's `RequestValidator.validate`: the signature is accepted
/// if it matches the URL as given, the URL with its port removed, or (when it has no
/// port) the URL with the scheme's default port added (`:443` for `https`, `:80` for
/// anything else — twilio-python's rule, applied to `wss` too).
///
/// For repeated parameter names twilio-python signs each name once with its distinct
/// values sorted; this also accepts that form besides [`signature`]'s stable order.
/// Every comparison is constant-time.
pub fn validate(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature_header: &str,
) -> bool {
    let Some(parts) = UrlParts::parse(url) else {
        return matches(&signature(auth_token, url, params), signature_header)
            || matches(&python_signature(auth_token, url, params), signature_header);
    };
    let candidates = [
        url.to_owned(),
        parts.without_port(),
        parts.with_default_port(),
    ];
    let mut ok = false;
    for candidate in &candidates {
        // No short-circuit: every candidate is compared, so timing reveals nothing.
        ok |= matches(&signature(auth_token, candidate, params), signature_header);
        ok |= matches(
            &python_signature(auth_token, candidate, params),
            signature_header,
        );
    }
    ok
}

/// The URL Twilio signs for a request it sends: the userinfo (`user:pass@`) is dropped;
/// for `https://` (and `wss://`) the port is dropped too; for `http://` and `ws://` the
/// port is kept. The fragment is dropped as well, since it is never sent on the wire.
///
/// Twilio documents the port rule for voice over HTTP/HTTPS. For `wss` it documents
/// nothing; dropping the port there is a choice: both official validators accept a
/// port-less signature whether or not the app passes the port.
pub fn url_to_sign(url: &str) -> String {
    let Some(parts) = UrlParts::parse(url) else {
        return strip_fragment(url).to_owned();
    };
    let drop_port =
        parts.scheme.eq_ignore_ascii_case("https") || parts.scheme.eq_ignore_ascii_case("wss");
    let mut out = String::with_capacity(url.len());
    out.push_str(parts.scheme);
    out.push_str("://");
    out.push_str(parts.host);
    if let (Some(port), false) = (parts.port, drop_port) {
        out.push(':');
        out.push_str(port);
    }
    out.push_str(strip_fragment(parts.rest));
    out
}

fn new_mac(auth_token: &str) -> HmacSha1 {
    // HMAC is defined for keys of any length, so this cannot fail.
    HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts keys of any length")
}

fn matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// twilio-python's `compute_signature` for multi-valued params: names de-duplicated and
/// sorted, each name's distinct values sorted.
fn python_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut mac = new_mac(auth_token);
    mac.update(url.as_bytes());
    for (name, value) in pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

fn strip_fragment(s: &str) -> &str {
    s.split_once('#').map_or(s, |(before, _)| before)
}

/// A URL split just enough to move its port around, keeping every other byte verbatim
/// (a full URL parser would normalise case and escapes, changing what gets signed).
struct UrlParts<'a> {
    scheme: &'a str,
    /// `user:pass@` including the `@`, or empty.
    userinfo: &'a str,
    /// Host as written, IPv6 brackets included.
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment, as written.
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn parse(url: &'a str) -> Option<Self> {
        let (scheme, after) = url.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => authority.split_at(at + 1),
            None => ("", authority),
        };
        // The port is what follows the last ':' outside IPv6 brackets, if all digits.
        let host_end = if hostport.starts_with('[') {
            hostport.find(']').map_or(hostport.len(), |i| i + 1)
        } else {
            hostport.rfind(':').unwrap_or(hostport.len())
        };
        let (host, port) = match hostport[host_end..].strip_prefix(':') {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (&hostport[..host_end], Some(p))
            }
            _ => (hostport, None),
        };
        Some(Self {
            scheme,
            userinfo,
            host,
            port,
            rest,
        })
    }

    fn rebuild(&self, port: Option<&str>) -> String {
        let mut out = format!("{}://{}{}", self.scheme, self.userinfo, self.host);
        if let Some(port) = port {
            out.push(':');
            out.push_str(port);
        }
        out.push_str(self.rest);
        out
    }

    fn without_port(&self) -> String {
        self.rebuild(None)
    }

    fn with_default_port(&self) -> String {
        if self.port.is_some() {
            return self.rebuild(self.port);
        }
        let default = if self.scheme.eq_ignore_ascii_case("https") {
            "443"
        } else {
            "80"
        };
        self.rebuild(Some(default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_handle_ipv6_and_userinfo() {
        let p = UrlParts::parse("https://u:p@[::1]:8443/x?y#z").expect("parses");
        assert_eq!(
            (p.scheme, p.userinfo, p.host, p.port, p.rest),
            ("https", "u:p@", "[::1]", Some("8443"), "/x?y#z")
        );
        let p = UrlParts::parse("http://h").expect("parses");
        assert_eq!((p.host, p.port, p.rest), ("h", None, ""));
        assert!(UrlParts::parse("not a url").is_none());
    }

    #[test]
    fn port_variants() {
        let p = UrlParts::parse("https://h:8080/a").expect("parses");
        assert_eq!(p.without_port(), "https://h/a");
        assert_eq!(p.with_default_port(), "https://h:8080/a");
        let p = UrlParts::parse("http://h/a").expect("parses");
        assert_eq!(p.with_default_port(), "http://h:80/a");
    }
}
