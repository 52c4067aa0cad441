//! `dialtone report merge DIR...`: adds up the `--out` directories of shards (or any runs of
//! one workload) into one report: counts summed, histograms merged from their `.hlog`s.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use dialtone_load::Finished;
use dialtone_load::output::{OutputFormat, merge_dirs};
use dialtone_load::threshold::Threshold;

/// Options of `dialtone report`.
#[derive(Debug, Args)]
pub(crate) struct ReportOpts {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Merge shard outputs (`dialtone load --shard I/N --out DIR`) into one report.
    Merge(MergeOpts),
}

#[derive(Debug, Args)]
struct MergeOpts {
    /// The shards' --out directories.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Write the merged summary.json, histograms.hlog and report.html here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Pass/fail gates on the merged results (repeatable).
    #[arg(long, value_name = "EXPR")]
    threshold: Vec<Threshold>,
    /// Print the merged summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `dialtone report …`.
pub(crate) fn run(opts: ReportOpts) -> anyhow::Result<ExitCode> {
    match opts.command {
        ReportCommand::Merge(m) => {
            let dirs: Vec<&std::path::Path> = m.dirs.iter().map(PathBuf::as_path).collect();
            let (summary, totals, hlog) = merge_dirs(&dirs).context("report merge")?;
            let format = if m.json {
                OutputFormat::Json
            } else {
                OutputFormat::Text
            };
            crate::load_cmd::finish(
                Finished {
                    summary,
                    totals,
                    hlog,
                    calls: None,
                },
                &m.threshold,
                m.out.as_deref(),
                format,
            )
        }
    }
}
