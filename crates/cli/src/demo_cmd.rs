//! `dialtone demo`: the embedded default. Starts the reference voice app in-process on a
//! loopback port (through `load`, which does so when no `--webhook` is given) and runs a short
//! load against it (tens of full calls, under a minute), then
//! prints the report.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::load_cmd::LoadOpts;

/// Options of `dialtone demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoOpts {
    /// Number of calls, all at once (1 to 10,000: a demo, not a capacity test).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    calls: u64,
    /// Write summary.json, histograms.hlog and report.html here too.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Make the reference app a ConversationRelay app (`load --embedded-app relay`): each
    /// call's turns become prompts answered with streamed text tokens.
    #[arg(long)]
    relay: bool,
}

/// Runs `dialtone demo`.
pub(crate) async fn run(opts: DemoOpts) -> anyhow::Result<ExitCode> {
    // Without a webhook, `load` starts the reference app itself, wired to its milestone
    // endpoint, so the demo's report includes the app's own milestones.
    let calls = opts.calls.to_string();
    let mut args: Vec<OsString> = ["--calls", &calls, "--concurrency", &calls, "--ramp", "5s"]
        .into_iter()
        .chain(["--callers", "20"])
        .map(OsString::from)
        .collect();
    if opts.relay {
        args.extend(["--embedded-app", "relay"].map(OsString::from));
    }
    if let Some(out) = opts.out {
        args.extend([OsString::from("--out"), out.into_os_string()]);
    }
    let load = LoadOpts::parse_from(args).context("the demo's load options")?;
    let what = if opts.relay {
        "signed webhook, TwiML, ConversationRelay prompts and streamed tokens"
    } else {
        "signed webhook, TwiML, Media Streams, marks"
    };
    println!(
        "dialtone demo: {} full calls ({what}) against the reference voice app on a loopback \
         port, started over 5 s",
        opts.calls
    );
    crate::load_cmd::run(load).await
}
