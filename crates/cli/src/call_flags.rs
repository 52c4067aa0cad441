//! The flags every command that places calls shares (`call`, `load`): who signs, the called
//! number, a call's limits, faults, capture, and where dialtone listens for the app. One
//! definition, so the two commands take the same flags with the same defaults and fill a
//! `CallConfig` the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dialtone_call::{CallConfig, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN};
use dialtone_setup::{EmbeddedApp, Target, TargetOptions};

use crate::units::{parse_duration, parse_positive_duration};

/// What `call` and `load` share.
#[derive(Debug, Clone, Args)]
pub(crate) struct CallFlags {
    /// Called number (To).
    #[arg(long, default_value = "+15005550001")]
    pub(crate) to: String,
    /// Auth token that signs every request (X-Twilio-Signature).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", default_value = DEFAULT_AUTH_TOKEN, hide_env_values = true)]
    pub(crate) auth_token: String,
    /// Account SID sent as AccountSid.
    #[arg(long, env = "TWILIO_ACCOUNT_SID", default_value = DEFAULT_ACCOUNT_SID)]
    pub(crate) account_sid: String,
    /// How long the caller stays after its audio ends before hanging up.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) tail: Duration,
    /// Hang up a call after this long whatever happens.
    #[arg(long, default_value = "5m", value_parser = parse_positive_duration)]
    pub(crate) max_duration: Duration,
    /// Twilio's timeout for TwiML requests.
    #[arg(long, default_value = "15s", value_parser = parse_positive_duration)]
    pub(crate) webhook_timeout: Duration,
    /// Fail a call whose <Connect><Stream> gets no app audio within this (0 disables).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) no_audio_timeout: Duration,
    /// Inject faults on a seeded schedule (--seed), e.g. 'loss=0.02,dup=0.01,jitter=30ms,drop=8s';
    /// in a load, 'calls=0.2' puts them on a fifth of the calls (keys: docs/faults.md). The
    /// same seed gives the same frames, byte for byte.
    #[arg(long, value_name = "SPEC")]
    pub(crate) faults: Option<dialtone_call::faults::FaultSpec>,
    /// Write every exchange of every call (TwiML requests and responses, every WebSocket
    /// message both ways, with times) to FILE as JSON lines, for `dialtone replay FILE
    /// --call-sid CA…` (docs/capture.md). About 20 kB per call-second.
    #[arg(long, value_name = "FILE")]
    pub(crate) capture: Option<PathBuf>,
    /// Where dialtone accepts the app's milestone records (POST /events), matched to each
    /// call's turns (the reference app reports there by itself).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub(crate) events_listen: SocketAddr,
    /// Where dialtone serves Twilio's REST API for the calls (list, fetch, hang up with
    /// Status=completed, redirect with Url/Twiml), printed at start; point the app's Twilio
    /// client here. Loopback by default; port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub(crate) rest_listen: SocketAddr,
    /// The simulated recognizer (<ConversationRelay>, speech <Gather>, transcriptions): from
    /// the caller's true end of speech to its final result; `speechTimeout="auto"` ends
    /// speech after this much silence [default: 500ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) recognition_delay: Option<Duration>,
    /// Between partial results (<ConversationRelay partialPrompts>, <Gather
    /// partialResultCallback>, transcriptions) [default: 300ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub(crate) partial_every: Option<Duration>,
    /// Seeded recognition errors: each recognized word is substituted or deleted with this
    /// chance, 0 to 1 (speech <Gather>, transcriptions); the run's --seed picks which.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(crate) word_error_rate: Option<f64>,
    /// <ConversationRelay>: from a token's arrival to its first sound [default: 200ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) tts_latency: Option<Duration>,
    /// <ConversationRelay>: speech time per character of the app's text [default: 65ms,
    /// about 150 words a minute].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) tts_pace: Option<Duration>,
    /// Without --webhook: what the reference app dialtone starts answers with, `stream`
    /// (<Connect><Stream>: audio, VAD, barge-in) or `relay` (<Connect><ConversationRelay>:
    /// prompts answered with streamed text tokens) [default: stream].
    #[arg(long, value_enum, value_name = "APP")]
    pub(crate) embedded_app: Option<EmbeddedAppArg>,
    /// Who answers a number the app <Dial>s: `NUMBER=URL` rings that app as a hosted number
    /// (an inbound call signed with --auth-token, through the --tunnel table: it hears the
    /// caller, the caller hears it), `NUMBER=answer|busy|no-answer|failed` a simulated
    /// callee (`answer:KEYS`: it keys KEYS when a <Number url> whisper's <Gather> asks);
    /// `*=...` every other number [default: answer]. Repeatable.
    #[arg(long = "dial", value_name = "NUMBER=WHO", value_parser = parse_dial)]
    pub(crate) dial: Vec<DialArg>,
    /// How long a simulated callee rings before it answers or sounds busy.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) callee_ring: Duration,
    /// What an answering simulated callee says, a WAV [default: the built-in hello].
    #[arg(long, value_name = "FILE")]
    pub(crate) callee_audio: Option<PathBuf>,
}

/// One `--dial NUMBER=WHO`.
#[derive(Debug, Clone)]
pub(crate) struct DialArg {
    number: String,
    who: DialWho,
}

#[derive(Debug, Clone)]
enum DialWho {
    App(String),
    /// How it answers, and what it keys to a whisper.
    Callee(dialtone_call::dial::CalleeAnswer, String),
}

/// A chance, 0 to 1.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a rate from 0 to 1 (e.g. 0.1)")),
    }
}

fn parse_dial(s: &str) -> Result<DialArg, String> {
    let (number, who) = s.split_once('=').ok_or_else(|| {
        format!("{s:?}: expected NUMBER=URL or NUMBER=answer|busy|no-answer|failed")
    })?;
    let number = number.trim();
    if number.is_empty() {
        return Err(format!("{s:?}: the number is empty"));
    }
    let who = if who.starts_with("http://") || who.starts_with("https://") {
        crate::net_args::check_webhook("--dial", who).map_err(|e| e.to_string())?;
        DialWho::App(who.to_string())
    } else {
        let (answer, keys) = who.split_once(':').unwrap_or((who, ""));
        if let Some(bad) = keys
            .chars()
            .find(|c| !c.is_ascii_digit() && *c != '*' && *c != '#')
        {
            return Err(format!(
                "{s:?}: {bad:?} is not a key (KEYS are digits, * and #)"
            ));
        }
        DialWho::Callee(answer.parse()?, keys.to_string())
    };
    Ok(DialArg {
        number: number.to_string(),
        who,
    })
}

/// `--embedded-app`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EmbeddedAppArg {
    /// Media Streams.
    Stream,
    /// ConversationRelay.
    Relay,
}

impl CallFlags {
    /// Sets what these flags say on a call's (or a run's template) config.
    pub(crate) fn fill(&self, cfg: &mut CallConfig) {
        cfg.account_sid = self.account_sid.clone();
        cfg.auth_token = self.auth_token.clone();
        cfg.to = self.to.clone();
        cfg.caller.tail = self.tail;
        cfg.max_duration = self.max_duration;
        cfg.webhook_timeout = self.webhook_timeout;
        cfg.no_audio_timeout = (!self.no_audio_timeout.is_zero()).then_some(self.no_audio_timeout);
        cfg.faults = self.faults.clone().map(Arc::new);
        // Only what was given: the defaults live in SpeechModel once.
        let speech = &mut cfg.relay_speech;
        speech.recognition_delay = self.recognition_delay.unwrap_or(speech.recognition_delay);
        speech.partial_every = self.partial_every.unwrap_or(speech.partial_every);
        speech.synthesis_latency = self.tts_latency.unwrap_or(speech.synthesis_latency);
        speech.per_char = self.tts_pace.unwrap_or(speech.per_char);
        cfg.word_errors = self
            .word_error_rate
            .filter(|r| *r > 0.0)
            .map(|rate| dialtone_call::speech::WordErrors { rate, seed: 0 });
    }

    /// Who answers what the calls dial (`--dial`, `--callee-ring`, `--callee-audio`): set
    /// after `cfg`'s tunnels, which hosted apps are reached through.
    pub(crate) fn dial_book(&self, cfg: &mut CallConfig) -> anyhow::Result<()> {
        use dialtone_call::dial::{HostedApp, Numbers, SimulatedCallee};
        let audio = match &self.callee_audio {
            Some(p) => dialtone_audio::load_frames(p)
                .map_err(|e| anyhow::anyhow!("--callee-audio: {e}"))?,
            None => dialtone_corpus::caller::builtin_hello()?,
        };
        let mut default = SimulatedCallee::answering(Arc::new(audio));
        default.ring = self.callee_ring;
        let mut book = Numbers::simulated(default.clone());
        for d in &self.dial {
            match (&d.who, d.number.as_str()) {
                (DialWho::Callee(a, keys), "*") => {
                    book.default.answer = *a;
                    book.default.keys = keys.clone();
                }
                (DialWho::App(_), "*") => {
                    anyhow::bail!("--dial *=URL: a hosted app needs its own number")
                }
                (DialWho::Callee(a, keys), n) => book.callees.push((
                    n.to_string(),
                    SimulatedCallee {
                        answer: *a,
                        keys: keys.clone(),
                        ..default.clone()
                    },
                )),
                (DialWho::App(url), n) => book.apps.push((
                    n.to_string(),
                    HostedApp {
                        url: url.clone(),
                        method: dialtone_call::HttpMethod::Post,
                        fallback_url: None,
                        account_sid: self.account_sid.clone(),
                        auth_token: self.auth_token.clone(),
                        tunnels: cfg.tunnels.clone(),
                    },
                )),
            }
        }
        cfg.directory = Arc::new(book);
        Ok(())
    }

    /// Starts the target these flags ask for, calling `webhook` (`--webhook`, checked here;
    /// `None`: the reference app, speaking `--embedded-app`, which `--webhook` refuses).
    pub(crate) async fn start_target(&self, webhook: Option<&str>) -> anyhow::Result<Target> {
        if let Some(u) = webhook {
            crate::net_args::check_webhook("--webhook", u)?;
            if let Some(app) = self.embedded_app {
                let app = app.to_possible_value().map(|v| v.get_name().to_owned());
                anyhow::bail!(
                    "--embedded-app {} chooses what dialtone's own reference app speaks; with \
                     --webhook the calls go to your app and no reference app is started",
                    app.unwrap_or_default()
                );
            }
        }
        let embedded_app = match self.embedded_app {
            Some(EmbeddedAppArg::Relay) => EmbeddedApp::Relay,
            Some(EmbeddedAppArg::Stream) | None => EmbeddedApp::Stream,
        };
        let target = Target::start(TargetOptions {
            webhook,
            auth_token: &self.auth_token,
            events_listen: self.events_listen,
            capture: self.capture.as_deref(),
            embedded_app,
        })
        .await?;
        Ok(target)
    }

    /// Starts the REST API for the calls (`timelines`: keep each call's events for the web
    /// page, for a single call).
    pub(crate) async fn rest(&self, timelines: bool) -> anyhow::Result<crate::rest::RestApi> {
        crate::rest::RestApi::start(
            self.rest_listen,
            &self.account_sid,
            &self.auth_token,
            crate::rest::HISTORY,
            timelines,
        )
        .await
    }
}
