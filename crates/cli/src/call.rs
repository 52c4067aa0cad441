//! `dialtone call`: one call, a live timeline of every step, a summary, and an exit code that
//! says whether the call path worked.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use dialtone_call::{
    CallConfig, CallEvent, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, Engine, HttpMethod,
};

use crate::call_text::{format_event, print_summary};
use crate::caller::CallerArgs;
use crate::units::{parse_digits, parse_duration, parse_positive_duration, parse_timed_dtmf};

/// Options of `dialtone call`.
#[derive(Debug, Args)]
pub(crate) struct CallOpts {
    /// The app's voice webhook URL. Without it, dialtone starts its reference voice app on a
    /// loopback port and calls that.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// HTTP method for the voice webhook.
    #[arg(long, default_value = "POST", value_parser = parse_method)]
    method: HttpMethod,
    /// Fallback URL requested when the voice URL fails (Twilio's VoiceFallbackUrl).
    #[arg(long, value_name = "URL")]
    fallback: Option<String>,
    /// Caller number (From).
    #[arg(long, default_value = "+15005550006")]
    from: String,
    /// Called number (To).
    #[arg(long, default_value = "+15005550001")]
    to: String,
    #[command(flatten)]
    caller: CallerArgs,
    /// Auth token that signs every request (X-Twilio-Signature).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", default_value = DEFAULT_AUTH_TOKEN, hide_env_values = true)]
    auth_token: String,
    /// Account SID sent as AccountSid.
    #[arg(long, env = "TWILIO_ACCOUNT_SID", default_value = DEFAULT_ACCOUNT_SID)]
    account_sid: String,
    /// Call SID to use (default: random CA…).
    #[arg(long)]
    call_sid: Option<String>,
    /// Digits the caller keys at <Gather> prompts, consumed in order (e.g. `1234#`).
    #[arg(long, value_parser = parse_digits, default_value = "")]
    dtmf: String,
    /// `dtmf` messages on the bidirectional stream: TIME:DIGITS from the stream's start
    /// (e.g. `2s:5`); repeatable.
    #[arg(long = "stream-dtmf", value_name = "TIME:DIGITS", value_parser = parse_timed_dtmf)]
    stream_dtmf: Vec<Vec<(Duration, char)>>,
    /// How long the caller stays after its audio ends before hanging up.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    tail: Duration,
    /// Hang up after this long whatever happens.
    #[arg(long, default_value = "5m", value_parser = parse_positive_duration)]
    max_duration: Duration,
    /// Twilio's timeout for TwiML requests.
    #[arg(long, default_value = "15s", value_parser = parse_positive_duration)]
    webhook_timeout: Duration,
    /// Fail the call when a <Connect><Stream> gets no app audio within this (0 disables).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    no_audio_timeout: Duration,
    /// Write what the caller heard from the app as 8 kHz 16-bit WAV into this directory.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// With --record, also write what the caller sent.
    #[arg(long, requires = "record")]
    record_sent: bool,
    /// Where dialtone listens for the app's milestone records (POST /events); the reference
    /// app reports there by itself.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    events_listen: std::net::SocketAddr,
    /// Where dialtone serves Twilio's REST API for the call (list, fetch, hang up with
    /// Status=completed, redirect with Url/Twiml), printed at start; point the app's Twilio
    /// client here. Loopback by default; port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    rest_listen: std::net::SocketAddr,
    /// A JSON-lines milestone log written by the app, matched to this call after it ends.
    #[arg(long, value_name = "FILE")]
    milestones: Option<PathBuf>,
    /// How long to wait after the call for late milestone records.
    #[arg(long, default_value = "300ms", value_parser = parse_duration)]
    milestone_grace: Duration,
    /// Write every exchange of the call (TwiML requests and responses, every WebSocket
    /// message both ways, with times) to FILE as JSON lines; see docs/capture.md.
    #[arg(long, value_name = "FILE")]
    capture: Option<PathBuf>,
    /// Inject faults on a seeded schedule, e.g. 'loss=0.02,dup=0.01,jitter=30ms,drop=8s'
    /// (keys: docs/faults.md). The same --seed gives the same frames, byte for byte.
    #[arg(long, value_name = "SPEC")]
    faults: Option<dialtone_call::faults::FaultSpec>,
    /// Seed for everything random about the call: its SIDs and fault schedule.
    #[arg(long)]
    seed: Option<u64>,
    /// Virtual time: frames carry their real timestamps but go out as fast as the app reads
    /// them, and <Say>/<Play>/<Pause> take no time (a 60 s call in a fraction of a second).
    #[arg(long)]
    fast: bool,
    #[command(flatten)]
    net: crate::net_args::NetArgs,
    /// Print the report as JSON on stdout (the timeline is then not printed live).
    #[arg(long)]
    json: bool,
    /// Print only the summary (or the JSON).
    #[arg(long, short)]
    quiet: bool,
}

fn parse_method(s: &str) -> Result<HttpMethod, String> {
    match s.to_ascii_uppercase().as_str() {
        "POST" => Ok(HttpMethod::Post),
        "GET" => Ok(HttpMethod::Get),
        _ => Err(format!("{s:?}: Twilio webhooks use POST or GET")),
    }
}

/// Runs `dialtone call`.
pub(crate) async fn run(opts: CallOpts) -> anyhow::Result<ExitCode> {
    // The caller's audio is read no further than the call can last.
    let cache = dialtone_audio::AudioCache::with_max(opts.max_duration);
    let caller = opts.caller.resolve(&cache)?;
    for w in &caller.warnings {
        eprintln!("warning: {w}");
    }
    let net = opts.net.net()?;
    let milestone_log = match &opts.milestones {
        Some(path) => {
            let text =
                crate::input::read_text_limited(path, crate::input::MAX_LOG_BYTES, "--milestones")?;
            Some(dialtone_metrics::ingest::ingest_jsonl(&text))
        }
        None => None,
    };
    let events_listener = tokio::net::TcpListener::bind(opts.events_listen)
        .await
        .with_context(|| format!("cannot listen for milestones on {}", opts.events_listen))?;
    let events_url = format!("http://{}/events", events_listener.local_addr()?);
    let collector = dialtone_events::Collector::new();
    let events_task = tokio::spawn(dialtone_events::serve(
        events_listener,
        collector.clone(),
        std::future::pending(),
    ));
    if let Some(dir) = &opts.record {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --record directory {}", dir.display()))?;
    }
    let (url, bot) = match &opts.webhook {
        Some(u) => {
            crate::net_args::check_webhook("--webhook", u)?;
            (u.clone(), None)
        }
        None => {
            let (url, handle) =
                crate::demo_cmd::start_bot(&opts.auth_token, Some(events_url.clone())).await?;
            eprintln!(
                "reference voice app listening on {} (no --webhook given)",
                url.trim_end_matches("/voice")
            );
            (url, Some(handle))
        }
    };

    let rest = crate::rest::RestApi::start(
        opts.rest_listen,
        &opts.account_sid,
        &opts.auth_token,
        crate::rest::HISTORY,
        true,
    )
    .await?;
    let banner = rest.banner(&opts.account_sid);
    if opts.json || opts.quiet {
        eprintln!("{banner}");
    } else {
        println!("{banner}");
    }
    if !opts.json {
        println!(
            "caller audio {:?} ({:.1} s, {} turns); milestones accepted at {events_url}",
            caller.name,
            caller.frames.duration().as_secs_f64(),
            caller.turns.len()
        );
    }
    let capture = match &opts.capture {
        Some(path) => Some(Arc::new(
            dialtone_call::capture::Capture::create(path)
                .with_context(|| format!("cannot create --capture {}", path.display()))?,
        )),
        None => None,
    };
    let mut cfg = CallConfig::new(url, caller.frames.clone());
    cfg.capture = capture.clone();
    cfg.caller.turns = caller.turns.clone();
    cfg.method = opts.method;
    cfg.fallback_url = opts.fallback.clone();
    cfg.account_sid = opts.account_sid.clone();
    cfg.auth_token = opts.auth_token.clone();
    cfg.from = opts.from.clone();
    cfg.to = opts.to.clone();
    cfg.call_sid = opts.call_sid.clone();
    cfg.caller.tail = opts.tail;
    cfg.caller.gather_digits = opts.dtmf.clone();
    cfg.caller.stream_dtmf = opts.stream_dtmf.iter().flatten().copied().collect();
    cfg.caller.stream_dtmf.sort_by_key(|(t, _)| *t);
    cfg.max_duration = opts.max_duration;
    cfg.webhook_timeout = opts.webhook_timeout;
    cfg.no_audio_timeout = (!opts.no_audio_timeout.is_zero()).then_some(opts.no_audio_timeout);
    cfg.record = opts.record.is_some();
    cfg.seed = opts.seed;
    cfg.faults = opts.faults.clone().map(Arc::new);
    cfg.fast = opts.fast;
    cfg.tunnels = Arc::new(opts.net.tunnels(&Default::default()));

    let live = !opts.json && !opts.quiet;
    let sink: Option<dialtone_call::EventSink> = live.then(|| {
        Arc::new(|e: &CallEvent| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", format_event(e));
        }) as dialtone_call::EventSink
    });
    let engine = Engine::with_net(net);
    let mut result = engine
        .place_registered_call(cfg, sink, Some(rest.registry.as_ref()))
        .await;
    // Apps report milestones asynchronously: give late ones a moment.
    tokio::time::sleep(opts.milestone_grace).await;
    rest.stop();
    if let Some(h) = bot {
        h.abort();
    }
    events_task.abort();
    for w in &caller.warnings {
        result.report.warnings.push((0, w.clone()));
    }
    let mut milestones = collector.take(&result.report.call_sid);
    if let Some(log) = &milestone_log {
        milestones.extend(
            log.records
                .iter()
                .filter(|m| m.call_sid == result.report.call_sid)
                .cloned(),
        );
    }
    // Records for other call SIDs are the app's mistake worth showing, not silently dropped.
    for (sid, records) in collector.drain() {
        result.report.warnings.push((
            0,
            format!(
                "{} milestone record(s) for unknown call SID {sid:?} (this call is {})",
                records.len(),
                result.report.call_sid
            ),
        ));
    }
    let counts = collector.counts();
    if counts.bad > 0 {
        result.report.warnings.push((
            0,
            format!(
                "{} malformed milestone record(s) were refused with HTTP 400",
                counts.bad
            ),
        ));
    }
    if opts.fast {
        // Milestones are stamped on the app's wall clock; turns ran on virtual time.
        if !milestones.is_empty() {
            result.report.warnings.push((
                0,
                format!(
                    "{} milestone record(s) not matched to turns: --fast runs on virtual time",
                    milestones.len()
                ),
            ));
        }
    } else {
        let unmatched = dialtone_events::attach(&mut result.report, &milestones);
        for m in &unmatched {
            result
                .report
                .warnings
                .push((0, format!("milestone {} matched no caller turn", m.name)));
        }
    }

    if let (Some(c), Some(path)) = (&capture, &opts.capture) {
        match c.finish() {
            Ok(()) if !opts.json => {
                println!("captured {} records to {}", c.records(), path.display())
            }
            Ok(()) => {}
            Err(e) => result
                .report
                .warnings
                .push((0, format!("capture {} is incomplete: {e}", path.display()))),
        }
    }
    let report = &result.report;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print_summary(report, opts.record.as_deref());
    }
    // Recordings come after the report, so a failed write never hides the results.
    if let Some(dir) = &opts.record {
        for a in &result.audio {
            let base = dir.join(format!("{}-{}", result.report.call_sid, a.stream_sid));
            write_mulaw_wav(&base.with_extension("heard.wav"), &a.heard)?;
            if opts.record_sent {
                write_mulaw_wav(&base.with_extension("sent.wav"), &a.sent)?;
            }
        }
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_mulaw_wav(path: &std::path::Path, mulaw: &[u8]) -> anyhow::Result<()> {
    let mut pcm = Vec::with_capacity(mulaw.len());
    dialtone_audio::mulaw::decode_slice(mulaw, &mut pcm);
    dialtone_audio::wav::write_8k(path, &pcm)?;
    Ok(())
}
