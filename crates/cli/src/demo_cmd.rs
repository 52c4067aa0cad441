//! `dialtone demo`: the embedded default. Starts the reference voice app in-process on a
//! loopback port (through `load`, which does so when no `--webhook` is given) and runs a short
//! load against it (tens of full calls, under a minute), then
//! prints the report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
}

/// Runs `dialtone demo`.
pub(crate) async fn run(opts: DemoOpts) -> anyhow::Result<ExitCode> {
    // Without a webhook, `load` starts the reference app itself, wired to its milestone
    // endpoint, so the demo's report includes the app's own milestones.
    let load = LoadOpts::demo(
        None,
        opts.calls,
        opts.calls as usize,
        Duration::from_secs(5),
    )
    .with_out(opts.out);
    println!(
        "dialtone demo: {} full calls (signed webhook, TwiML, Media Streams, marks) against the \
         reference voice app on a loopback port, started over 5 s",
        opts.calls
    );
    crate::load_cmd::run(load).await
}

/// Starts the reference voice app on `127.0.0.1:0`; returns its voice URL and task.
/// The app reports its milestones to `events_url`.
pub(crate) async fn start_bot(
    auth_token: &str,
    events_url: Option<String>,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port for the reference app")?;
    let addr = listener.local_addr()?;
    let config = dialtone_bot::BotConfig {
        auth_token: auth_token.to_string(),
        events_url,
        ..dialtone_bot::BotConfig::default()
    };
    let handle = tokio::spawn(async move {
        if let Err(e) = dialtone_bot::serve(listener, config, std::future::pending()).await {
            tracing::error!("reference app stopped: {e}");
        }
    });
    Ok((format!("http://{addr}/voice"), handle))
}
