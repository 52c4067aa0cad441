//! What one call needs: where the app is, who calls whom, and what the caller does.

use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_protocol::webhook::Direction;

/// HTTP method for TwiML requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMethod {
    /// Form-encoded body (Twilio's default).
    #[default]
    Post,
    /// Parameters appended to the query string.
    Get,
}

impl HttpMethod {
    /// `POST` or `GET`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Post => "POST",
            HttpMethod::Get => "GET",
        }
    }
}

impl From<HttpMethod> for http::Method {
    fn from(m: HttpMethod) -> Self {
        match m {
            HttpMethod::Post => http::Method::POST,
            HttpMethod::Get => http::Method::GET,
        }
    }
}

impl From<dialtone_twiml::Method> for HttpMethod {
    fn from(m: dialtone_twiml::Method) -> Self {
        match m {
            dialtone_twiml::Method::Get => HttpMethod::Get,
            dialtone_twiml::Method::Post => HttpMethod::Post,
        }
    }
}

/// Where the caller's audio timeline starts: what `CallerScript::audio` offset zero is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerAudioStart {
    /// Each stream's start: every stream's inbound track carries `audio` from its first
    /// frame, and the caller hangs up `audio + tail` after the first stream's start. What
    /// `dialtone call` and `load` do: a WAV spoken into the app's stream.
    #[default]
    StreamStart,
    /// The answer: the caller talks from the moment the call is answered, stream or not, as
    /// the caller leg of a two-leg `dialtone serve` call does. A stream whose `start` goes
    /// out `d` after the answer carries `audio` from offset `d` (rounded down to a 20 ms
    /// frame) on: what was said before is lost, as on Twilio, and turn ground truth is
    /// shifted the same way (a turn that began before the stream opened is not reported).
    /// The caller hangs up `audio + tail` after the answer, whether or not a stream is open.
    /// Virtual time (`fast`) has no answer instant to count from: there this acts as
    /// `StreamStart`.
    Answer,
}

/// What the simulated caller does during the call.
#[derive(Debug, Clone)]
pub struct CallerScript {
    /// What the caller says into every stream's inbound track, from the instant `start`
    /// names; μ-law silence follows once it is over.
    pub audio: Arc<FrameSet>,
    /// Where `audio` starts: each stream's start (the default) or the call's answer.
    pub start: CallerAudioStart,
    /// How long the caller stays on the line after its audio ends before hanging up.
    pub tail: Duration,
    /// Digits the caller keys at `<Gather>` prompts, consumed in order.
    pub gather_digits: String,
    /// `dtmf` messages sent on a bidirectional stream at offsets from its start.
    pub stream_dtmf: Vec<(Duration, char)>,
    /// Ground truth of `audio`: when each caller turn's speech starts and ends, and its
    /// words. Empty when unknown.
    pub turns: Vec<dialtone_corpus::Turn>,
    /// A caller talking live (the softphone): its audio, from the answer, replaces `audio`
    /// (streams carry its jitter-buffered slots), its keys reach `<Gather>` and
    /// bidirectional streams as they are pressed, it hears the call as it goes, and it hangs
    /// up when it says so (no hang-up after `audio + tail`). Needs `start = Answer`.
    pub live: Option<std::sync::Arc<crate::live::LiveCaller>>,
}

/// Everything needed to place one call.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// The app's voice webhook.
    pub url: String,
    /// Method for the voice webhook.
    pub method: HttpMethod,
    /// Inline TwiML to start from instead of requesting `url` (REST `Twiml`); `url` is then
    /// only the base for relative URLs.
    pub twiml: Option<String>,
    /// Requested when the voice URL fails (Twilio's `VoiceFallbackUrl`).
    pub fallback_url: Option<String>,
    /// Account the call belongs to.
    pub account_sid: String,
    /// Auth token that signs every request.
    pub auth_token: String,
    /// Caller number.
    pub from: String,
    /// Called number.
    pub to: String,
    /// `inbound` for a call to the app's number (the default).
    pub direction: Direction,
    /// Call SID to use; a random one when `None`.
    pub call_sid: Option<String>,
    /// `ParentCallSid` of its requests: the call that dialed it (a `<Number url>` whisper).
    pub parent_call_sid: Option<String>,
    /// The caller's behaviour.
    pub caller: CallerScript,
    /// The call is hung up after this long, whatever happens.
    pub max_duration: Duration,
    /// Twilio's timeout for TwiML requests (15 s).
    pub webhook_timeout: Duration,
    /// Failure when a bidirectional stream gets no app audio within this; `None` disables.
    pub no_audio_timeout: Option<Duration>,
    /// Keep what the caller heard (and what it sent) for writing WAVs.
    pub record: bool,
    /// Write every exchange of the call here (`--capture`).
    pub capture: Option<std::sync::Arc<crate::capture::Capture>>,
    /// Makes everything random about the call reproducible: its SIDs (unless `call_sid` is
    /// set) and its fault schedule.
    pub seed: Option<u64>,
    /// Faults to inject (`--faults`); scheduled from `seed` (a random one, reported in the
    /// timeline, when unset).
    pub faults: Option<Arc<crate::faults::FaultSpec>>,
    /// Virtual time (`--fast`): frames carry their real timestamps but go out as fast as
    /// the app reads them; `<Say>`, `<Play>` and `<Pause>` take no time.
    pub fast: bool,
    /// How `<ConversationRelay>`'s simulated recognizer and synthesizer behave.
    pub relay_speech: crate::relay::SpeechModel,
    /// Public origins mapped to local ones (`--tunnel`): every URL the call requests (voice,
    /// fallback, action, redirect, `<Play>`, streams) whose origin is mapped is connected to
    /// the local origin, signed over and naming the public URL.
    pub tunnels: Arc<dialtone_net::Tunnels>,
    /// Where every stream's frame lateness (µs) goes, instead of a histogram per stream: a
    /// load run's thousands of calls share one (their reports' per-stream lateness is then
    /// empty).
    pub frame_lateness: Option<FrameLateness>,
    /// Keep the call's steps for its report ([`crate::CallReport::timeline`], bounded).
    /// A load run's calls turn it off: their steps go only to the live sink, and the
    /// report's timeline is empty (`timeline_omitted` counts the steps).
    pub keep_timeline: bool,
    /// What stands behind the numbers `<Dial>` calls: hosted apps and simulated callees.
    pub directory: Arc<dyn crate::dial::Directory>,
    /// How many dialed apps deep this call is (0 for a call placed directly).
    pub dial_depth: u8,
    /// Seeded word errors of the simulated recognizer (speech `<Gather>`, transcriptions);
    /// `None`: the caller's words come back exactly.
    pub word_errors: Option<crate::speech::WordErrors>,
    /// Where recordings the call makes (`<Dial record>`) are kept and served; `None`: they
    /// are made but not kept (no `RecordingUrl`).
    pub recordings: Option<Arc<dyn crate::recordings::RecordingStore>>,
}

/// A histogram of frame lateness (µs) shared by many calls.
pub type FrameLateness = Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>;

impl CallConfig {
    /// A config with Twilio's defaults for everything but the app URL and the caller's audio.
    pub fn new(url: impl Into<String>, audio: Arc<FrameSet>) -> Self {
        Self {
            url: url.into(),
            method: HttpMethod::Post,
            twiml: None,
            fallback_url: None,
            account_sid: DEFAULT_ACCOUNT_SID.to_string(),
            auth_token: DEFAULT_AUTH_TOKEN.to_string(),
            from: "+15005550006".into(),
            to: "+15005550001".into(),
            direction: Direction::Inbound,
            call_sid: None,
            parent_call_sid: None,
            caller: CallerScript {
                audio,
                start: CallerAudioStart::StreamStart,
                tail: Duration::from_secs(2),
                gather_digits: String::new(),
                stream_dtmf: Vec::new(),
                turns: Vec::new(),
                live: None,
            },
            max_duration: Duration::from_secs(4 * 3600),
            webhook_timeout: Duration::from_secs(15),
            no_audio_timeout: Some(Duration::from_secs(10)),
            record: false,
            capture: None,
            seed: None,
            faults: None,
            fast: false,
            relay_speech: crate::relay::SpeechModel::default(),
            tunnels: Arc::default(),
            frame_lateness: None,
            keep_timeline: true,
            directory: Arc::new(crate::dial::Numbers::simulated(
                crate::dial::SimulatedCallee::answering(Arc::new(crate::executor::tone_frames(
                    Duration::from_secs(2),
                ))),
            )),
            dial_depth: 0,
            recordings: None,
            word_errors: None,
        }
    }
}

/// The account dialtone uses when none is configured.
pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
/// The auth token dialtone signs with when none is configured.
pub const DEFAULT_AUTH_TOKEN: &str = "dialtone-local-auth-token";

/// The longest duration any flag, scenario field or fault key takes: 7 days (`168h`). Longer
/// than any soak run or call (Twilio ends a call at 4 h unless told otherwise), and small
/// enough that every deadline built from one (`now + d`, sums of two, µs counts) fits.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses `20ms`, `1.5s`, `2m`, `1h` or plain seconds, from 0 to [`MAX_DURATION`]: the one
/// duration parser of flags, scenario files and fault specs. An error says why in words
/// (not a number, negative, too long); it never panics, whatever the text.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| !v.is_nan())
        .ok_or_else(|| format!("{s:?} is not a duration (try 500ms, 2s, 1.5m)"))?;
    if v < 0.0 {
        return Err(format!("{s:?} is negative: a duration is 0 or more"));
    }
    let secs = v * mult;
    let too_long = || format!("{s:?} is longer than the maximum, 168h (7 days)");
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(too_long());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| too_long())
}

/// [`parse_duration`], and more than zero: for timeouts and bounds where 0 would fail every
/// call at once instead of meaning "none".
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!(
            "{:?} is zero: this needs a duration above 0",
            s.trim()
        ));
    }
    Ok(d)
}

/// Parses `TIME:DIGITS` (e.g. `2s:1`, `3.5:42#`): digits sent 100 ms apart from TIME on.
pub fn parse_timed_dtmf(s: &str) -> Result<Vec<(Duration, char)>, String> {
    let (time, digits) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected TIME:DIGITS, e.g. 2s:1"))?;
    let at = parse_duration(time)?;
    if digits.is_empty() {
        return Err(format!("{s:?}: no digits after ':'"));
    }
    digits
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if is_dtmf(c) {
                Ok((at + Duration::from_millis(100 * i as u64), c))
            } else {
                Err(format!("{s:?}: {c:?} is not a DTMF digit (0-9 * # A-D)"))
            }
        })
        .collect()
}

/// Validates digits keyed at `<Gather>`.
pub fn parse_digits(s: &str) -> Result<String, String> {
    match s.chars().find(|&c| !is_dtmf(c)) {
        Some(c) => Err(format!("{c:?} is not a DTMF digit (0-9 * # A-D)")),
        None => Ok(s.to_string()),
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A' | 'B' | 'C' | 'D')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms").unwrap(), Duration::from_millis(20));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration("168h").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn hostile_durations_are_errors_in_words_never_panics() {
        for (text, why) in [
            ("1e20s", "longer than the maximum"),
            ("1e20", "longer than the maximum"),
            ("1e300h", "longer than the maximum"),
            ("169h", "longer than the maximum"),
            ("604800.001s", "longer than the maximum"),
            ("inf", "longer than the maximum"),
            ("infs", "longer than the maximum"),
            ("nan", "not a duration"),
            ("NaNms", "not a duration"),
            ("-1", "negative"),
            ("-inf", "negative"),
            ("", "not a duration"),
        ] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
        assert!(parse_positive_duration("0s").unwrap_err().contains("zero"));
        assert!(parse_positive_duration("1e20s").is_err());
        assert_eq!(
            parse_positive_duration("1ms").unwrap(),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn timed_dtmf() {
        let v = parse_timed_dtmf("2s:12").unwrap();
        assert_eq!(
            v,
            vec![
                (Duration::from_secs(2), '1'),
                (Duration::from_millis(2100), '2')
            ]
        );
        assert!(parse_timed_dtmf("2s").is_err());
        assert!(parse_timed_dtmf("2s:").is_err());
        assert!(parse_timed_dtmf("2s:x").is_err());
        assert!(parse_digits("12#").is_ok());
        assert!(parse_digits("1e").is_err());
    }
}
