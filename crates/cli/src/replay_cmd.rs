//! `dialtone replay`: plays the caller's side of one captured call back against an app and
//! reports whether the app answers as it did in the capture (exit 0) or where it diverges
//! (exit 1). Bad input — an unreadable capture, a bad URL, an unreachable app — exits 2.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use dialtone_call::DEFAULT_AUTH_TOKEN;
use dialtone_replay::ReplayOptions;

/// Options of `dialtone replay`.
#[derive(Debug, Args)]
pub(crate) struct ReplayOpts {
    /// The capture file (`dialtone call --capture FILE`).
    file: PathBuf,
    /// The app's voice webhook URL: its local address, or its public https:// URL with a
    /// --tunnel mapping.
    #[arg(long, value_name = "URL")]
    webhook: String,
    /// The call to replay when the file holds several (default: the first).
    #[arg(long, value_name = "SID")]
    call_sid: Option<String>,
    /// Auth token that signs the webhook and the stream upgrade (X-Twilio-Signature).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", default_value = DEFAULT_AUTH_TOKEN, hide_env_values = true)]
    auth_token: String,
    /// Send the captured messages back to back (order and bytes kept, idle time skipped)
    /// instead of at their captured times.
    #[arg(long)]
    fast: bool,
    /// Compare the app's media messages by shape only, not their audio payload.
    #[arg(long)]
    ignore_payloads: bool,
    /// How long to wait for the app's own close when the capture ended by the app (ms, at
    /// most 604800000: 7 days, the longest duration dialtone takes).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=604_800_000))]
    grace_ms: u64,
    /// A ConversationRelay session's first-token latency after a prompt further than this
    /// from the captured one is a timing divergence (ms).
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=604_800_000))]
    latency_tolerance_ms: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: crate::net_args::NetArgs,
}

pub(crate) async fn run(opts: ReplayOpts) -> anyhow::Result<ExitCode> {
    crate::net_args::check_webhook("--webhook", &opts.webhook)?;
    let mut ropts = ReplayOptions::new(&opts.file, &opts.webhook, &opts.auth_token);
    ropts.call_sid = opts.call_sid;
    ropts.fast = opts.fast;
    ropts.ignore_payloads = opts.ignore_payloads;
    ropts.grace = Duration::from_millis(opts.grace_ms);
    ropts.latency_tolerance = Duration::from_millis(opts.latency_tolerance_ms);
    ropts.net = opts.net.net()?;
    ropts.tunnels = opts.net.tunnels(&Default::default());
    let report = dialtone_replay::replay(&ropts).await?;
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serializing the report")?
        );
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::from(report.exit_code()))
}
