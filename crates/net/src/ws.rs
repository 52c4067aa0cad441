//! WebSocket connects routed through the tunnel table: the TCP connection (with the stream's
//! socket options) goes to the local origin, TLS when the local origin is `https`, and the
//! upgrade request names the public URL (`Host`, the signature the caller computed over it)
//! with the forwarding headers a tunnel adds.

use std::pin::Pin;
use std::task::{Context, Poll};

use dialtone_protocol::media::{MAX_APP_MESSAGE, WsViolation};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::tunnel::{Route, Tunnels};
use crate::{Net, root_cause};

/// A connection to the app: plain TCP or TLS over it.
#[derive(Debug)]
pub enum Conn {
    /// `ws://` (or a tunnel to an `http://` local origin).
    Plain(TcpStream),
    /// `wss://` (or a tunnel to an `https://` local origin).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A WebSocket to the app.
pub type Ws = WebSocketStream<Conn>;

/// Socket options of a stream connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketOptions {
    /// Kernel send buffer (the kernel doubles it); `None` leaves the system's.
    pub send_buffer: Option<u32>,
}

/// Why a WebSocket did not open.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The URL is not a ws(s) URL with a host.
    #[error("{0}")]
    BadUrl(String),
    /// DNS, TCP or TLS failed (the cause in words).
    #[error("{0}")]
    Connect(String),
    /// The app answered the upgrade with this HTTP status instead of 101.
    #[error("upgrade refused with HTTP {0}")]
    Refused(u16),
    /// The handshake failed otherwise (the cause in words).
    #[error("{0}")]
    Handshake(String),
}

/// The `X-Twilio-Signature` of a stream upgrade: over `url` as given, no parameters (Twilio
/// signs the stream URL its TwiML wrote; an upgrade has no body).
pub fn upgrade_signature(auth_token: &str, url: &str) -> String {
    use dialtone_protocol::signing;
    signing::signature(auth_token, &signing::url_to_sign(url), &[])
}

/// The headers a signed upgrade to `url` adds, for [`Net::connect_ws`].
pub fn upgrade_headers(auth_token: &str, url: &str) -> [(&'static str, String); 1] {
    [(
        dialtone_protocol::signing::HEADER,
        upgrade_signature(auth_token, url),
    )]
}

impl Net {
    /// Opens a WebSocket to `url` (as the TwiML wrote it) through `tunnels`, with `headers`
    /// (the signature) added to the upgrade. Returns the socket and the route taken.
    pub async fn connect_ws(
        &self,
        tunnels: &Tunnels,
        url: &str,
        headers: &[(&'static str, String)],
        opts: SocketOptions,
    ) -> Result<(Ws, Route), WsError> {
        let public =
            url::Url::parse(url).map_err(|e| WsError::BadUrl(format!("invalid URL ({e})")))?;
        if !matches!(public.scheme(), "ws" | "wss") {
            return Err(WsError::BadUrl(format!(
                "unsupported stream URL scheme {:?} (ws:// or wss://)",
                public.scheme()
            )));
        }
        let route = tunnels.route(&public);
        // The request names the public URL, so `Host` is the public authority.
        let mut request = url
            .into_client_request()
            .map_err(|e| WsError::BadUrl(root_cause(&e)))?;
        for (name, value) in route
            .forwarding_headers()
            .into_iter()
            .chain(headers.iter().cloned())
        {
            let value = value
                .parse()
                .map_err(|_| WsError::BadUrl(format!("header {name} is not a valid value")))?;
            request.headers_mut().insert(name, value);
        }
        let conn = self.open(&route, opts).await.map_err(|cause| {
            match tunnels.unmapped_hint(&route.public) {
                Some(hint) if !cause.starts_with("TLS") => {
                    WsError::Connect(format!("{cause}; {hint}"))
                }
                _ => WsError::Connect(cause),
            }
        })?;
        match tokio_tungstenite::client_async_with_config(request, conn, Some(ws_config())).await {
            Ok((ws, _)) => Ok((ws, route)),
            Err(tungstenite::Error::Http(resp)) => Err(WsError::Refused(resp.status().as_u16())),
            Err(e) => Err(WsError::Handshake(root_cause(&e))),
        }
    }

    /// TCP (small send buffer, no Nagle: each frame is due now), then TLS when the route's
    /// transport is TLS.
    async fn open(&self, route: &Route, opts: SocketOptions) -> Result<Conn, String> {
        let target = &route.connect;
        let host = match target.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err("the URL has no host".into()),
        };
        let tls = matches!(target.scheme(), "wss" | "https");
        let port = target.port().unwrap_or(if tls { 443 } else { 80 });
        let tcp = tcp_connect(&host, port, opts).await?;
        if !tls {
            return Ok(Conn::Plain(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        match connector.connect(name, tcp).await {
            Ok(s) => Ok(Conn::Tls(Box::new(s))),
            Err(e) => {
                Err(crate::tls::describe_tls(&e, &host).unwrap_or_else(|| format!("TLS: {e}")))
            }
        }
    }
}

async fn tcp_connect(host: &str, port: u16, opts: SocketOptions) -> Result<TcpStream, String> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        if let Some(size) = opts.send_buffer {
            let _ = socket.set_send_buffer_size(size);
        }
        match socket.connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The limits every stream socket reads under: no message or frame over
/// [`MAX_APP_MESSAGE`], so an app's junk costs a bounded buffer, not memory without end (the
/// library's defaults are 64 MiB messages and 16 MiB frames). A frame's declared length is
/// checked before its payload is read.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_APP_MESSAGE))
        .max_frame_size(Some(MAX_APP_MESSAGE))
}

/// How the app broke the protocol, when a read error says it did; `None` for a connection
/// that merely broke (reset, closed without a close frame), which is no violation.
pub fn violation(e: &tungstenite::Error) -> Option<WsViolation> {
    match e {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Some(WsViolation::TooLarge {
                size: *size as u64,
                limit: *max_size,
            })
        }
        tungstenite::Error::Utf8(_) => Some(WsViolation::NotUtf8),
        tungstenite::Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing,
        ) => None,
        tungstenite::Error::Protocol(p) => Some(WsViolation::Protocol(p.to_string())),
        _ => None,
    }
}
