//! Deliberate faults, so a caller (dialtone's load runs, its replay) can be tested against
//! an app that fails the ways real apps do: HTTP 500s, invalid TwiML, a refused WebSocket
//! upgrade, a connection dropped mid-call, a handler that stops reading, a handler that
//! crashes on a duplicated media frame, a VAD that splits turns and a reply that talks over
//! the caller; and, in relay mode ([`crate::BotConfig::relay`]), a ConversationRelay app that
//! is slow to its first token, floods tokens, never ends an answer, closes mid-answer or sends
//! malformed messages.
//!
//! Which faults apply where: the webhook's (`http500`, `bad_twiml`, `huge_twiml`,
//! `slow_twiml`, `redirect_loop`, `huge_play`) and the upgrade's (`refuse_upgrade`,
//! `stuck_upgrade`) in both modes; the Media Streams ones (`abrupt_close`, `never_read`,
//! `mute`, `split_vad`, `talk_over`, `mark_flood`, `huge_frame`, `media_flood`,
//! `crash_on_duplicate`) only on `/media`; the relay ones (`slow_first_token`, `token_flood`,
//! `never_last`, `close_mid_turn`, `malformed`, [`Behaviour::relay_only`]) only on `/relay`. A
//! call drawn for a fault that does not apply to its mode behaves.
//!
//! A spec like `http500=0.1,bad_twiml=0.1,never_read=0.05,crash_on_duplicate` gives each
//! per-call fault a fraction of calls. Which call gets which fault is a pure function of its
//! `CallSid` ([`call_point`] → cumulative fractions in [`Behaviour::ALL`] order), so a seeded
//! load run hits the same calls every time and a test can predict every call's outcome.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use dialtone_protocol::media::{self, TwilioMessage};

/// A per-call fault. The order of [`Behaviour::ALL`] is the order fractions are stacked in
/// on `[0, 1)`, whatever order the spec lists them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// The voice webhook answers `500 Internal Server Error` with a short plain-text body.
    Http500,
    /// The voice webhook answers `200 text/xml` with TwiML that is not well-formed (an
    /// unclosed `<Say>`): Twilio's 12100.
    BadTwiml,
    /// The TwiML is fine, but the `<Stream>` URL carries `?misbehave=refuse_upgrade` and the
    /// `/media` upgrade for it answers `403`.
    RefuseUpgrade,
    /// After ~1 s of media (50 inbound frames) the app drops the TCP connection without a
    /// WebSocket close frame.
    AbruptClose,
    /// After `start` the app never reads the socket again and holds it open (for
    /// [`NEVER_READ_HOLD`] at most, or until the server shuts down).
    NeverRead,
    /// The app reads every message and never answers: no audio, no marks (dialtone's
    /// "no audio back"). Also a deterministic target: what dialtone sends to it depends on
    /// nothing the app does.
    Mute,
    /// The VAD re-fires inside a turn: [`SPLIT_VAD_AFTER_MS`] after a turn's onset, on a
    /// voiced frame of the still-open turn, the bot reports a second `vad.speech_start`
    /// (as a VAD with a short hangover does over a pause). Replies are unchanged.
    SplitVad,
    /// The bot replies [`TALK_OVER_AFTER_MS`] after a turn's onset, while the caller is
    /// still speaking, and not at the turn's end (turns too short to reach that point are
    /// answered at their end as usual). It sends no `clear` for it: talk-over.
    TalkOver,
    /// Hostile: the voice webhook answers `200 text/xml` with a body of
    /// [`crate::hostile::HUGE_TWIML_BYTES`] that never closes `<Response>`, streamed.
    HugeTwiml,
    /// Hostile: the voice webhook sends its headers, then one byte of TwiML per
    /// [`crate::hostile::SLOW_TWIML_BYTE_EVERY`]: slower than any webhook timeout.
    SlowTwiml,
    /// Hostile: every TwiML document of the call is `<Redirect>` back to `/voice`.
    RedirectLoop,
    /// Hostile: the TwiML `<Play>`s a WAV of [`crate::hostile::HUGE_PLAY_BYTES`], streamed,
    /// before connecting the stream.
    HugePlay,
    /// Hostile: the `<Stream>` URL carries `?misbehave=stuck_upgrade` and that upgrade is
    /// never answered (held like a `never_read` socket).
    StuckUpgrade,
    /// Hostile: right after its first reply, the app sends [`crate::hostile::MARK_FLOOD`]
    /// marks as fast as the socket takes them, then behaves.
    MarkFlood,
    /// Hostile: right after its first reply, the app sends one text message of
    /// [`crate::hostile::HUGE_FRAME_BYTES`], then behaves.
    HugeFrame,
    /// Hostile: right after its first reply, the app sends
    /// [`crate::hostile::MEDIA_FLOOD_FRAMES`] media frames (an hour of audio) as fast as the
    /// socket takes them, then behaves.
    MediaFlood,
    /// Relay mode only: the first token of every answer comes
    /// [`crate::relay::SLOW_FIRST_TOKEN`] (3 s) after the prompt instead of the think time.
    SlowFirstToken,
    /// Relay mode only: the first answer is [`crate::relay::TOKEN_FLOOD`] (20,000) tokens sent
    /// as fast as the socket takes them (the last with `last: true`); then the bot behaves.
    TokenFlood,
    /// Relay mode only: no answer ever carries `last: true`.
    NeverLast,
    /// Relay mode only: after [`crate::relay::CLOSE_AFTER_TOKENS`] (2) tokens of the first
    /// answer the bot closes the socket (close 1000) without `end`.
    CloseMidTurn,
    /// Relay mode only: right after each answer's first token the bot sends
    /// [`crate::relay::MALFORMED_MESSAGES`]: an unknown type (`txet`), a `text` without
    /// `token`, and text that is not JSON.
    Malformed,
}

impl Behaviour {
    /// Every per-call fault, in stacking order.
    /// New faults go last, so an existing spec keeps choosing the same calls.
    pub const ALL: [Behaviour; 21] = [
        Behaviour::Http500,
        Behaviour::BadTwiml,
        Behaviour::RefuseUpgrade,
        Behaviour::AbruptClose,
        Behaviour::NeverRead,
        Behaviour::Mute,
        Behaviour::SplitVad,
        Behaviour::TalkOver,
        Behaviour::HugeTwiml,
        Behaviour::SlowTwiml,
        Behaviour::RedirectLoop,
        Behaviour::HugePlay,
        Behaviour::StuckUpgrade,
        Behaviour::MarkFlood,
        Behaviour::HugeFrame,
        Behaviour::MediaFlood,
        Behaviour::SlowFirstToken,
        Behaviour::TokenFlood,
        Behaviour::NeverLast,
        Behaviour::CloseMidTurn,
        Behaviour::Malformed,
    ];

    /// The spec key: `http500`, `bad_twiml`, `refuse_upgrade`, `abrupt_close`, `never_read`,
    /// `mute`, `split_vad`, `talk_over`, and the hostile `huge_twiml`, `slow_twiml`,
    /// `redirect_loop`, `huge_play`, `stuck_upgrade`, `mark_flood`, `huge_frame`,
    /// `media_flood`, and the relay mode's `slow_first_token`, `token_flood`, `never_last`,
    /// `close_mid_turn`, `malformed`.
    pub fn key(self) -> &'static str {
        match self {
            Behaviour::Http500 => "http500",
            Behaviour::BadTwiml => "bad_twiml",
            Behaviour::RefuseUpgrade => "refuse_upgrade",
            Behaviour::AbruptClose => "abrupt_close",
            Behaviour::NeverRead => "never_read",
            Behaviour::Mute => "mute",
            Behaviour::SplitVad => "split_vad",
            Behaviour::TalkOver => "talk_over",
            Behaviour::HugeTwiml => "huge_twiml",
            Behaviour::SlowTwiml => "slow_twiml",
            Behaviour::RedirectLoop => "redirect_loop",
            Behaviour::HugePlay => "huge_play",
            Behaviour::StuckUpgrade => "stuck_upgrade",
            Behaviour::MarkFlood => "mark_flood",
            Behaviour::HugeFrame => "huge_frame",
            Behaviour::MediaFlood => "media_flood",
            Behaviour::SlowFirstToken => "slow_first_token",
            Behaviour::TokenFlood => "token_flood",
            Behaviour::NeverLast => "never_last",
            Behaviour::CloseMidTurn => "close_mid_turn",
            Behaviour::Malformed => "malformed",
        }
    }

    /// Whether the fault is a ConversationRelay one: it acts on `/relay` sessions only, and a
    /// Media Streams call drawn for it behaves.
    pub fn relay_only(self) -> bool {
        matches!(
            self,
            Behaviour::SlowFirstToken
                | Behaviour::TokenFlood
                | Behaviour::NeverLast
                | Behaviour::CloseMidTurn
                | Behaviour::Malformed
        )
    }

    fn from_key(key: &str) -> Option<Behaviour> {
        Behaviour::ALL.into_iter().find(|b| b.key() == key)
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// How long after a turn's onset a [`Behaviour::SplitVad`] VAD fires again.
pub const SPLIT_VAD_AFTER_MS: u64 = 700;
/// How long after a turn's onset a [`Behaviour::TalkOver`] reply goes out.
pub const TALK_OVER_AFTER_MS: u64 = 300;

/// The flag that makes every stream crash on a duplicated media frame.
const CRASH_ON_DUPLICATE: &str = "crash_on_duplicate";
/// Inbound media frames an [`Behaviour::AbruptClose`] stream takes before dropping: 1 s.
pub(crate) const ABRUPT_CLOSE_AFTER_MEDIA: u64 = 50;
/// How long a [`Behaviour::NeverRead`] stream holds its socket. Bounded so a long-running
/// bot does not keep every such socket forever (it cannot see the peer leave without
/// reading); long enough to outlast any caller's stall detection.
pub const NEVER_READ_HOLD: Duration = Duration::from_secs(600);
/// The `<Stream>` URL query parameter that marks a stream's upgrade for refusal. The upgrade
/// carries no call SID, so the webhook, which knows the call, writes the verdict into the URL.
pub(crate) const UPGRADE_QUERY: &str = "misbehave";

/// Which faults the bot injects. [`Default`]: none. Parse with [`str::parse`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Misbehave {
    /// Fraction of calls per fault, indexed like [`Behaviour::ALL`]; their sum is ≤ 1.
    fractions: [f64; Behaviour::ALL.len()],
    /// Every stream tracks inbound `sequenceNumber`/`chunk` and, on a repeat, logs
    /// `crash: duplicated media frame seq=N` to stderr and drops the socket without a close
    /// frame, as an app whose handler panicked would.
    pub crash_on_duplicate: bool,
}

impl Misbehave {
    /// The fraction of calls that get `behaviour`.
    pub fn fraction(&self, behaviour: Behaviour) -> f64 {
        self.fractions[behaviour as usize]
    }

    /// True when no fault is configured: the bot behaves.
    pub fn is_none(&self) -> bool {
        !self.crash_on_duplicate && self.fractions.iter().all(|&f| f == 0.0)
    }

    /// The fault call `call_sid` gets, if any.
    pub fn for_call(&self, call_sid: &str) -> Option<Behaviour> {
        let point = call_point(call_sid);
        let mut upper = 0.0;
        for b in Behaviour::ALL {
            let f = self.fraction(b);
            upper += f;
            // `f > 0` keeps a zero-fraction fault from claiming a point on its boundary.
            if f > 0.0 && point < upper {
                return Some(b);
            }
        }
        None
    }
}

/// Where a call falls on `[0, 1)`: FNV-1a over the SID's bytes, then the SplitMix64
/// finalizer so SIDs differing in one trailing digit spread over the whole range. A fixed
/// algorithm (not `std`'s hasher, which may change between releases) so the choice is the
/// same in every build.
pub fn call_point(call_sid: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in call_sid.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // The top 53 bits fill an f64's mantissa exactly: uniform, and never 1.0.
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Why a `--misbehave` spec was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MisbehaveError {
    /// A key that is neither a fault nor `crash_on_duplicate`.
    #[error(
        "unknown misbehaviour `{0}` (expected http500, bad_twiml, refuse_upgrade, abrupt_close, never_read, mute, split_vad, talk_over, huge_twiml, slow_twiml, redirect_loop, huge_play, stuck_upgrade, mark_flood, huge_frame, media_flood, slow_first_token, token_flood, never_last, close_mid_turn, malformed or crash_on_duplicate)"
    )]
    UnknownKey(String),
    /// A fault given without `=FRACTION`.
    #[error("`{0}` needs a fraction of calls, e.g. `{0}=0.1`")]
    MissingFraction(String),
    /// A fraction that is not a number in `[0, 1]`.
    #[error("`{key}={value}`: the fraction must be a number from 0 to 1")]
    BadFraction {
        /// The fault.
        key: String,
        /// What was given.
        value: String,
    },
    /// `crash_on_duplicate=…`.
    #[error("`{key}={value}`: `{key}` is a flag and takes no value")]
    FlagWithValue {
        /// The flag.
        key: String,
        /// What was given.
        value: String,
    },
    /// The same key twice.
    #[error("`{0}` is given twice")]
    Repeated(String),
    /// An empty entry (`a=0.1,,b=0.1` or a trailing comma).
    #[error("empty entry in `{0}`")]
    EmptyEntry(String),
    /// More than every call.
    #[error("the fractions add up to {0}, more than 1 (all calls)")]
    OverOne(f64),
}

impl FromStr for Misbehave {
    type Err = MisbehaveError;

    /// `key=fraction` and flags, comma-separated; `""` or `none` for no faults.
    fn from_str(spec: &str) -> Result<Self, MisbehaveError> {
        let mut out = Misbehave::default();
        let spec = spec.trim();
        if spec.is_empty() || spec == "none" {
            return Ok(out);
        }
        let mut seen = [false; Behaviour::ALL.len()];
        for entry in spec.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(MisbehaveError::EmptyEntry(spec.to_owned()));
            }
            let (key, value) = match entry.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (entry, None),
            };
            if key == CRASH_ON_DUPLICATE {
                if let Some(value) = value {
                    return Err(MisbehaveError::FlagWithValue {
                        key: key.to_owned(),
                        value: value.to_owned(),
                    });
                }
                if out.crash_on_duplicate {
                    return Err(MisbehaveError::Repeated(key.to_owned()));
                }
                out.crash_on_duplicate = true;
                continue;
            }
            let behaviour =
                Behaviour::from_key(key).ok_or_else(|| MisbehaveError::UnknownKey(key.into()))?;
            let value = value.ok_or_else(|| MisbehaveError::MissingFraction(key.into()))?;
            let fraction = value
                .parse::<f64>()
                .ok()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| MisbehaveError::BadFraction {
                    key: key.to_owned(),
                    value: value.to_owned(),
                })?;
            if std::mem::replace(&mut seen[behaviour as usize], true) {
                return Err(MisbehaveError::Repeated(key.to_owned()));
            }
            out.fractions[behaviour as usize] = fraction;
        }
        let sum: f64 = out.fractions.iter().sum();
        // A little slack so `0.7,0.2,0.1` (0.9999999999999999 or 1.0000000000000002) passes.
        if sum > 1.0 + 1e-9 {
            return Err(MisbehaveError::OverOne(sum));
        }
        Ok(out)
    }
}

impl fmt::Display for Misbehave {
    /// The canonical spec (faults in stacking order), `none` when nothing is configured.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        let mut parts: Vec<String> = Behaviour::ALL
            .into_iter()
            .filter(|&b| self.fraction(b) > 0.0)
            .map(|b| format!("{}={}", b.key(), self.fraction(b)))
            .collect();
        if self.crash_on_duplicate {
            parts.push(CRASH_ON_DUPLICATE.to_owned());
        }
        f.write_str(&parts.join(","))
    }
}

/// What the stream driver must do after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Carry on as a well-behaved app.
    Continue,
    /// Drop the connection now, without a close frame.
    Drop,
    /// Stop reading and hold the socket.
    StopReading,
    /// Keep reading, send nothing.
    Mute,
    /// Carry on, with this behaviour changing what the session does (returned once, when
    /// the call's fault is decided).
    Quirk(Behaviour),
    /// Send this behaviour's flood right after the first reply, then carry on (returned
    /// once, when the call's fault is decided).
    Flood(Behaviour),
}

/// One stream's faults: decided from the call SID once `start` has been read, plus the
/// duplicate tracker when `crash_on_duplicate` is on.
#[derive(Debug)]
pub(crate) struct StreamFaults {
    config: Misbehave,
    /// `None` until the call SID is known.
    behaviour: Option<Option<Behaviour>>,
    /// Highest inbound `sequenceNumber` and `chunk` seen (Twilio's only ever grow).
    last_seq: u64,
    last_chunk: u64,
}

impl StreamFaults {
    pub(crate) fn new(config: &Misbehave) -> Self {
        Self {
            config: config.clone(),
            behaviour: None,
            last_seq: 0,
            last_chunk: 0,
        }
    }

    /// Before the session sees `text`: with `crash_on_duplicate`, a repeated inbound frame
    /// "crashes" the handler (logged to stderr, socket dropped).
    pub(crate) fn before(&mut self, text: &str) -> Action {
        if !self.config.crash_on_duplicate {
            return Action::Continue;
        }
        // A second parse, paid only by the test configuration that asks for it.
        let Ok(TwilioMessage::Media {
            sequence_number,
            chunk,
            track,
            ..
        }) = media::parse_twilio_message(text)
        else {
            return Action::Continue;
        };
        if track != "inbound" {
            return Action::Continue;
        }
        if sequence_number <= self.last_seq || chunk <= self.last_chunk {
            crash_line(sequence_number, chunk);
            return Action::Drop;
        }
        self.last_seq = sequence_number;
        self.last_chunk = chunk;
        Action::Continue
    }

    /// After the session handled a message: decide the call's fault once its SID is known,
    /// then apply it (`media` = inbound frames handled so far).
    pub(crate) fn after(&mut self, call_sid: &str, media: u64) -> Action {
        if self.behaviour.is_none() {
            if call_sid.is_empty() {
                return Action::Continue;
            }
            let b = self.config.for_call(call_sid);
            if let Some(b) = b {
                tracing::info!(call_sid, misbehaviour = %b, "misbehaving on this stream");
            }
            self.behaviour = Some(b);
            match b {
                Some(b @ (Behaviour::SplitVad | Behaviour::TalkOver)) => return Action::Quirk(b),
                Some(b @ (Behaviour::MarkFlood | Behaviour::HugeFrame | Behaviour::MediaFlood)) => {
                    return Action::Flood(b);
                }
                _ => {}
            }
        }
        match self.behaviour.flatten() {
            Some(Behaviour::NeverRead) => Action::StopReading,
            Some(Behaviour::Mute) => Action::Mute,
            Some(Behaviour::AbruptClose) if media >= ABRUPT_CLOSE_AFTER_MEDIA => Action::Drop,
            _ => Action::Continue,
        }
    }
}

/// The crash report, straight to stderr like a panic message (tests and `replay` look for
/// it); a closed stderr must not turn the simulated crash into a real one.
fn crash_line(seq: u64, chunk: u64) {
    use std::io::Write;
    tracing::error!(
        seq,
        chunk,
        "stream handler crashed (misbehave crash_on_duplicate)"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "crash: duplicated media frame seq={seq}"
    );
}

/// The `500` an [`Behaviour::Http500`] webhook answers.
pub(crate) const HTTP500_BODY: &str = "internal error (dialtone bot: misbehave http500)\n";

/// The TwiML a [`Behaviour::BadTwiml`] webhook answers: `<Say>` is never closed (12100).
pub(crate) const BAD_TWIML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "<Response><Say>misbehave bad_twiml</Response>"
);

/// True when the upgrade's query marks it for `fault` (`?misbehave=refuse_upgrade`,
/// `?misbehave=stuck_upgrade`).
pub(crate) fn upgrade_marked(query: Option<&str>, fault: Behaviour) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(k, v)| k == UPGRADE_QUERY && v == fault.key())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_protocol::media::{StreamIds, Track};

    fn parse(spec: &str) -> Result<Misbehave, MisbehaveError> {
        spec.parse()
    }

    #[test]
    fn full_spec_parses_and_prints_canonically() {
        let m = parse(
            "never_read=0.1, crash_on_duplicate,http500=0.1,bad_twiml=0.1,refuse_upgrade=0.1,abrupt_close=0.1,mute=0.1,talk_over=0.1,split_vad=0.1",
        )
        .unwrap();
        assert!(m.crash_on_duplicate);
        for b in &Behaviour::ALL[..8] {
            assert_eq!(m.fraction(*b), 0.1, "{b}");
        }
        assert_eq!(
            m.to_string(),
            "http500=0.1,bad_twiml=0.1,refuse_upgrade=0.1,abrupt_close=0.1,never_read=0.1,mute=0.1,split_vad=0.1,talk_over=0.1,crash_on_duplicate"
        );
        assert_eq!(parse(&m.to_string()).unwrap(), m);
        assert!(parse("").unwrap().is_none());
        assert_eq!(parse("none").unwrap().to_string(), "none");
        assert!(parse("0.7").is_err());
        // Floating-point sums at exactly 1 pass.
        assert!(parse("http500=0.7,bad_twiml=0.2,never_read=0.1").is_ok());
        assert!(parse("http500=1").is_ok());
        // Every key round-trips, the hostile ones included.
        for b in Behaviour::ALL {
            let one = parse(&format!("{}=0.05", b.key())).unwrap();
            assert_eq!(one.fraction(b), 0.05, "{b}");
            assert_eq!(parse(&one.to_string()).unwrap(), one);
        }
    }

    #[test]
    fn bad_specs_name_the_culprit() {
        let cases: [(&str, MisbehaveError); 8] = [
            ("http501=0.1", MisbehaveError::UnknownKey("http501".into())),
            ("http500", MisbehaveError::MissingFraction("http500".into())),
            (
                "http500=lots",
                MisbehaveError::BadFraction {
                    key: "http500".into(),
                    value: "lots".into(),
                },
            ),
            (
                "never_read=1.5",
                MisbehaveError::BadFraction {
                    key: "never_read".into(),
                    value: "1.5".into(),
                },
            ),
            (
                "bad_twiml=-0.1",
                MisbehaveError::BadFraction {
                    key: "bad_twiml".into(),
                    value: "-0.1".into(),
                },
            ),
            (
                "crash_on_duplicate=1",
                MisbehaveError::FlagWithValue {
                    key: "crash_on_duplicate".into(),
                    value: "1".into(),
                },
            ),
            (
                "http500=0.1,http500=0.2",
                MisbehaveError::Repeated("http500".into()),
            ),
            (
                "http500=0.1,",
                MisbehaveError::EmptyEntry("http500=0.1,".into()),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse(spec), Err(want), "{spec}");
        }
        let err = parse("http500=0.6,never_read=0.5").unwrap_err();
        assert!(matches!(err, MisbehaveError::OverOne(s) if (s - 1.1).abs() < 1e-9));
        assert!(err.to_string().contains("more than 1"), "{err}");
        assert!(
            parse("nan_mode=1")
                .unwrap_err()
                .to_string()
                .contains("`nan_mode`")
        );
        assert!(matches!(
            parse("http500=NaN"),
            Err(MisbehaveError::BadFraction { .. })
        ));
    }

    #[test]
    fn choice_is_deterministic_and_follows_the_fractions() {
        let m = parse("http500=0.2,never_read=0.3").unwrap();
        let sids: Vec<String> = (0..10_000u64).map(|i| format!("CA{i:032x}")).collect();
        let mut counts = [0usize; 3];
        for sid in &sids {
            assert_eq!(m.for_call(sid), m.for_call(sid));
            match m.for_call(sid) {
                Some(Behaviour::Http500) => counts[0] += 1,
                Some(Behaviour::NeverRead) => counts[1] += 1,
                None => counts[2] += 1,
                Some(other) => panic!("{other} has no share"),
            }
        }
        // 10,000 draws: each share within 2 points of its fraction.
        for (got, want) in counts.iter().zip([0.2, 0.3, 0.5]) {
            let share = *got as f64 / sids.len() as f64;
            assert!((share - want).abs() < 0.02, "{counts:?}");
        }
        assert_eq!(Misbehave::default().for_call(&sids[0]), None);
        assert!(parse("http500=1").unwrap().for_call("CA1").is_some());
    }

    #[test]
    fn a_repeated_frame_crashes_the_stream() {
        let ids = StreamIds {
            account_sid: "AC00000000000000000000000000000000".into(),
            call_sid: "CA00000000000000000000000000000001".into(),
            stream_sid: "MZ00000000000000000000000000000001".into(),
        };
        let frame = |seq, chunk| {
            media::media(
                seq,
                Track::Inbound,
                chunk,
                chunk * 20,
                dialtone_audio::frames::silence_b64(),
                &ids.stream_sid,
            )
        };
        let mut faults = StreamFaults::new(&parse("crash_on_duplicate").unwrap());
        assert_eq!(
            faults.before(&media::start(1, &ids, &[Track::Inbound], &[])),
            Action::Continue
        );
        assert_eq!(faults.before(&frame(2, 1)), Action::Continue);
        assert_eq!(faults.before(&frame(3, 2)), Action::Continue);
        assert_eq!(faults.before(&frame(3, 2)), Action::Drop);
        // A repeated chunk under a fresh sequence number is a duplicate too.
        let mut faults = StreamFaults::new(&parse("crash_on_duplicate").unwrap());
        faults.before(&frame(2, 1));
        assert_eq!(faults.before(&frame(3, 1)), Action::Drop);
        // Without the flag nothing is tracked.
        let mut calm = StreamFaults::new(&Misbehave::default());
        assert_eq!(calm.before(&frame(2, 1)), Action::Continue);
        assert_eq!(calm.before(&frame(2, 1)), Action::Continue);
    }

    #[test]
    fn stream_faults_wait_for_the_call_sid() {
        let m = parse("abrupt_close=1").unwrap();
        let mut faults = StreamFaults::new(&m);
        assert_eq!(faults.after("", 0), Action::Continue);
        assert_eq!(faults.after("CA1", 49), Action::Continue);
        assert_eq!(faults.after("CA1", 50), Action::Drop);
        let mut faults = StreamFaults::new(&parse("never_read=1").unwrap());
        assert_eq!(faults.after("CA1", 0), Action::StopReading);
        // A quirk is handed to the session once, then the stream carries on.
        let mut faults = StreamFaults::new(&parse("talk_over=1").unwrap());
        assert_eq!(faults.after("CA1", 0), Action::Quirk(Behaviour::TalkOver));
        assert_eq!(faults.after("CA1", 1), Action::Continue);
        // A relay fault does nothing to a Media Stream.
        let mut faults = StreamFaults::new(&parse("close_mid_turn=1").unwrap());
        assert_eq!(faults.after("CA1", 0), Action::Continue);
        assert_eq!(faults.after("CA1", 500), Action::Continue);
    }

    #[test]
    fn relay_faults_come_last_so_old_specs_choose_the_same_calls() {
        let relay = [
            "slow_first_token",
            "token_flood",
            "never_last",
            "close_mid_turn",
            "malformed",
        ];
        let (old, new) = Behaviour::ALL.split_at(Behaviour::ALL.len() - relay.len());
        assert_eq!(new.iter().map(|b| b.key()).collect::<Vec<_>>(), relay);
        assert!(new.iter().all(|b| b.relay_only()));
        assert!(old.iter().all(|b| !b.relay_only()));
        assert_eq!(old.last(), Some(&Behaviour::MediaFlood));
    }

    #[test]
    fn only_the_marked_upgrade_is_refused() {
        let refused = |q| upgrade_marked(q, Behaviour::RefuseUpgrade);
        assert!(refused(Some("misbehave=refuse_upgrade")));
        assert!(refused(Some("a=1&misbehave=refuse_upgrade")));
        assert!(!refused(Some("misbehave=never_read")));
        assert!(!refused(None));
        assert!(upgrade_marked(
            Some("misbehave=stuck_upgrade"),
            Behaviour::StuckUpgrade
        ));
    }
}
