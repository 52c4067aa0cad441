//! Bounded reads of what apps serve: TwiML bodies (Twilio's 64 KB limit, error 11750) and
//! `<Play>` audio (a WAV read only as far as the call can play it). The one implementation
//! every fetch of app content goes through: the engine's webhooks and `<Play>`, and the
//! caller leg of `dialtone serve`.
//!
//! Bytes are counted as they arrive, whatever `Content-Length` claims and however the body
//! is chunked, and the connection is dropped as soon as the bound is reached.

use std::time::Duration;

use dialtone_audio::wav;
use dialtone_net::{Net, Request, Tunnels};

/// Twilio's limit on a TwiML response body (error 11750: "the response body is larger than
/// 64 kB").
pub const TWIML_MAX_BYTES: usize = 64 * 1024;

/// Most bytes of one `<Play>` file read (a 5-minute 44.1 kHz stereo WAV is 53 MB): longer
/// audio plays as far as this holds, and the cut is reported.
pub const PLAY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Longest audio one `<Play>` file gives: decoded to 8 kHz, memory follows the audio's
/// length, not its bytes (a 14 MB WAV at 1 kHz 8-bit holds 4 h, over 1 GB once decoded and
/// framed). Ten minutes is about 40 MB at the peak of decoding; longer files play this much,
/// with a warning (`loop` repeats a file).
pub const PLAY_MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(600);

/// Most bytes of a `<Play>` file read before its audio starts. A WAV header is a few dozen
/// bytes; metadata chunks (LIST, bext, album art) rarely reach this.
pub const PLAY_HEADER_MAX_BYTES: usize = 1024 * 1024;

/// Why a body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// It is longer than the limit; reading stopped there.
    TooLarge,
    /// The connection failed while reading it.
    Http(reqwest::Error),
}

/// Reads a body up to `limit` bytes, so a misbehaving app cannot grow memory without
/// bound: more is [`BodyError::TooLarge`], found as soon as the bytes arrive.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Http)? {
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `<Play>` audio read under the call's bound.
#[derive(Debug)]
pub struct PlayAudio {
    /// 8 kHz mono samples.
    pub pcm: Vec<i16>,
    /// What of the file was not read (longer than the bound), if anything.
    pub truncated: Option<wav::Truncated>,
    /// Body bytes read.
    pub bytes_read: usize,
}

/// Fetches a `<Play>` WAV as Twilio does (GET, `User-Agent: TwilioProxy/1.1`) and decodes at
/// most `max` of it. The body is read only until its header is known and then only as far
/// as `max` of audio (at most [`PLAY_MAX_BYTES`]); what is not a WAV is refused from its
/// first bytes. Errors are the cause in words.
pub async fn fetch_audio(
    net: &Net,
    tunnels: &Tunnels,
    url: url::Url,
    timeout: Duration,
    max: Duration,
) -> Result<PlayAudio, String> {
    let name = url.to_string();
    let request = Request::twilio_fetch(http::Method::GET, url, timeout);
    let resp = net
        .send(tunnels, request)
        .await
        .map_err(|e| e.to_string())?;
    let route = resp.route;
    let mut resp = resp.inner;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let mut buf: Vec<u8> = Vec::new();
    // The body bytes a read bounded by `max` needs, once the header is known.
    let mut need: Option<(usize, Duration)> = None;
    let ended = loop {
        if need.is_some_and(|(n, _)| buf.len() >= n) {
            break false;
        }
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break true,
            Err(e) => return Err(net.classify(tunnels, &route, timeout, &e).to_string()),
        };
        buf.extend_from_slice(&chunk);
        if need.is_none() {
            need = match wav::scan_header(&buf, &name).map_err(|e| e.to_string())? {
                Some(h) => {
                    let (n, max) = bounded(&h, max);
                    // Once, exactly: growing by doubling would hold up to twice the bound.
                    buf.reserve_exact(n.saturating_sub(buf.len()));
                    Some((n, max))
                }
                None if buf.len() > PLAY_HEADER_MAX_BYTES => {
                    return Err(format!(
                        "no audio in the first {PLAY_HEADER_MAX_BYTES} bytes (the chunks before \
                         a WAV's audio are normally a few dozen bytes)"
                    ));
                }
                None => None,
            };
        }
    };
    drop(resp);
    let bytes_read = buf.len();
    let (need, max) = need.unwrap_or((buf.len(), max));
    // Decoding (resampling) is CPU work: off the async threads.
    let decoded = tokio::task::spawn_blocking(move || {
        if ended {
            wav::decode_8k(&buf, &name, max)
        } else {
            buf.truncate(need);
            wav::decode_head_8k(&buf, &name, max)
        }
    })
    .await
    .map_err(|e| format!("decoding failed: {e}"))?
    .map_err(|e| e.to_string())?;
    Ok(PlayAudio {
        pcm: decoded.pcm,
        truncated: decoded.truncated,
        bytes_read,
    })
}

/// The body bytes a read bounded by `max` needs, and the bound itself, lowered so that the
/// body stays within [`PLAY_MAX_BYTES`].
fn bounded(h: &wav::Header, max: Duration) -> (usize, Duration) {
    let start = h.data_start();
    let room = (PLAY_MAX_BYTES as u64).saturating_sub(start);
    let max = if h.data_to_read(max) > room {
        h.duration_of(room)
    } else {
        max
    };
    // Audio of unknown length (a streamed WAV's 0xFFFFFFFF size): one byte more shows the
    // decoder that it goes on past the bound, so the cut is reported.
    let probe = u64::from(h.data_len().is_none());
    ((start + h.data_to_read(max) + probe) as usize, max)
}
