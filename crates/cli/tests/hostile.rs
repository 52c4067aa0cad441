//! Hostile apps against the built binary: oversized and slow TwiML, a `<Redirect>` loop, a
//! 200 MiB `<Play>`, a stuck upgrade, floods of marks and media, a 10 MiB message, an app
//! that never reads. The reference bot plays each (`--misbehave`, [`dialtone_bot::hostile`]).
//! For `dialtone call` (one call per fault) and for a 50-call `dialtone load` mixing them all
//! with healthy calls, this checks the outcome class of every hostile call, that the healthy
//! calls are unharmed, and dialtone's peak memory (VmHWM of the dialtone process itself: the
//! bot runs in this test process).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use dialtone_bot::{Behaviour, BotConfig, Misbehave};
use dialtone_protocol::sid;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dialtone");

/// One hostile fault and what `dialtone call` must report for it.
struct CallCase {
    fault: Behaviour,
    exit: i32,
    /// The kind of the first failure (`None`: no failure).
    failure: Option<&'static str>,
    /// A warning that must be given, by a piece of its text.
    warning: Option<&'static str>,
}

const fn case(
    fault: Behaviour,
    exit: i32,
    failure: Option<&'static str>,
    warning: Option<&'static str>,
) -> CallCase {
    CallCase {
        fault,
        exit,
        failure,
        warning,
    }
}

const CALL_CASES: &[CallCase] = &[
    // Twilio's 64 KB TwiML limit, read no further (11750).
    case(Behaviour::HugeTwiml, 1, Some("twiml_too_large"), None),
    case(Behaviour::SlowTwiml, 1, Some("webhook_timeout"), None),
    // 50 documents without the call advancing (14106).
    case(Behaviour::RedirectLoop, 1, Some("twiml_loop"), None),
    // The audio is read only as far as the call can play it, and the cut is named.
    case(Behaviour::HugePlay, 0, None, Some("only its first")),
    case(Behaviour::StuckUpgrade, 1, Some("stream_connect"), None),
    // 200,000 marks behind a reply: 10,000 wait, the rest are refused and counted.
    case(Behaviour::MarkFlood, 0, None, Some("marks")),
    // One 10 MiB message, over the 1 MiB limit: closed 1009, 31924.
    case(Behaviour::HugeFrame, 1, Some("stream_protocol"), None),
    case(Behaviour::MediaFlood, 0, None, None),
    case(Behaviour::NeverRead, 1, Some("stream_stalled"), None),
];

/// dialtone's peak RSS for one hostile call. A debug build idles at ~15 MiB; each fault
/// would cost far more if dialtone buffered what the app sends (100 MiB of TwiML, 200 MiB
/// of audio, 10 MiB in one message, an hour of media, a transcript of every redirect).
const CALL_RSS_BOUND_KIB: u64 = 40 * 1024;
/// The same for 50 concurrent calls, about half of them hostile.
const LOAD_RSS_BOUND_KIB: u64 = 96 * 1024;

/// Serves the reference bot misbehaving as `spec` on a loopback port, on its own runtime,
/// for the rest of the test process; returns its voice URL.
fn bot(spec: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let config = BotConfig {
        misbehave: spec.parse::<Misbehave>().unwrap(),
        greeting: "Hi.".into(),
        ..BotConfig::default()
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            dialtone_bot::serve(listener, config, std::future::pending()).await
        })
        .unwrap();
    });
    format!("http://{addr}/voice")
}

/// What one dialtone process did.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Peak resident set (VmHWM), KiB.
    peak_rss_kib: u64,
}

/// Runs dialtone with `args`, sampling its VmHWM until it exits (the last reading is the
/// process's peak: VmHWM only grows). Output goes to files, so a full pipe cannot stall it.
fn dialtone(args: &[&str], dir: &Path) -> Run {
    let out = std::fs::File::create(dir.join("stdout")).unwrap();
    let err = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(&text));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: std::fs::read_to_string(dir.join("stdout")).unwrap(),
        stderr: std::fs::read_to_string(dir.join("stderr")).unwrap(),
        peak_rss_kib,
    }
}

fn vm_hwm_kib(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_hostile_app_gets_its_outcome_in_bounded_memory_from_call() {
    // One call per fault, all at once: each against its own bot.
    let handles: Vec<_> = CALL_CASES
        .iter()
        .map(|c| {
            let fault = c.fault;
            std::thread::spawn(move || {
                let url = bot(&format!("{fault}=1"));
                let dir = tempfile::tempdir().unwrap();
                // An unread stream is noticed once the socket buffers are full (~9 s)
                // and a write has waited 5 s: the caller must still be on the line then.
                let tail = if fault == Behaviour::NeverRead {
                    "30s"
                } else {
                    "1s"
                };
                // Recording too: what the caller hears is kept only up to the call's end,
                // however much audio the app sends at once.
                let record = dir.path().join("rec");
                let run = dialtone(
                    &[
                        "call",
                        "--record",
                        record.to_str().unwrap(),
                        "--webhook",
                        &url,
                        "--json",
                        "--tail",
                        tail,
                        "--max-duration",
                        "40s",
                        "--webhook-timeout",
                        "3s",
                        "--no-audio-timeout",
                        "20s",
                    ],
                    dir.path(),
                );
                (fault, run)
            })
        })
        .collect();
    // Every case is checked before any assertion fails, so one run shows them all.
    let mut problems = Vec::new();
    let mut figures = Vec::new();
    for (c, h) in CALL_CASES.iter().zip(handles) {
        let (fault, run) = h.join().unwrap();
        let report: Value = match serde_json::from_str(&run.stdout) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{fault}: no JSON report ({e}): {}", run.stderr));
                continue;
            }
        };
        let got = (run.status.code(), report["failures"][0]["kind"].as_str());
        if got != (Some(c.exit), c.failure) {
            problems.push(format!(
                "{fault}: exit {:?}, failures {} (want exit {}, {:?})",
                got.0, report["failures"], c.exit, c.failure
            ));
        }
        if let Some(want) = c.warning
            && !report["warnings"].to_string().contains(want)
        {
            problems.push(format!(
                "{fault}: no warning with {want:?}: {}",
                report["warnings"]
            ));
        }
        // A report is bounded too: whatever the app sent, it stays small.
        if run.stdout.len() >= 256 * 1024 {
            problems.push(format!("{fault}: a {} byte report", run.stdout.len()));
        }
        if run.peak_rss_kib >= CALL_RSS_BOUND_KIB {
            problems.push(format!("{fault}: peak RSS {} KiB", run.peak_rss_kib));
        }
        figures.push(format!("{fault}: {} KiB", run.peak_rss_kib));
    }
    eprintln!("dialtone call peak RSS: {}", figures.join(", "));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The outcome class `dialtone load` must give each fault.
fn load_class(fault: Option<Behaviour>) -> &'static str {
    match fault {
        None | Some(Behaviour::MarkFlood | Behaviour::MediaFlood | Behaviour::HugePlay) => "ok",
        Some(Behaviour::HugeTwiml) => "twiml 11750",
        Some(Behaviour::SlowTwiml) => "webhook 11200",
        Some(Behaviour::RedirectLoop) => "twiml_loop 14106",
        Some(Behaviour::StuckUpgrade) => "stream_connect 31920",
        Some(Behaviour::HugeFrame) => "stream 31924",
        Some(Behaviour::NeverRead) => "stream stalled",
        Some(other) => panic!("{other} is not in this test's mix"),
    }
}

#[test]
fn a_50_call_load_with_hostile_apps_keeps_the_healthy_calls_and_its_memory() {
    const CALLS: u64 = 50;
    const SEED: u64 = 12;
    let spec = "huge_twiml=0.06,slow_twiml=0.06,redirect_loop=0.06,huge_play=0.06,\
                stuck_upgrade=0.06,mark_flood=0.06,huge_frame=0.06,media_flood=0.06,never_read=0.06";
    let misbehave: Misbehave = spec.parse().unwrap();
    let url = bot(spec);

    // Every call's fault, from the SIDs the run will use (seeded by index).
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..CALLS {
        let fault = misbehave.for_call(&sid::seeded("CA", SEED, i));
        *expected.entry(load_class(fault)).or_default() += 1;
        *faults
            .entry(fault.map_or("none".into(), |f| f.to_string()))
            .or_default() += 1;
    }
    assert!(
        faults.len() >= 9,
        "the seed must hit (nearly) every fault: {faults:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = dialtone(
        &[
            "load",
            "--webhook",
            &url,
            "--calls",
            &CALLS.to_string(),
            "--concurrency",
            "50",
            "--ramp",
            "1s",
            "--seed",
            &SEED.to_string(),
            "--tail",
            "20s",
            "--max-duration",
            "40s",
            "--webhook-timeout",
            "3s",
            "--no-audio-timeout",
            "25s",
            "--progress",
            "off",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let summary: Value = serde_json::from_slice(
        &std::fs::read(out.join("summary.json"))
            .unwrap_or_else(|e| panic!("no summary.json ({e}): {}\n{}", run.stdout, run.stderr)),
    )
    .unwrap();

    // Every call has exactly one class, the one its fault predicts.
    let outcomes: BTreeMap<String, u64> =
        serde_json::from_value(summary["outcomes"].clone()).unwrap();
    let expected: BTreeMap<String, u64> = expected
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(outcomes, expected, "faults {faults:?}\n{}", run.stderr);
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);

    // The healthy calls (floods included) kept their measurements: each heard its reply,
    // and so did the calls whose app broke the protocol only after its first reply. A
    // `huge_play` call is still playing its 200 MiB `<Play>` when it ends: no stream.
    let ok = expected["ok"];
    let count = |fault: &str| faults.get(fault).copied().unwrap_or(0);
    let replied = ok + count("huge_frame") - count("huge_play");
    let metric = |name: &str| summary["metrics"][name]["count"].as_u64().unwrap_or(0);
    assert_eq!(metric("first_audio"), replied, "{}", summary["metrics"]);
    assert!(metric("turn_latency") >= replied, "{}", summary["metrics"]);

    let rss = summary["generator"]["max_rss_kib"].as_u64().unwrap();
    assert!(rss < LOAD_RSS_BOUND_KIB, "peak RSS {rss} KiB");
    assert!(run.peak_rss_kib < LOAD_RSS_BOUND_KIB, "peak RSS {rss} KiB");
    eprintln!(
        "dialtone load, 50 calls ({faults:?}): peak RSS {} KiB",
        run.peak_rss_kib
    );
}
