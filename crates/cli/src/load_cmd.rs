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
use dialtone_call::{CallConfig, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN};
use dialtone_corpus::caller::{CallerSource, resolve};
use dialtone_load::calls::CallRun;
use dialtone_load::output::{OutputFormat, print_report, write_calls, write_dir};
use dialtone_load::scenario::{Callers, Profile, load_scenario, number_pool};
use dialtone_load::stream::StreamRun;
use dialtone_load::threshold::Threshold;
use dialtone_load::{Arrival, Extent, Finished, Progress, Shard, Workload};
use tokio::sync::watch;

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
    /// alone; the lean path the capacity bench uses).
    #[arg(long, value_name = "URL")]
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
    /// Caller audio: a WAV file or a folder of WAVs (one picked per call). Default: a built-in
    /// caller utterance (call mode) or μ-law silence (stream mode).
    #[arg(long, value_name = "PATH")]
    audio: Option<PathBuf>,
    /// Corpus entry every caller speaks, with exact ground-truth turns and words (e.g.
    /// `session`, `barge_in`; see audio/manifest.json), as `dialtone call --script`.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["audio", "stream"])]
    script: Option<String>,
    /// Corpus directory for --script and scenario `script` entries (default:
    /// $DIALTONE_CORPUS or the repository's audio/).
    #[arg(long, value_name = "DIR", conflicts_with = "stream")]
    corpus: Option<PathBuf>,
    /// TOML scenario with weighted caller profiles (see docs/load.md).
    #[arg(long, value_name = "FILE", conflicts_with = "stream")]
    scenario: Option<PathBuf>,
    /// First caller number (From) of the pool.
    #[arg(long, default_value = "+15005550100")]
    from: String,
    /// Size of the caller-number pool, counting up from --from.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(dialtone_load::scenario::MAX_CALLERS)))]
    callers: u32,
    /// Called number (To).
    #[arg(long, default_value = "+15005550001")]
    to: String,
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
    /// Auth token that signs every request.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", default_value = DEFAULT_AUTH_TOKEN, hide_env_values = true)]
    auth_token: String,
    /// Account SID.
    #[arg(long, env = "TWILIO_ACCOUNT_SID", default_value = DEFAULT_ACCOUNT_SID)]
    account_sid: String,
    /// Caller stays this long after its audio before hanging up.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    tail: Duration,
    /// Hang up every call after this long.
    #[arg(long, default_value = "5m", value_parser = parse_positive_duration)]
    max_duration: Duration,
    /// Twilio's timeout for TwiML requests.
    #[arg(long, default_value = "15s", value_parser = parse_positive_duration)]
    webhook_timeout: Duration,
    /// Fail a call whose <Connect><Stream> gets no app audio within this (0 disables).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    no_audio_timeout: Duration,
    /// Inject faults into the calls, each on a schedule from --seed, e.g.
    /// 'calls=0.2,loss=0.02,dup=0.01,jitter=30ms,drop=8s' (keys: docs/faults.md).
    #[arg(long, value_name = "SPEC", conflicts_with = "stream")]
    faults: Option<dialtone_call::faults::FaultSpec>,
    /// Write every call's exchanges (TwiML, every WebSocket message both ways) to FILE as
    /// JSON lines, for `dialtone replay FILE --call-sid CA…` (docs/capture.md). About 20 kB
    /// per call-second.
    #[arg(long, value_name = "FILE", conflicts_with = "stream")]
    capture: Option<std::path::PathBuf>,
    /// dialtone's own frame lateness above this marks the generator as the bottleneck.
    #[arg(long, default_value = "10ms", value_parser = parse_positive_duration)]
    lateness_bound: Duration,
    /// After Ctrl-C, calls (or --stream streams) in progress get this long to finish before
    /// they are cut and counted `interrupted`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    drain: Duration,
    /// Where dialtone accepts the app's milestone records (POST /events), matched to each
    /// call's turns (the reference app reports there by itself).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    events_listen: std::net::SocketAddr,
    /// How long to wait after each call for its late milestone records.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    milestone_grace: Duration,
    #[command(flatten)]
    net: crate::net_args::NetArgs,
    /// Where dialtone serves Twilio's REST API for the run's calls (list, fetch, hang up with
    /// Status=completed, redirect with Url/Twiml), printed at start; point the app's Twilio
    /// client here. Loopback by default; port 0 picks a free one. Not with --stream.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:0",
        conflicts_with = "stream"
    )]
    rest_listen: std::net::SocketAddr,
}

impl LoadOpts {
    /// The options `dialtone demo` runs: `calls` calls against `webhook` (`None`: the
    /// reference app, started in-process).
    pub(crate) fn demo(
        webhook: Option<String>,
        calls: u64,
        concurrency: usize,
        ramp: Duration,
    ) -> Self {
        Self {
            webhook,
            stream: None,
            calls: Some(calls),
            duration: None,
            concurrency: Some(concurrency),
            rate: None,
            ramp,
            seconds: Duration::from_secs(30),
            threads: 0,
            audio: None,
            script: None,
            corpus: None,
            scenario: None,
            from: "+15005550100".into(),
            callers: 20,
            to: "+15005550001".into(),
            seed: 1,
            shard: None,
            out: None,
            threshold: Vec::new(),
            progress: ProgressMode::Auto,
            json: false,
            quiet: false,
            auth_token: DEFAULT_AUTH_TOKEN.into(),
            account_sid: DEFAULT_ACCOUNT_SID.into(),
            tail: Duration::from_secs(2),
            max_duration: Duration::from_secs(300),
            webhook_timeout: Duration::from_secs(15),
            no_audio_timeout: Duration::from_secs(10),
            faults: None,
            capture: None,
            lateness_bound: Duration::from_millis(10),
            drain: Duration::from_secs(10),
            events_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            milestone_grace: Duration::from_millis(500),
            net: Default::default(),
            rest_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// Sets `--out`.
    pub(crate) fn with_out(mut self, out: Option<PathBuf>) -> Self {
        self.out = out;
        self
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
    let mut printer = ProgressPrinter::new(mode);
    let finished = if let Some(url) = &opts.stream {
        let run = stream_run(&opts, url)?;
        let flag = stop_flag.clone();
        tokio::task::spawn_blocking(move || {
            dialtone_load::stream::run(&run, flag, |p| printer.show(p)).map(|f| (f, printer))
        })
        .await
        .context("the stream runner stopped unexpectedly")?
        .map(|(f, mut p)| {
            p.done();
            f
        })?
    } else {
        let events = dialtone_events::Collector::new();
        let listener = tokio::net::TcpListener::bind(opts.events_listen)
            .await
            .with_context(|| format!("cannot listen for milestones on {}", opts.events_listen))?;
        let events_url = format!("http://{}/events", listener.local_addr()?);
        let events_task = tokio::spawn(dialtone_events::serve(
            listener,
            events.clone(),
            std::future::pending(),
        ));
        let (url, bot) = match &opts.webhook {
            Some(u) => (u.clone(), None),
            None => {
                let (url, handle) =
                    crate::demo_cmd::start_bot(&opts.auth_token, Some(events_url.clone())).await?;
                (url, Some(handle))
            }
        };
        if format == OutputFormat::Text && opts.webhook.is_some() {
            eprintln!("app milestones accepted at {events_url}");
        }
        let mut run = call_run(&opts, url)?;
        run.milestones = Some((events, opts.milestone_grace));
        let rest = crate::rest::RestApi::start(
            opts.rest_listen,
            &opts.account_sid,
            &opts.auth_token,
            crate::rest::HISTORY,
            false,
        )
        .await?;
        if !opts.quiet {
            eprintln!("{}", rest.banner(&opts.account_sid));
        }
        run.registry = Some(rest.registry.clone());
        let capture = match &opts.capture {
            Some(path) => Some(Arc::new(
                dialtone_call::capture::Capture::create(path)
                    .with_context(|| format!("cannot create --capture {}", path.display()))?,
            )),
            None => None,
        };
        run.template.capture = capture.clone();
        let f = dialtone_load::calls::run(run, stop_rx, |p| printer.show(p)).await;
        printer.done();
        if let (Some(c), Some(path)) = (&capture, &opts.capture) {
            // The results are written whatever happened to the capture.
            match c.finish() {
                Ok(()) => eprintln!("captured {} records to {}", c.records(), path.display()),
                Err(e) => eprintln!("warning: capture {} is incomplete: {e}", path.display()),
            }
        }
        if let Some(b) = bot {
            b.abort();
        }
        events_task.abort();
        rest.stop();
        f
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
    let audio = match &opts.audio {
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
        account_sid: opts.account_sid.clone(),
        auth_token: opts.auth_token.clone(),
        seed: opts.seed,
        shard: opts.shard.unwrap_or_default(),
        lateness_bound: opts.lateness_bound,
        drain: opts.drain,
        tunnels: opts.net.tunnels(&Default::default()),
    })
}

fn call_run(opts: &LoadOpts, url: String) -> anyhow::Result<CallRun> {
    crate::net_args::check_webhook("--webhook", &url)?;
    // Caller audio is read no further than a call can last.
    let cache = AudioCache::with_max(opts.max_duration);
    let source = CallerSource::from_flags(opts.script.as_deref(), opts.audio.as_deref());
    let audio = resolve(&source, opts.corpus.as_deref(), &cache)
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
        tail: opts.tail,
        dtmf: String::new(),
        stream_dtmf: Vec::new(),
        hangup_after: None,
    };
    let (profiles, scenario_tunnels) = match &opts.scenario {
        Some(path) => {
            let s = load_scenario(path, &cache, &default, opts.corpus.as_deref())?;
            (s.profiles, s.tunnels)
        }
        None => (vec![default], Default::default()),
    };
    for (path, cut) in cache.truncated() {
        eprintln!(
            "warning: audio {}: {cut} (a call lasts at most {:.1} s, --max-duration)",
            path.display(),
            opts.max_duration.as_secs_f64()
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
    let mut template = CallConfig::new(url, any_frames);
    template.account_sid = opts.account_sid.clone();
    template.auth_token = opts.auth_token.clone();
    template.to = opts.to.clone();
    template.max_duration = opts.max_duration;
    template.webhook_timeout = opts.webhook_timeout;
    template.no_audio_timeout = (!opts.no_audio_timeout.is_zero()).then_some(opts.no_audio_timeout);
    template.faults = opts.faults.clone().map(Arc::new);
    template.tunnels = Arc::new(opts.net.tunnels(&scenario_tunnels));
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
        milestones: None,
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
