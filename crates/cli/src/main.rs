//! `dialtone`: a local Twilio Programmable Voice simulator and Media Streams load generator.
//!
//! `main` only parses flags, installs logging and maps the outcome to an exit code; each
//! subcommand lives in its own module with its options.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bot_cmd;
mod call;
mod call_flags;
mod call_text;
mod caller;
mod demo_cmd;
mod input;
mod load_cmd;
mod metrics_cmd;
mod net_args;
mod replay_cmd;
mod report_cmd;
mod rest;
mod serve_cmd;
mod units;

/// A local Twilio Programmable Voice simulator and Media Streams load generator.
#[derive(Debug, Parser)]
#[command(name = "dialtone", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Place one call against a voice app, exactly as Twilio would, and report every step.
    Call(call::CallOpts),
    /// Run the reference voice app on its own (a model app and a target for call/load).
    Bot(bot_cmd::BotOpts),
    /// Summarise a JSON-lines log of app milestones: event, count, avg, p50, p95, p99, max.
    Metrics(metrics_cmd::MetricsOpts),
    /// Load a voice app with many calls (or a stream handler with many Media Streams).
    Load(load_cmd::LoadOpts),
    /// Run a short load against the built-in reference voice app and print the report.
    Demo(demo_cmd::DemoOpts),
    /// Work with load results (`report merge DIR...`).
    Report(report_cmd::ReportOpts),
    /// Run a local Twilio-compatible REST API (Calls, numbers, recordings) with a web page.
    Serve(serve_cmd::ServeOpts),
    /// Replay the caller's side of a captured call against an app and report divergences.
    Replay(replay_cmd::ReplayOpts),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // No colour codes in logs redirected to a file or a CI log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Call(opts) => call::run(opts).await,
            Command::Bot(opts) => bot_cmd::run(opts).await,
            Command::Metrics(opts) => metrics_cmd::run(opts),
            Command::Load(opts) => load_cmd::run(opts).await,
            Command::Demo(opts) => demo_cmd::run(opts).await,
            Command::Report(opts) => report_cmd::run(opts),
            Command::Serve(opts) => serve_cmd::run(opts).await,
            Command::Replay(opts) => replay_cmd::run(opts).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
