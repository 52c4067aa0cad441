//! `dialtone load`: many calls on a deterministic schedule — full Twilio-exact calls against a
//! voice webhook, or bare Media Streams with `--stream` — with live progress, a summary, an
//! `--out` directory (JSON, `.hlog`, HTML) and `--threshold` gates.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use dialtone_audio::{AudioCache, FrameSet};
use dialtone_call::CallConfig;
use dialtone_corpus::caller::{CallerSource, resolve};
use dialtone_load::calls::CallRun;
use dialtone_load::output::{OutputFormat, print_report, write_calls, write_dir};
use dialtone_load::scenario::{Callers, Profile, load_scenario, number_pool};
use dialtone_load::stream::StreamRun;
use dialtone_load::threshold::Threshold;
use dialtone_load::{Arrival, Extent, Finished, Progress, Shard, Workload};
use dialtone_setup::{CaptureOutcome, Target};
use tokio::sync::watch;

use crate::call_flags::CallFlags;
use crate::caller::CallerArgs;
use crate::units::{parse_duration, parse_positive_duration};

/// How live progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// A rewriting line on a terminal, plain lines otherwise.
    Auto,
    /// A line that rewrites itself.
    Tty,
    /// One line every few seconds (CI logs).
    Plain,
    /// Nothing while running.
    Off,
}

/// Options of `dialtone load`.
#[derive(Debug, Args)]
pub(crate) struct LoadOpts {
    /// The app's voice webhook; every call is a full call (webhook, TwiML, stream, marks).
    /// Without it (and without --stream), dialtone starts its reference voice app and loads that.
    #[arg(long, value_name = "URL", conflicts_with = "stream")]
    webhook: Option<String>,
    /// Skip the webhook: open Media Streams straight to this ws:// URL (tests a stream handler
    /// alone; the lean path the capacity bench uses). A stream has no call around it: no
    /// script, faults, capture, REST API or ConversationRelay.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with_all = [
            "script",
            "corpus",
            "faults",
            "capture",
            "rest_listen",
            "recognition_delay",
            "partial_every",
            "tts_latency",
            "tts_pace",
            "embedded_app"
        ]
    )]
    stream: Option<String>,
    /// Number of calls (all shards together).
    #[arg(
        long,
        visible_alias = "streams",
        value_name = "N",
        conflicts_with = "duration",
        value_parser = clap::value_parser!(u64).range(1..=dialtone_load::plan::MAX_CALLS)
    )]
    calls: Option<u64>,
    /// Keep calls arriving for this long instead of a fixed count.
    #[arg(long, value_parser = parse_positive_duration, conflicts_with = "stream")]
    duration: Option<Duration>,
    /// Most calls in progress at once (default: 50; with --stream: every stream).
    #[arg(long, value_name = "N", value_parser = crate::units::count(1, dialtone_load::plan::MAX_CONCURRENCY))]
    concurrency: Option<usize>,
    /// Steady arrival rate in calls per second, reached after --ramp (default: the calls'
    /// starts are spread evenly over --ramp).
    #[arg(long, value_name = "CALLS_PER_S", conflicts_with = "stream", value_parser = crate::units::parse_rate)]
    rate: Option<f64>,
    /// Ramp-up: the arrival rate rises from 0 over this long.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    ramp: Duration,
    /// With --stream: seconds of media per stream.
    #[arg(long, value_parser = parse_duration, default_value = "30s", requires = "stream")]
    seconds: Duration,
    /// With --stream: worker threads (0 = one per core; at most 1024).
    #[arg(long, default_value_t = 0, requires = "stream", value_parser = crate::units::count(0, dialtone_load::stream::MAX_THREADS))]
    threads: usize,
    #[command(flatten)]
    caller: CallerArgs,
    /// TOML scenario with weighted caller profiles (see docs/load.md).
    #[arg(long, value_name = "FILE", conflicts_with = "stream")]
    scenario: Option<PathBuf>,
    /// First caller number (From) of the pool.
    #[arg(long, default_value = "+15005550100")]
    from: String,
    #[command(flatten)]
    call: CallFlags,
    /// Size of the caller-number pool, counting up from --from.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(dialtone_load::scenario::MAX_CALLERS)))]
    callers: u32,
    /// Seed: the same flags and seed give the same schedule, callers, audio and SIDs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run only slice I of N (0-based), e.g. 2/4; merge outputs with `dialtone report merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Write summary.json, histograms.hlog and report.html into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A pass/fail gate, e.g. 'turn_latency p95 < 900ms' or 'error_rate < 1%' (repeatable);
    /// exit code 1 when any fails.
    #[arg(long, value_name = "EXPR")]
    threshold: Vec<Threshold>,
    /// Live progress display.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print nothing but failures.
    #[arg(long, short)]
    quiet: bool,
    /// dialtone's own frame lateness above this marks the generator as the bottleneck.
    #[arg(long, default_value = "10ms", value_parser = parse_positive_duration)]
    lateness_bound: Duration,
    /// After Ctrl-C, calls (or --stream streams) in progress get this long to finish before
    /// they are cut and counted `interrupted`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    drain: Duration,
    /// How long to wait after each call for its late milestone records.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    milestone_grace: Duration,
    #[command(flatten)]
    net: crate::net_args::NetArgs,
}

impl LoadOpts {
    /// The options `dialtone demo` runs: `dialtone load` with `args`, parsed as the command
    /// line would be, so every other flag keeps its default.
    pub(crate) fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Load {
            #[command(flatten)]
            opts: LoadOpts,
        }
        use clap::Parser;
        Load::try_parse_from(std::iter::once("load".into()).chain(args.into_iter().map(Into::into)))
            .map(|l| l.opts)
    }
}

/// Runs `dialtone load`.
pub(crate) async fn run(opts: LoadOpts) -> anyhow::Result<ExitCode> {
    let format = if opts.json {
        OutputFormat::Json
    } else if opts.quiet {
        OutputFormat::Quiet
    } else {
        OutputFormat::Text
    };
    let mode = match opts.progress {
        m if opts.quiet => m.min_quiet(),
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
        ProgressMode::Auto => ProgressMode::Plain,
        m => m,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn(stop_on_signal(stop_tx, stop_flag.clone()));
    let printer = ProgressPrinter::new(mode);
    let finished = match &opts.stream {
        Some(url) => run_streams(&opts, url, printer, stop_flag).await?,
        None => run_calls(&opts, format, printer, stop_rx).await?,
    };
    signals.abort();
    let interrupted = finished.summary.interrupted;
    let code = finish(finished, &opts.threshold, opts.out.as_deref(), format)?;
    // An interrupted run is not a complete run, whatever its thresholds say: its own code.
    Ok(if interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        code
    })
}

/// `--stream`: bare Media Streams on the lean path's own threads.
async fn run_streams(
    opts: &LoadOpts,
    url: &str,
    mut printer: ProgressPrinter,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Finished> {
    let run = stream_run(opts, url)?;
    let finished = tokio::task::spawn_blocking(move || {
        dialtone_load::stream::run(&run, stop, |p| printer.show(p)).map(|f| (f, printer))
    })
    .await
    .context("the stream runner stopped unexpectedly")?;
    let (finished, mut printer) = finished?;
    printer.done();
    Ok(finished)
}

/// Full calls against the app (the reference app without --webhook), with its milestones,
/// the REST API and the capture beside them.
async fn run_calls(
    opts: &LoadOpts,
    format: OutputFormat,
    mut printer: ProgressPrinter,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Finished> {
    let target = opts.call.start_target(opts.webhook.as_deref()).await?;
    if format == OutputFormat::Text && !target.embedded() {
        eprintln!("app milestones accepted at {}", target.events_url());
    }
    let mut run = call_run(opts, &target)?;
    let rest = opts.call.rest(false).await?;
    if !opts.quiet {
        eprintln!("{}", rest.banner(&opts.call.account_sid));
    }
    run.registry = Some(rest.registry.clone());
    run.template.recordings = Some(rest.recordings.clone());
    let finished = dialtone_load::calls::run(run, stop, |p| printer.show(p)).await;
    printer.done();
    rest.stop();
    // The results are written whatever happened to the capture.
    match target.finish() {
        Some(c @ CaptureOutcome::Written { .. }) => eprintln!("{c}"),
        Some(c @ CaptureOutcome::Incomplete { .. }) => eprintln!("warning: {c}"),
        None => {}
    }
    Ok(finished)
}

/// The exit code of a run stopped by Ctrl-C or SIGTERM (after its results are written):
/// 130, as shells report a command ended by Ctrl-C; distinct from 1 (a failed gate or no
/// call succeeded) and 2 (bad input).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

impl ProgressMode {
    fn min_quiet(self) -> Self {
        ProgressMode::Off
    }
}

/// Thresholds, report, files, exit code: shared by `load`, `demo` and `report merge`.
pub(crate) fn finish(
    mut finished: Finished,
    thresholds: &[Threshold],
    out: Option<&std::path::Path>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let s = &mut finished.summary;
    s.thresholds = thresholds
        .iter()
        .map(|t| t.check(&finished.totals, s))
        .collect();
    let s = &finished.summary;
    let mut stdout = std::io::stdout().lock();
    print_report(&mut stdout, s, format)?;
    stdout.flush()?;
    if let Some(dir) = out {
        write_dir(dir, s, &finished.totals, &finished.hlog)
            .with_context(|| format!("cannot write --out {}", dir.display()))?;
        if let Some(calls) = &finished.calls {
            write_calls(dir, calls)
                .with_context(|| format!("cannot write --out {}", dir.display()))?;
        }
        if format == OutputFormat::Text {
            println!("  results     {}", dir.display());
        }
    }
    let failed: Vec<_> = s.thresholds.iter().filter(|t| !t.passed).collect();
    for t in &failed {
        eprintln!("threshold failed: {}: {}", t.expr, t.detail);
    }
    let nothing_worked = s.calls.finished > 0 && s.calls.succeeded == 0;
    if nothing_worked && format != OutputFormat::Text {
        eprintln!("no call succeeded");
    }
    Ok(if failed.is_empty() && !nothing_worked {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// First Ctrl-C / SIGTERM: stop starting calls and wind down; results are still written.
async fn stop_on_signal(stop: watch::Sender<bool>, flag: Arc<AtomicBool>) {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    eprintln!("\nstopping: no new calls; finishing the ones in progress, then writing results");
    flag.store(true, Ordering::Relaxed);
    let _ = stop.send(true);
    // Keep the sender alive: dropping it would make every `stop.changed()` return at once
    // and spin the call loop through the drain.
    std::future::pending::<()>().await;
}

fn stream_run(opts: &LoadOpts, url: &str) -> anyhow::Result<StreamRun> {
    if !opts.net.cacerts.is_empty() || opts.net.insecure {
        anyhow::bail!(
            "--cacert and --insecure do nothing with --stream: it speaks plain WebSocket only \
             (map a wss:// origin to the app's ws:// address with --tunnel)"
        );
    }
    // A stream sends --seconds of media: no more of the file is read.
    let audio = match &opts.caller.audio {
        Some(p) => {
            let d = dialtone_audio::wav::read_8k(p, opts.seconds)
                .with_context(|| format!("cannot use --audio {}", p.display()))?;
            if let Some(cut) = d.truncated {
                eprintln!(
                    "warning: --audio {}: {cut} (a stream sends {:.1} s, --seconds)",
                    p.display(),
                    opts.seconds.as_secs_f64()
                );
            }
            FrameSet::from_pcm(&d.pcm)
        }
        None => FrameSet::silence(0),
    };
    Ok(StreamRun {
        url: url.to_string(),
        streams: opts.calls.unwrap_or(1),
        media: opts.seconds,
        ramp: opts.ramp,
        threads: opts.threads,
        audio: Arc::new(audio),
        account_sid: opts.call.account_sid.clone(),
        auth_token: opts.call.auth_token.clone(),
        seed: opts.seed,
        shard: opts.shard.unwrap_or_default(),
        lateness_bound: opts.lateness_bound,
        drain: opts.drain,
        tunnels: opts.net.tunnels(&Default::default()),
    })
}

fn call_run(opts: &LoadOpts, target: &Target) -> anyhow::Result<CallRun> {
    // Caller audio is read no further than a call can last.
    let cache = AudioCache::with_max(opts.call.max_duration);
    let caller = &opts.caller;
    let source = CallerSource::from_flags(caller.script.as_deref(), caller.audio.as_deref());
    let audio = resolve(&source, caller.corpus.as_deref(), &cache)
        .with_context(|| format!("cannot use {}", source.describe()))?;
    // The template's caller script is replaced per call: any of the audio serves here.
    let any_frames = audio
        .first()
        .map(|a| a.frames.clone())
        .with_context(|| format!("{} names no audio", source.describe()))?;
    let default = Profile {
        name: "default".into(),
        weight: 1,
        audio,
        tail: opts.call.tail,
        dtmf: String::new(),
        stream_dtmf: Vec::new(),
        hangup_after: None,
    };
    let (profiles, scenario_tunnels) = match &opts.scenario {
        Some(path) => {
            let s = load_scenario(path, &cache, &default, caller.corpus.as_deref())?;
            (s.profiles, s.tunnels)
        }
        None => (vec![default], Default::default()),
    };
    for (path, cut) in cache.truncated() {
        eprintln!(
            "warning: audio {}: {cut} (a call lasts at most {:.1} s, --max-duration)",
            path.display(),
            opts.call.max_duration.as_secs_f64()
        );
    }
    let extent = match (opts.calls, opts.duration) {
        (_, Some(d)) => Extent::Duration(d),
        (Some(n), None) => Extent::Calls(n),
        (None, None) => Extent::Calls(10),
    };
    let arrival = match opts.rate {
        Some(per_sec) => Arrival::Rate {
            per_sec,
            ramp: opts.ramp,
        },
        None => Arrival::Spread { ramp: opts.ramp },
    };
    let workload = Workload {
        extent,
        arrival,
        concurrency: opts.concurrency.unwrap_or(50),
        seed: opts.seed,
        shard: opts.shard.unwrap_or_default(),
    };
    workload.validate()?;
    let mut template = CallConfig::new(target.url().to_string(), any_frames);
    opts.call.fill(&mut template);
    template.capture = target.capture();
    template.tunnels = Arc::new(opts.net.tunnels(&scenario_tunnels));
    opts.call.dial_book(&mut template)?;
    Ok(CallRun {
        workload,
        callers: Callers {
            profiles,
            numbers: number_pool(&opts.from, opts.callers)?,
        },
        template,
        net: opts.net.net()?,
        lateness_bound: opts.lateness_bound,
        drain: opts.drain,
        milestones: Some((target.milestones().clone(), opts.milestone_grace)),
        registry: None,
    })
}

/// Prints the live view: a rewriting line on a terminal, a plain line every 5 s otherwise.
pub(crate) struct ProgressPrinter {
    mode: ProgressMode,
    shown: bool,
}

impl ProgressPrinter {
    pub(crate) fn new(mode: ProgressMode) -> Self {
        Self { mode, shown: false }
    }

    pub(crate) fn show(&mut self, p: &Progress) {
        let lateness = if p.lateness.count == 0 {
            "–".to_string()
        } else {
            format!(
                "p50 {:.2} ms p99 {:.2} ms",
                p.lateness.p50_ms, p.lateness.p99_ms
            )
        };
        let line = format!(
            "[{:>5.0}s] active {:>5}  started {:>6}  {:>4} calls/s  {:>7} frames/s  lateness {lateness}  failed {}",
            p.elapsed_s, p.active, p.started, p.calls_per_s, p.frames_per_s, p.failed
        );
        let mut err = std::io::stderr().lock();
        match self.mode {
            ProgressMode::Tty => {
                let _ = write!(err, "\r\x1b[2K{line}");
                self.shown = true;
            }
            ProgressMode::Plain if (p.elapsed_s.round() as u64).is_multiple_of(5) => {
                let _ = writeln!(err, "{line}");
            }
            _ => {}
        }
        let _ = err.flush();
    }

    pub(crate) fn done(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}
