//! Issue 12, items 8 and 15: every duration flag of every subcommand, every duration field of
//! a scenario file and every duration fault key, given 1e20s, inf, nan and -1, and every
//! count, percentage and zero timeout out of its range, is bad input: exit 2 with the flag
//! and the reason named, never a panic (exit 101) and never a run.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dialtone");

/// What each hostile value must be called.
const HOSTILE: &[(&str, &str)] = &[
    ("1e20s", "longer than the maximum, 168h"),
    ("inf", "longer than the maximum, 168h"),
    ("nan", "not a duration"),
    ("-1", "negative"),
];

/// (subcommand and the arguments it needs, duration flags).
const DURATION_FLAGS: &[(&[&str], &[&str])] = &[
    (
        &["call"],
        &[
            "--tail",
            "--max-duration",
            "--webhook-timeout",
            "--no-audio-timeout",
            "--milestone-grace",
        ],
    ),
    (
        &["load"],
        &[
            "--duration",
            "--ramp",
            "--tail",
            "--max-duration",
            "--webhook-timeout",
            "--no-audio-timeout",
            "--lateness-bound",
            "--drain",
            "--milestone-grace",
        ],
    ),
    (
        &["load", "--stream", "ws://127.0.0.1:9/"],
        &["--seconds", "--ramp", "--drain"],
    ),
];

/// The duration fault keys, with the text around the duration.
const FAULT_KEYS: &[(&str, &str)] = &[
    ("jitter=", ""),
    ("burst=0.5:", ""),
    ("pause=", "+1s"),
    ("pause=1s+", ""),
    ("drop=", ""),
    ("close=", ":1000"),
    ("slow_read=", ""),
    ("mark_delay=", ""),
];

/// Runs dialtone; returns (exit code, stderr).
fn run(args: &[String]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--progress", "off"].iter().filter(|_| args[0] == "load"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn expect_bad_input(args: &[String], names: &[&str], failures: &mut Vec<String>) {
    let (code, stderr) = run(args);
    let named = names.iter().all(|n| stderr.contains(n));
    if code != Some(2) || !named || stderr.contains("panicked") {
        failures.push(format!(
            "{args:?}: exit {code:?}, wanted 2 naming {names:?}: {stderr}"
        ));
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_hostile_duration_is_exit_2_naming_the_flag_and_the_reason() {
    let mut failures = Vec::new();
    for (value, why) in HOSTILE {
        for (cmd, flags) in DURATION_FLAGS {
            for flag in *flags {
                let mut args = owned(cmd);
                args.push(format!("{flag}={value}"));
                expect_bad_input(&args, &[flag, why], &mut failures);
            }
        }
        let dtmf = format!("--stream-dtmf={value}:1");
        expect_bad_input(
            &owned(&["call", &dtmf]),
            &["--stream-dtmf", why],
            &mut failures,
        );
        for (before, after) in FAULT_KEYS {
            for cmd in ["call", "load"] {
                let spec = format!("--faults={before}{value}{after}");
                let key = before.split('=').next().unwrap();
                expect_bad_input(
                    &owned(&[cmd, &spec]),
                    &["--faults", key, why],
                    &mut failures,
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        for field in ["tail", "hangup_after", "stream_dtmf"] {
            let text = if field == "stream_dtmf" {
                format!("[[call]]\nname = \"x\"\nstream_dtmf = [\"{value}:1\"]\n")
            } else {
                format!("[[call]]\nname = \"x\"\n{field} = \"{value}\"\n")
            };
            let path = dir.path().join(format!("{field}.toml"));
            std::fs::write(&path, text).unwrap();
            let args = owned(&["load", "--scenario", path.to_str().unwrap()]);
            expect_bad_input(&args, &["scenario", field, why], &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn zero_timeouts_counts_and_percentages_out_of_range_are_exit_2() {
    let stream = ["load", "--stream", "ws://127.0.0.1:9/"];
    let cases: &[(&[&str], &str, &str)] = &[
        (&["call"], "--webhook-timeout=0s", "zero"),
        (&["call"], "--max-duration=0", "zero"),
        (&["load"], "--webhook-timeout=0s", "zero"),
        (&["load"], "--max-duration=0ms", "zero"),
        (&["load"], "--lateness-bound=0s", "zero"),
        (&["load"], "--duration=0s", "zero"),
        (&["load"], "--calls=0", "1..=10000000"),
        (&["load"], "--calls=10000001", "1..=10000000"),
        (&["load"], "--concurrency=0", "1..=100000"),
        (&["load"], "--concurrency=100001", "1..=100000"),
        (&["load"], "--rate=0", "0.001 to 100000"),
        (&["load"], "--rate=1e-300", "0.001 to 100000"),
        (&["load"], "--rate=1e9", "0.001 to 100000"),
        (&["load"], "--rate=nan", "0.001 to 100000"),
        (&["load"], "--callers=0", "1..=100000"),
        (&["load"], "--callers=4000000000", "1..=100000"),
        (&["load"], "--threshold=error_rate < 200%", "0% to 100%"),
        (&["load"], "--threshold=error_rate < -1%", "0% to 100%"),
        (&["load"], "--threshold=webhook p95 < -1ms", "0 to 168h"),
        (&["load"], "--threshold=failed_calls < 1.5", "not a value"),
        (&stream, "--threads=100000", "0..=1024"),
        (&stream, "--streams=100001", "1 to 100000"),
        (&["demo"], "--calls=0", "1..=10000"),
        (&["demo"], "--calls=100000", "1..=10000"),
        (
            &["replay", "x.jsonl", "--webhook", "http://127.0.0.1:9/"],
            "--grace-ms=18446744073709551615",
            "0..=604800000",
        ),
        (
            &["replay", "x.jsonl", "--webhook", "http://127.0.0.1:9/"],
            "--latency-tolerance-ms=604800001",
            "0..=604800000",
        ),
        (
            &["report", "merge", "."],
            "--threshold=error_rate > 101%",
            "0% to 100%",
        ),
    ];
    let mut failures = Vec::new();
    for (cmd, arg, why) in cases {
        let mut args = owned(cmd);
        args.push(arg.to_string());
        let flag = arg.split('=').next().unwrap();
        expect_bad_input(&args, &[why], &mut failures);
        let (_, stderr) = run(&args);
        if !stderr.contains(flag) {
            failures.push(format!("{args:?}: {flag} not named: {stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
