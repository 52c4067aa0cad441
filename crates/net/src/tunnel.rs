//! The tunnel table: public origins (what the app's TwiML and signature checks name, e.g.
//! `https://bot.example.ts.net`) mapped to local origins (where the app listens, e.g.
//! `http://127.0.0.1:8765`). dialtone stands in for Twilio *and* the tunnel: a request to a
//! mapped public URL is connected to the local origin but is otherwise exactly what Twilio
//! sends to the public URL (signed over it, `Host` naming it), plus the forwarding headers
//! tunnels add. Pure data: no I/O.

use std::fmt;
use std::str::FromStr;

/// `http` or `https`; a WebSocket URL's origin uses the HTTP scheme of its transport
/// (`ws` → `http`, `wss` → `https`), because a tunnel forwards both on one origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "http" | "ws" => Some(Self::Http),
            "https" | "wss" => Some(Self::Https),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    /// True for TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Https)
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The scheme a URL of kind `like` takes on this transport: `ws`/`wss` for WebSocket
    /// URLs, `http`/`https` otherwise.
    fn for_url(self, like: &str) -> &'static str {
        let ws = matches!(like, "ws" | "wss");
        match (self, ws) {
            (Self::Http, false) => "http",
            (Self::Https, false) => "https",
            (Self::Http, true) => "ws",
            (Self::Https, true) => "wss",
        }
    }
}

/// Scheme, host and port: what a tunnel maps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Transport.
    pub scheme: Scheme,
    /// Host name or IP literal, lower case (IPv6 without brackets).
    pub host: String,
    /// Port (the scheme's default when the URL had none).
    pub port: u16,
}

impl Origin {
    /// The origin of `url`, or `None` for schemes other than http(s)/ws(s) or no host.
    pub fn of(url: &url::Url) -> Option<Self> {
        let scheme = Scheme::parse(url.scheme())?;
        let host = match url.host()? {
            url::Host::Ipv6(a) => a.to_string(),
            h => h.to_string().to_ascii_lowercase(),
        };
        Some(Self {
            scheme,
            port: url.port().unwrap_or(scheme.default_port()),
            host,
        })
    }

    /// `host` or `host:port` (port only when not the scheme's default), as a `Host` header
    /// names it.
    pub fn authority(&self) -> String {
        let host = self.host_literal();
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The host as a URL writes it: IPv6 addresses in brackets.
    fn host_literal(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// True for `localhost`, `127.0.0.0/8` and `::1`.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host.ends_with(".localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

impl FromStr for Origin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let u = url::Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        let origin = Origin::of(&u).ok_or_else(|| {
            format!("{s:?}: expected http://, https://, ws:// or wss:// with a host")
        })?;
        if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
            return Err(format!(
                "{s:?}: a tunnel maps origins (scheme://host[:port]), not paths"
            ));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!("{s:?}: no credentials in a tunnel origin"));
        }
        Ok(origin)
    }
}

/// One mapping: requests to `public` are connected to `local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// The origin the app is known by (its tunnel or cloud host).
    pub public: Origin,
    /// Where the app listens on this machine.
    pub local: Origin,
}

impl FromStr for Tunnel {
    type Err = String;

    /// `PUBLIC=LOCAL`, e.g. `https://bot.example.ts.net=http://127.0.0.1:8765`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (public, local) = s.split_once('=').ok_or_else(|| {
            format!("{s:?}: expected PUBLIC=LOCAL, e.g. https://bot.example.ts.net=http://127.0.0.1:8765")
        })?;
        Ok(Self {
            public: public.parse()?,
            local: local.parse()?,
        })
    }
}

impl fmt::Display for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.public, self.local)
    }
}

/// The tunnel table. The first mapping of an origin wins, so a per-number table put before
/// the global one overrides it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tunnels {
    entries: Vec<Tunnel>,
}

/// The address Twilio's request appears to come from, in the forwarding headers a tunnel
/// adds (an address of Twilio's us1 edge, so apps that check the client address against
/// Twilio's ranges see what they would in production).
pub const TWILIO_CLIENT_IP: &str = "54.172.60.1";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The URL as Twilio requests it: signed over, named by `Host`.
    pub public: url::Url,
    /// The URL actually connected to: `public` with the local origin, when tunnelled.
    pub connect: url::Url,
    /// The mapping used, if any.
    pub tunnel: Option<Tunnel>,
}

impl Route {
    /// The local origin's `host:port` when tunnelled (for "… (via 127.0.0.1:8765)").
    pub fn via(&self) -> Option<String> {
        self.tunnel
            .as_ref()
            .map(|t| format!("{}:{}", t.local.host_literal(), t.local.port))
    }

    /// `URL` or `URL (via 127.0.0.1:8765)`.
    pub fn describe(&self) -> String {
        match self.via() {
            Some(via) => format!("{} (via {via})", self.public),
            None => self.public.to_string(),
        }
    }

    /// The headers a tunnel adds to what it forwards, and the `Host` naming the public
    /// origin; empty when not tunnelled (Twilio talks to the app directly).
    pub fn forwarding_headers(&self) -> Vec<(&'static str, String)> {
        let Some(t) = &self.tunnel else {
            return Vec::new();
        };
        vec![
            ("Host", t.public.authority()),
            ("X-Forwarded-For", TWILIO_CLIENT_IP.to_string()),
            ("X-Forwarded-Proto", t.public.scheme.as_str().to_string()),
            ("X-Forwarded-Host", t.public.authority()),
        ]
    }
}

impl Tunnels {
    /// A table of these mappings, in order.
    pub fn new(entries: Vec<Tunnel>) -> Self {
        Self { entries }
    }

    /// True when there are no mappings.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mappings, in order.
    pub fn entries(&self) -> &[Tunnel] {
        &self.entries
    }

    /// This table's mappings first, then `fallback`'s (per-number over global).
    pub fn then(&self, fallback: &Tunnels) -> Tunnels {
        let mut entries = self.entries.clone();
        entries.extend(fallback.entries.iter().cloned());
        Tunnels { entries }
    }

    /// The mapping for `url`'s origin, if any.
    pub fn lookup(&self, url: &url::Url) -> Option<&Tunnel> {
        let origin = Origin::of(url)?;
        self.entries.iter().find(|t| t.public == origin)
    }

    /// Where a request to `url` goes.
    pub fn route(&self, url: &url::Url) -> Route {
        let tunnel = self.lookup(url).cloned();
        let connect = match &tunnel {
            Some(t) => {
                let mut c = url.clone();
                // Each setter succeeds by construction: http/https/ws/wss are all "special"
                // schemes (url refuses only special <-> non-special changes), and the local
                // host came out of a parsed URL. IP literals need `set_ip_host`: `set_host`
                // refuses a bare IPv6 address.
                let port = (t.local.port != t.local.scheme.default_port()).then_some(t.local.port);
                let ok = c.set_scheme(t.local.scheme.for_url(url.scheme())).is_ok()
                    && match t.local.host.parse::<std::net::IpAddr>() {
                        Ok(ip) => c.set_ip_host(ip).is_ok(),
                        Err(_) => c.set_host(Some(&t.local.host)).is_ok(),
                    }
                    && c.set_port(port).is_ok();
                if !ok {
                    tracing::error!("tunnel {t}: cannot rewrite {url} for the local origin");
                }
                c
            }
            None => url.clone(),
        };
        Route {
            public: url.clone(),
            connect,
            tunnel,
        }
    }

    /// Advice for a request to `url` that failed without reaching anything: a public host
    /// not in the table is mapped with a tunnel. `None` for loopback or mapped origins.
    pub fn unmapped_hint(&self, url: &url::Url) -> Option<String> {
        let origin = Origin::of(url)?;
        if origin.is_loopback() || self.lookup(url).is_some() {
            return None;
        }
        Some(format!(
            "{origin} is not in dialtone's tunnel table: to reach your local app as this \
             public origin, add --tunnel {origin}=http://127.0.0.1:PORT"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn parses_mappings_and_refuses_paths() {
        let t: Tunnel = "https://Bot.Example.ts.net=http://127.0.0.1:8765"
            .parse()
            .unwrap();
        assert_eq!(t.public.host, "bot.example.ts.net");
        assert_eq!(t.public.port, 443);
        assert_eq!(t.local.port, 8765);
        assert_eq!(
            t.to_string(),
            "https://bot.example.ts.net=http://127.0.0.1:8765"
        );
        assert!(
            "https://a.example/voice=http://127.0.0.1:1"
                .parse::<Tunnel>()
                .is_err()
        );
        assert!("https://a.example".parse::<Tunnel>().is_err());
        assert!(
            "ftp://a.example=http://127.0.0.1:1"
                .parse::<Tunnel>()
                .is_err()
        );
        // wss:// and https:// are one origin.
        let w: Tunnel = "wss://a.example=ws://127.0.0.1:9".parse().unwrap();
        assert_eq!(w.public.scheme, Scheme::Https);
        assert_eq!(w.local.scheme, Scheme::Http);
    }

    #[test]
    fn routes_http_and_websocket_urls_of_a_mapped_origin() {
        let table = Tunnels::new(vec![
            "https://bot.example.ts.net=http://127.0.0.1:8765"
                .parse()
                .unwrap(),
        ]);
        let r = table.route(&url("https://bot.example.ts.net/voice?x=1"));
        assert_eq!(r.connect.as_str(), "http://127.0.0.1:8765/voice?x=1");
        assert_eq!(r.public.as_str(), "https://bot.example.ts.net/voice?x=1");
        assert_eq!(
            r.describe(),
            "https://bot.example.ts.net/voice?x=1 (via 127.0.0.1:8765)"
        );
        let ws = table.route(&url("wss://bot.example.ts.net/ws"));
        assert_eq!(ws.connect.as_str(), "ws://127.0.0.1:8765/ws");
        let headers = ws.forwarding_headers();
        assert!(headers.contains(&("Host", "bot.example.ts.net".to_string())));
        assert!(headers.contains(&("X-Forwarded-Proto", "https".to_string())));
        // Another port, or plain http, is another origin.
        assert!(
            table
                .route(&url("https://bot.example.ts.net:8443/"))
                .tunnel
                .is_none()
        );
        assert!(
            table
                .route(&url("http://bot.example.ts.net/"))
                .tunnel
                .is_none()
        );
        // IPv6 local origins keep their address (and the public one is never dialled).
        for (local, connect) in [
            ("http://[::1]:8765", "http://[::1]:8765/voice"),
            ("http://[fd00::1]:8765", "http://[fd00::1]:8765/voice"),
            ("https://[::1]:8443", "https://[::1]:8443/voice"),
        ] {
            let t = Tunnels::new(vec![
                format!("https://bot.example.ts.net={local}")
                    .parse()
                    .unwrap(),
            ]);
            let r = t.route(&url("https://bot.example.ts.net/voice"));
            assert_eq!(r.connect.as_str(), connect);
        }
        let direct = table.route(&url("http://127.0.0.1:3000/voice"));
        assert_eq!(direct.connect, direct.public);
        assert!(direct.forwarding_headers().is_empty());
    }

    #[test]
    fn per_number_mappings_win_and_unmapped_hosts_get_advice() {
        let global = Tunnels::new(vec![
            "https://a.example=http://127.0.0.1:1".parse().unwrap(),
        ]);
        let number = Tunnels::new(vec![
            "https://a.example=https://localhost:2".parse().unwrap(),
        ]);
        let r = number.then(&global).route(&url("https://a.example/x"));
        assert_eq!(r.connect.as_str(), "https://localhost:2/x");
        let hint = global.unmapped_hint(&url("https://b.example/x")).unwrap();
        assert!(hint.contains("--tunnel https://b.example=http://127.0.0.1:PORT"));
        assert!(global.unmapped_hint(&url("http://127.0.0.1:9/x")).is_none());
        assert!(global.unmapped_hint(&url("https://a.example/x")).is_none());
    }
}
