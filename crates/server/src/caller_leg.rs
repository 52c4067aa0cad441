//! The caller leg of a two-leg call: its TwiML (the created call's `Url` or `Twiml`) turned
//! into the audio the called app hears. `<Play>` plays the WAV, `<Say>` is a voiced tone as
//! long as Twilio would speak the words (`SAY_MS_PER_WORD`), `<Pause>` is silence, `<Play
//! digits>` keys DTMF; the leg hangs up where its TwiML ends or hangs up.
//!
//! The audio's offset zero is the answer (`CallerAudioStart::Answer`): the caller talks while
//! the app greets, and a stream the app opens later carries the audio from where it is by
//! then. The engine takes a caller's audio before the call starts, so the caller leg's TwiML
//! is requested when the number is dialled rather than when the app answers; its audio
//! cannot change mid-call (a REST redirect of the caller leg is noted, not followed).

use std::time::Duration;

use dialtone_audio::{FrameSet, mulaw};
use dialtone_call::net::Request;
use dialtone_call::{HttpMethod, Net, SAY_MS_PER_WORD, Tunnels, Turn, fetch};
use dialtone_protocol::webhook::{self, CallInfo, CallStatus};
use dialtone_twiml::{Document, Verb};

/// Longest caller audio built (bounds memory whatever the TwiML says): the engine's bound
/// on one `<Play>`.
const MAX_AUDIO: Duration = fetch::PLAY_MAX_DURATION;
/// Bytes of μ-law per millisecond.
const PER_MS: usize = 8;

/// What the caller leg sends into the call.
#[derive(Debug)]
pub(crate) struct CallerAudio {
    pub(crate) frames: FrameSet,
    /// Digits keyed (`<Play digits>`), at their offsets.
    pub(crate) dtmf: Vec<(Duration, char)>,
    /// What the leg says (`<Say>`), with its words and where it is in the audio: the
    /// ground truth a ConversationRelay session prompts with and stream turns are timed from.
    pub(crate) turns: Vec<Turn>,
    /// What was approximated or skipped, for the call's timeline.
    pub(crate) notes: Vec<String>,
}

/// Requests the caller leg's TwiML as Twilio requests an answered outbound-api call's `Url`.
pub(crate) async fn fetch_twiml(
    net: &Net,
    tunnels: &Tunnels,
    token: &str,
    url: &str,
    method: HttpMethod,
    info: &CallInfo,
) -> Result<Document, String> {
    let params = webhook::voice_params(info, CallStatus::InProgress);
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let req = Request::twilio(
        method.into(),
        &parsed,
        token,
        &params,
        Duration::from_secs(15),
    )
    .map_err(|e| format!("{url}: {e}"))?;
    let resp = net
        .send(tunnels, req)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.inner.status();
    if !status.is_success() {
        return Err(format!("{url} answered HTTP {}", status.as_u16()));
    }
    // Read as the engine reads TwiML: Twilio's 64 KB limit, counted as the bytes arrive.
    let body = fetch::read_limited(resp.inner, fetch::TWIML_MAX_BYTES)
        .await
        .map_err(|e| match e {
            fetch::BodyError::TooLarge => format!(
                "{url}: TwiML response larger than {} bytes (11750)",
                fetch::TWIML_MAX_BYTES
            ),
            fetch::BodyError::Http(e) => {
                format!("{url}: {}", dialtone_call::net::root_cause(&e))
            }
        })?;
    dialtone_twiml::parse(&String::from_utf8_lossy(&body)).map_err(|e| format!("{url}: {e}"))
}

/// Renders the caller leg's TwiML into audio, at most `limit` long. `base` resolves
/// relative `<Play>` URLs.
pub(crate) async fn render(
    net: &Net,
    tunnels: &Tunnels,
    doc: &Document,
    base: &str,
    limit: Duration,
) -> CallerAudio {
    let cap = limit.min(MAX_AUDIO).as_millis() as usize * PER_MS;
    let mut r = Renderer {
        out: Vec::new(),
        dtmf: Vec::new(),
        turns: Vec::new(),
        notes: Vec::new(),
        cap,
    };
    'verbs: for node in &doc.verbs {
        let children: Vec<&Verb> = match &node.verb {
            Verb::Gather(g) => {
                r.notes.push(format!(
                    "caller leg <Gather> (line {}): its prompts play; no input is simulated",
                    node.line
                ));
                g.children.iter().map(|c| &c.verb).collect()
            }
            v => vec![v],
        };
        for verb in children {
            if !r.verb(net, tunnels, verb, base, node.line).await || r.full() {
                break 'verbs;
            }
        }
    }
    CallerAudio {
        frames: FrameSet::from_mulaw(&r.out),
        dtmf: r.dtmf,
        turns: r.turns,
        notes: r.notes,
    }
}

struct Renderer {
    out: Vec<u8>,
    dtmf: Vec<(Duration, char)>,
    turns: Vec<Turn>,
    notes: Vec<String>,
    cap: usize,
}

impl Renderer {
    fn full(&self) -> bool {
        self.out.len() >= self.cap
    }

    /// How much more audio the leg can hold.
    fn room(&self) -> Duration {
        Duration::from_millis((self.cap.saturating_sub(self.out.len()) / PER_MS) as u64)
    }

    fn now(&self) -> Duration {
        Duration::from_millis((self.out.len() / PER_MS) as u64)
    }

    fn silence(&mut self, ms: u64) {
        let n = (ms as usize * PER_MS).min(self.cap.saturating_sub(self.out.len()));
        self.out.resize(self.out.len() + n, mulaw::SILENCE);
    }

    fn pcm(&mut self, pcm: &[i16]) {
        let room = self.cap.saturating_sub(self.out.len());
        mulaw::encode_slice(&pcm[..pcm.len().min(room)], &mut self.out);
    }

    /// Renders one verb; false when the leg hangs up here.
    async fn verb(
        &mut self,
        net: &Net,
        tunnels: &Tunnels,
        verb: &Verb,
        base: &str,
        line: u32,
    ) -> bool {
        match verb {
            Verb::Say(s) => {
                let words = s.text.split_whitespace().count().max(1) as u64;
                let once = (words * SAY_MS_PER_WORD).max(500);
                // Never render more than the leg can still hold: a huge <Say> must not cost
                // memory or minutes.
                let room_ms = (self.cap.saturating_sub(self.out.len()) / PER_MS) as u64;
                let once = once.min(room_ms.max(1));
                for _ in 0..loops(s.loop_count) {
                    if self.full() {
                        break;
                    }
                    let start = self.now();
                    let tone = speech_tone(once);
                    self.pcm(&tone);
                    self.turns.push(Turn {
                        start_ms: start.as_millis() as u32,
                        end_ms: self.now().as_millis() as u32,
                        text: s.text.split_whitespace().collect::<Vec<_>>().join(" "),
                    });
                }
            }
            Verb::Pause(p) => self.silence(u64::from(p.length_secs) * 1000),
            Verb::Play(p) => match (&p.url, &p.digits) {
                (Some(src), _) => match fetch_wav(net, tunnels, base, src, self.room()).await {
                    Ok((pcm, cut)) => {
                        if let Some(cut) = cut {
                            self.notes.push(format!(
                                "caller leg <Play> {src}: {cut} (what the leg could still send)"
                            ));
                        }
                        for _ in 0..loops(p.loop_count) {
                            self.pcm(&pcm);
                        }
                    }
                    Err(e) => self.notes.push(format!("caller leg <Play> skipped: {e}")),
                },
                (None, Some(digits)) => {
                    for c in digits.chars() {
                        if c.eq_ignore_ascii_case(&'w') {
                            self.silence(500);
                        } else {
                            self.dtmf.push((self.now(), c));
                            self.silence(100);
                        }
                    }
                }
                (None, None) => {}
            },
            Verb::Hangup | Verb::Reject(_) => return false,
            Verb::Record(rec) => {
                // The caller records the app: it stays silent until Record's silence timeout
                // or maxLength would end it; the app's own words are not heard here.
                let secs = u64::from(rec.max_length_secs.min(rec.timeout_secs.max(1) * 6));
                self.notes.push(format!(
                    "caller leg <Record> (line {line}): {secs} s of silence; nothing is recorded"
                ));
                self.silence(secs * 1000);
            }
            other => self.notes.push(format!(
                "caller leg <{}> (line {line}) is not simulated; skipped",
                other.name()
            )),
        }
        true
    }
}

/// `loop="0"` means "until hang-up": once is what a caller leg can usefully send.
fn loops(n: u32) -> u32 {
    n.clamp(1, 100)
}

/// What `<Say>` sounds like from the caller: a voiced 200 Hz buzz with harmonics, shaped into
/// syllables (4 per second), loud enough for any voice-activity detector.
fn speech_tone(ms: u64) -> Vec<i16> {
    let n = ms as usize * PER_MS;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let tau = std::f32::consts::TAU;
            let voice = (tau * 200.0 * t).sin()
                + 0.5 * (tau * 400.0 * t).sin()
                + 0.25 * (tau * 800.0 * t).sin();
            let syllable = 0.55 + 0.45 * (tau * 4.0 * t).sin();
            (voice * syllable * 4000.0) as i16
        })
        .collect()
}

/// A `<Play>` WAV through the engine's bounded fetch: read no further than `room`, the audio
/// the leg can still send.
async fn fetch_wav(
    net: &Net,
    tunnels: &Tunnels,
    base: &str,
    src: &str,
    room: Duration,
) -> Result<(Vec<i16>, Option<dialtone_audio::Truncated>), String> {
    let url = url::Url::parse(base)
        .and_then(|b| b.join(src.trim()))
        .map_err(|e| format!("bad URL {src:?}: {e}"))?;
    let shown = url.to_string();
    let audio = fetch::fetch_audio(net, tunnels, url, Duration::from_secs(15), room)
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok((audio.pcm, audio.truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn say_pause_digits_and_hangup() {
        let doc = dialtone_twiml::parse(
            r#"<Response><Say>one two three</Say><Pause length="1"/><Play digits="1w2"/>
               <Hangup/><Pause length="30"/></Response>"#,
        )
        .unwrap();
        let net = Net::system();
        let a = render(
            &net,
            &Tunnels::default(),
            &doc,
            "http://127.0.0.1:9/",
            Duration::from_secs(60),
        )
        .await;
        // 1.2 s of Say, 1 s pause, 100 + 500 + 100 ms of digits; the Pause after Hangup never runs.
        assert_eq!(a.frames.duration(), Duration::from_millis(2900));
        assert_eq!(
            a.dtmf,
            [
                (Duration::from_millis(2200), '1'),
                (Duration::from_millis(2800), '2')
            ]
        );
        // The <Say> is the leg's one turn, with its words.
        assert_eq!(
            a.turns,
            [Turn {
                start_ms: 0,
                end_ms: 1200,
                text: "one two three".into()
            }]
        );
    }

    #[tokio::test]
    async fn limit_and_unreachable_play() {
        let doc = dialtone_twiml::parse(
            r#"<Response><Play>http://127.0.0.1:9/x.wav</Play><Pause length="100"/><Dial>+1</Dial></Response>"#,
        )
        .unwrap();
        let net = Net::system();
        let a = render(
            &net,
            &Tunnels::default(),
            &doc,
            "http://127.0.0.1:9/",
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(a.frames.duration(), Duration::from_secs(3));
        assert!(a.notes[0].contains("<Play> skipped"), "{:?}", a.notes);
    }

    /// Issue 12 items 4a and 4c: a hostile app on loopback that answers every request with
    /// `head` (status line and headers) and then `total` bytes whose first bytes are
    /// `start`; returns its base URL and how many body bytes it got onto the wire before
    /// the connection was dropped.
    async fn hostile(
        head: &'static str,
        start: Vec<u8>,
        total: u64,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            let (mut tcp, _) = l.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut block = vec![b'a'; 64 << 10];
            block[..start.len()].copy_from_slice(&start);
            while counter.load(Ordering::SeqCst) < total {
                if tcp.write_all(&block).await.is_err() {
                    return;
                }
                counter.fetch_add(block.len() as u64, Ordering::SeqCst);
                block[..start.len()].fill(b'a');
            }
        });
        (base, sent)
    }

    /// What the app may get onto the wire before the leg stops reading: the kernel's socket
    /// buffers, far below the 100-200 MB offered.
    const SENT_BOUND: u64 = 16 << 20;

    #[tokio::test]
    async fn a_huge_twiml_body_is_refused_at_64_kb() {
        // Before: read whole (a 100 MB body took serve from 26 to 218 MB).
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100000000\r\n\r\n";
        let (base, sent) = hostile(head, b"<Response><Say>".to_vec(), 100_000_000).await;
        let info = CallInfo::new(
            "AC1",
            "CA1",
            "+15005550006",
            "+15005550001",
            dialtone_protocol::webhook::Direction::OutboundApi,
        );
        let err = fetch_twiml(
            &Net::system(),
            &Tunnels::default(),
            "token",
            &format!("{base}/caller"),
            HttpMethod::Post,
            &info,
        )
        .await
        .unwrap_err();
        assert!(
            err.ends_with("TwiML response larger than 65536 bytes (11750)"),
            "{err}"
        );
        let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
        assert!(sent < SENT_BOUND, "the app got {sent} bytes out");
    }

    #[tokio::test]
    async fn a_huge_play_is_read_only_as_far_as_the_leg_can_send() {
        // 200 MB of 44.1 kHz 16-bit stereo behind a Content-Length of 10 GB. Before: read
        // whole (1.24 GB in one call).
        let mut wav = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x01\0\x02\0".to_vec();
        wav.extend_from_slice(&44_100u32.to_le_bytes());
        wav.extend_from_slice(&(44_100u32 * 4).to_le_bytes());
        wav.extend_from_slice(b"\x04\0\x10\0data");
        wav.extend_from_slice(&200_000_000u32.to_le_bytes());
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: audio/x-wav\r\nContent-Length: 10000000000\r\n\r\n";
        let (base, sent) = hostile(head, wav, 200_000_000).await;
        let doc = dialtone_twiml::parse("<Response><Play>/big.wav</Play></Response>").unwrap();
        let a = render(
            &Net::system(),
            &Tunnels::default(),
            &doc,
            &format!("{base}/"),
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(a.frames.duration(), Duration::from_secs(3));
        assert_eq!(a.notes.len(), 1, "{:?}", a.notes);
        assert!(
            a.notes[0].contains("1133.8 s long; only its first 3.0 s were read"),
            "{:?}",
            a.notes
        );
        let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
        assert!(sent < SENT_BOUND, "the app got {sent} bytes out");
    }
}
