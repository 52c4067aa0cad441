//! `dialtone call`: one call, a live timeline of every step, a summary, and an exit code that
//! says whether the call path worked.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use dialtone_audio::wav::write_mulaw_8k;
use dialtone_call::{CallConfig, CallEvent, Engine, HttpMethod};
use dialtone_setup::{CaptureOutcome, Target, put_milestones};

use crate::call_flags::CallFlags;
use crate::call_text::{format_event, print_summary};
use crate::caller::{Caller, CallerArgs};
use crate::units::{parse_digits, parse_duration, parse_timed_dtmf};

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
    #[command(flatten)]
    caller: CallerArgs,
    #[command(flatten)]
    call: CallFlags,
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
    /// Write what the caller heard from the app as 8 kHz 16-bit WAV into this directory, and
    /// each `<Record>` recording (`CA…-RE….wav`).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// With --record, also write what the caller sent.
    #[arg(long, requires = "record")]
    record_sent: bool,
    /// A JSON-lines milestone log written by the app, matched to this call after it ends.
    #[arg(long, value_name = "FILE")]
    milestones: Option<PathBuf>,
    /// How long to wait after the call for late milestone records.
    #[arg(long, default_value = "300ms", value_parser = parse_duration)]
    milestone_grace: Duration,
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

/// Runs `dialtone call`: sets the call up, places it with a live timeline, and reports.
pub(crate) async fn run(opts: CallOpts) -> anyhow::Result<ExitCode> {
    // The caller's audio is read no further than the call can last.
    let cache = dialtone_audio::AudioCache::with_max(opts.call.max_duration);
    let caller = opts.caller.resolve(&cache)?;
    for w in &caller.warnings {
        eprintln!("warning: {w}");
    }
    let net = opts.net.net()?;
    let milestone_log = read_milestone_log(opts.milestones.as_deref())?;
    if let Some(dir) = &opts.record {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --record directory {}", dir.display()))?;
    }
    let target = opts.call.start_target(opts.webhook.as_deref()).await?;
    if target.embedded() {
        let mode = match opts.call.embedded_app {
            Some(crate::call_flags::EmbeddedAppArg::Relay) => ", ConversationRelay",
            _ => "",
        };
        eprintln!(
            "reference voice app listening on {} (no --webhook given{mode})",
            target.url().trim_end_matches("/voice")
        );
    }
    let rest = opts.call.rest(true).await?;
    announce(&opts, &rest, &caller, target.events_url());

    let mut cfg = call_config(&opts, &caller, &target)?;
    cfg.recordings = Some(rest.recordings.clone());
    let live = !opts.json && !opts.quiet;
    let sink: Option<dialtone_call::EventSink> = live.then(|| {
        Arc::new(|e: &CallEvent| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", format_event(e));
        }) as dialtone_call::EventSink
    });
    let mut result = Engine::with_net(net)
        .place_registered_call(cfg, sink, Some(rest.registry.as_ref()))
        .await;
    // Apps report milestones asynchronously: give late ones a moment.
    tokio::time::sleep(opts.milestone_grace).await;
    rest.stop();

    let report = &mut result.report;
    for w in &caller.warnings {
        report.warnings.push((0, w.clone()));
    }
    put_milestones(report, target.milestones(), &milestone_log, opts.fast);
    match target.finish() {
        Some(c @ CaptureOutcome::Written { .. }) if !opts.json => println!("{c}"),
        Some(c @ CaptureOutcome::Incomplete { .. }) => report.warnings.push((0, c.to_string())),
        _ => {}
    }
    if opts.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print_summary(report, opts.record.as_deref());
    }
    // Recordings come after the report, so a failed write never hides the results.
    if let Some(dir) = &opts.record {
        write_recordings(dir, &result, opts.record_sent)?;
    }
    Ok(if result.report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--milestones FILE`: the app's own log, read under a bound (none: no records).
fn read_milestone_log(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Vec<dialtone_milestones::milestone::Milestone>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = crate::input::read_text_limited(path, crate::input::MAX_LOG_BYTES, "--milestones")?;
    Ok(dialtone_milestones::ingest::ingest_jsonl(&text).records)
}

/// Where the REST API is (on stderr when stdout carries only the report) and what the
/// caller will say.
fn announce(opts: &CallOpts, rest: &crate::rest::RestApi, caller: &Caller, events_url: &str) {
    let banner = rest.banner(&opts.call.account_sid);
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
}

/// The call's config: the shared flags, then what only `call` has.
fn call_config(opts: &CallOpts, caller: &Caller, target: &Target) -> anyhow::Result<CallConfig> {
    let mut cfg = CallConfig::new(target.url().to_string(), caller.frames.clone());
    opts.call.fill(&mut cfg);
    cfg.capture = target.capture();
    cfg.caller.turns = caller.turns.clone();
    cfg.method = opts.method;
    cfg.fallback_url = opts.fallback.clone();
    cfg.from = opts.from.clone();
    cfg.call_sid = opts.call_sid.clone();
    cfg.caller.gather_digits = opts.dtmf.clone();
    cfg.caller.stream_dtmf = opts.stream_dtmf.iter().flatten().copied().collect();
    cfg.caller.stream_dtmf.sort_by_key(|(t, _)| *t);
    cfg.record = opts.record.is_some();
    cfg.seed = opts.seed;
    cfg.fast = opts.fast;
    cfg.tunnels = Arc::new(opts.net.tunnels(&Default::default()));
    opts.call.dial_book(&mut cfg)?;
    Ok(cfg)
}

/// `--record DIR`: what the caller heard (and with `sent`, what it sent) per stream, what it
/// heard of each ConversationRelay session (`CA…-relay-N.heard.wav`, N from 1), and what
/// each `<Record>` kept of what it said (`CA…-RE….wav`, as the Recordings resource serves it).
fn write_recordings(
    dir: &std::path::Path,
    result: &dialtone_call::CallResult,
    sent: bool,
) -> anyhow::Result<()> {
    for a in &result.audio {
        let base = dir.join(format!("{}-{}", result.report.call_sid, a.stream_sid));
        write_mulaw_8k(&base.with_extension("heard.wav"), &a.heard)?;
        if sent {
            write_mulaw_8k(&base.with_extension("sent.wav"), &a.sent)?;
        }
    }
    // Each ConversationRelay session: the agent's simulated speech and its plays.
    for (n, r) in result.relay_audio.iter().enumerate() {
        let name = format!("{}-relay-{}.heard.wav", result.report.call_sid, n + 1);
        write_mulaw_8k(&dir.join(name), &r.heard)?;
    }
    for r in &result.record_audio {
        let name = format!("{}-{}.wav", result.report.call_sid, r.sid);
        write_mulaw_8k(&dir.join(name), &r.audio)?;
    }
    Ok(())
}
