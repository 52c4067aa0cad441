//! Hostile apps (`--misbehave huge_twiml=…` and friends): what a broken or malicious app
//! can send a caller — oversized and slow TwiML, redirect loops, a huge `<Play>`, floods of
//! marks or media, one enormous message. A caller must survive each with a named outcome
//! and bounded memory; these make that testable. Every body is streamed from a few shared
//! buffers, so the bot itself stays small whatever it sends.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::Message;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, StreamExt, stream};

use crate::misbehave::Behaviour;

/// Size of a [`Behaviour::HugeTwiml`] body: 100 MiB.
pub const HUGE_TWIML_BYTES: usize = 100 << 20;
/// How often a [`Behaviour::SlowTwiml`] body yields its next byte.
pub const SLOW_TWIML_BYTE_EVERY: Duration = Duration::from_secs(1);
/// Size of the WAV a [`Behaviour::HugePlay`] TwiML plays: 200 MiB.
pub const HUGE_PLAY_BYTES: usize = 200 << 20;
/// Marks a [`Behaviour::MarkFlood`] stream sends.
pub const MARK_FLOOD: u64 = 200_000;
/// Size of the one message a [`Behaviour::HugeFrame`] stream sends: 10 MiB.
pub const HUGE_FRAME_BYTES: usize = 10 << 20;
/// Media frames a [`Behaviour::MediaFlood`] stream sends: one hour of 20 ms frames.
pub const MEDIA_FLOOD_FRAMES: u64 = 180_000;
/// The route of the [`Behaviour::HugePlay`] audio.
pub(crate) const HUGE_PLAY_PATH: &str = "/hostile/huge.wav";

/// One 20 ms frame of μ-law silence (160 × 0xFF), base64.
const MEDIA_FLOOD_PAYLOAD: &str = concat!(
    "////////////////////////////////////////////////////////////////////////////////////////////////////",
    "////////////////////////////////////////////////////////////////////////////////////////////////////",
    "////////////",
    "/w=="
);
/// Chunk size of the streamed bodies.
const CHUNK: usize = 64 << 10;
/// Flush the socket after this many flood messages: bursts, not one write per message.
const FLOOD_BATCH: u64 = 256;

/// A `200 text/xml` body of [`HUGE_TWIML_BYTES`]: `<Response>` and then `<Say>`s that never
/// end in `</Response>`.
pub(crate) fn huge_twiml() -> Response {
    let head = Bytes::from_static(br#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
    let say = Bytes::from(
        "<Say>hostile</Say>"
            .repeat(CHUNK / "<Say>hostile</Say>".len())
            .into_bytes(),
    );
    let chunks = (HUGE_TWIML_BYTES - head.len()) / say.len();
    let body = stream::iter(
        std::iter::once(head)
            .chain(std::iter::repeat_n(say, chunks))
            .map(Ok::<_, std::io::Error>),
    );
    xml(Body::from_stream(body))
}

/// A `200 text/xml` whose well-formed body arrives one byte per [`SLOW_TWIML_BYTE_EVERY`].
pub(crate) fn slow_twiml() -> Response {
    const DOC: &[u8] =
        br#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>slow</Say></Response>"#;
    let body = stream::unfold(0usize, |i| async move {
        if i >= DOC.len() {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(SLOW_TWIML_BYTE_EVERY).await;
        }
        Some((
            Ok::<_, std::io::Error>(Bytes::from_static(&DOC[i..=i])),
            i + 1,
        ))
    });
    xml(Body::from_stream(body))
}

/// TwiML that redirects back to `voice_url`, whose answer is this again.
pub(crate) fn redirect_loop(voice_url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Redirect method="POST">{voice_url}</Redirect></Response>"#
    )
}

/// `GET /hostile/huge.wav`: a valid 8 kHz 16-bit mono WAV header declaring
/// [`HUGE_PLAY_BYTES`], then that much silence.
pub(crate) async fn huge_wav() -> Response {
    let data = (HUGE_PLAY_BYTES - 44) as u32;
    let mut head = Vec::with_capacity(44);
    head.extend_from_slice(b"RIFF");
    head.extend_from_slice(&(data + 36).to_le_bytes());
    head.extend_from_slice(b"WAVEfmt ");
    head.extend_from_slice(&16u32.to_le_bytes());
    head.extend_from_slice(&1u16.to_le_bytes()); // PCM
    head.extend_from_slice(&1u16.to_le_bytes()); // mono
    head.extend_from_slice(&8000u32.to_le_bytes());
    head.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    head.extend_from_slice(&2u16.to_le_bytes()); // block align
    head.extend_from_slice(&16u16.to_le_bytes());
    head.extend_from_slice(b"data");
    head.extend_from_slice(&data.to_le_bytes());
    let zeros = Bytes::from(vec![0u8; CHUNK]);
    let chunks = data as usize / CHUNK;
    let body = stream::iter(
        std::iter::once(Bytes::from(head))
            .chain(std::iter::repeat_n(zeros, chunks))
            .map(Ok::<_, std::io::Error>),
    );
    (
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CONTENT_LENGTH, &(44 + chunks * CHUNK).to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Sends `fault`'s flood on `socket` for stream `stream_sid`, while reading (and dropping)
/// whatever the caller sends meanwhile, as an app with separate read and write tasks does:
/// the flood tests how the caller copes with the volume, not a deadlock of two peers that
/// each stop reading while their write waits.
pub(crate) async fn flood<S, E>(
    socket: &mut S,
    fault: Behaviour,
    stream_sid: &str,
) -> Result<(), S::Error>
where
    S: Sink<Message> + futures_util::Stream<Item = Result<Message, E>> + Unpin,
{
    tracing::info!(stream_sid, misbehaviour = %fault, "flooding the caller");
    let (mut tx, mut rx) = (&mut *socket).split();
    let send = async move {
        match fault {
            Behaviour::HugeFrame => {
                let pad = "A".repeat(HUGE_FRAME_BYTES);
                let msg = format!(
                    r#"{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{pad}"}}}}"#
                );
                tx.send(Message::Text(msg.into())).await
            }
            Behaviour::MarkFlood => {
                for i in 0..MARK_FLOOD {
                    let msg = format!(
                        r#"{{"event":"mark","streamSid":"{stream_sid}","mark":{{"name":"flood-{i}"}}}}"#
                    );
                    tx.feed(Message::Text(msg.into())).await?;
                    if i % FLOOD_BATCH == FLOOD_BATCH - 1 {
                        tx.flush().await?;
                    }
                }
                tx.flush().await
            }
            Behaviour::MediaFlood => {
                let msg = format!(
                    r#"{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{MEDIA_FLOOD_PAYLOAD}"}}}}"#
                );
                for i in 0..MEDIA_FLOOD_FRAMES {
                    tx.feed(Message::Text(msg.clone().into())).await?;
                    if i % FLOOD_BATCH == FLOOD_BATCH - 1 {
                        tx.flush().await?;
                    }
                }
                tx.flush().await
            }
            _ => Ok(()),
        }
    };
    let drain = async move {
        while let Some(Ok(_)) = rx.next().await {}
        // The caller is gone: the flood's next write fails and ends it.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        sent = send => sent,
        () = drain => Ok(()),
    }
}

fn xml(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_messages_are_valid_app_messages() {
        use dialtone_protocol::media::{AppMessage, parse_app_message};
        let media = format!(
            r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{MEDIA_FLOOD_PAYLOAD}"}}}}"#
        );
        match parse_app_message(&media, "MZ1").unwrap() {
            AppMessage::Media { payload } => assert_eq!(payload, vec![0xFF; 160]),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn bodies_have_their_documented_sizes() {
        // Counted chunk by chunk: the bodies are never held whole.
        let size = |r: Response| async move {
            let mut chunks = r.into_body().into_data_stream();
            let mut n = 0;
            while let Some(chunk) = chunks.next().await {
                n += chunk.unwrap().len();
            }
            n
        };
        let twiml = size(huge_twiml()).await;
        assert!(twiml <= HUGE_TWIML_BYTES && twiml > HUGE_TWIML_BYTES - CHUNK);
        let wav = size(huge_wav().await).await;
        assert!(wav <= HUGE_PLAY_BYTES && wav > HUGE_PLAY_BYTES - CHUNK);
    }
}
