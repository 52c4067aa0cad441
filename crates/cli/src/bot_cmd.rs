//! `dialtone bot`: the reference voice app on its own, as a model of a production app and a
//! target for `dialtone call`/`load` (or for real Twilio through a tunnel).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

/// Options of `dialtone bot`.
#[derive(Debug, Args)]
pub(crate) struct BotOpts {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:3000", env = "DIALTONE_BOT_LISTEN")]
    listen: SocketAddr,
    /// Auth token it validates X-Twilio-Signature with.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", default_value = dialtone_bot::DEFAULT_AUTH_TOKEN, hide_env_values = true)]
    auth_token: String,
    /// Base URL it is reached at, when not the listen address (e.g. behind a proxy).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Where it POSTs its milestones (`dialtone call` prints its events URL).
    #[arg(long, value_name = "URL", env = "DIALTONE_EVENTS_URL")]
    events_url: Option<String>,
    /// Only these caller numbers get through (repeatable); others hear a rejection.
    #[arg(long = "registered", value_name = "NUMBER")]
    registered: Vec<String>,
    /// Misbehave on purpose, to test a caller against a faulty app: comma-separated
    /// `FAULT=FRACTION` (share of calls, chosen from each CallSid, so a seeded load hits the
    /// same calls every time; shares add up to at most 1) and flags. Faults: `http500`
    /// (webhook answers 500), `bad_twiml` (unclosed tag, 12100), `refuse_upgrade` (the
    /// stream URL gets `?misbehave=refuse_upgrade` and that upgrade answers 403),
    /// `abrupt_close` (TCP dropped without a close frame after 1 s of media), `never_read`
    /// (stops reading after `start`, holds the socket), `mute` (reads, never answers),
    /// `split_vad` (reports `vad.speech_start` again 700 ms into a turn), `talk_over`
    /// (replies 300 ms into a turn, over the caller). Hostile faults (docs/bot.md):
    /// `huge_twiml` (100 MiB body), `slow_twiml` (1 byte/s), `redirect_loop`, `huge_play`
    /// (a 200 MiB WAV), `stuck_upgrade` (never answered), `mark_flood` (200,000 marks),
    /// `huge_frame` (one 10 MiB message), `media_flood` (an hour of audio at once).
    /// Relay faults (with --relay only): `slow_first_token` (every answer's first token 3 s
    /// after the prompt), `token_flood` (a first answer of 20,000 tokens at once),
    /// `never_last` (no answer ends with last: true), `close_mid_turn` (closes the socket two
    /// tokens into the first answer, without `end`), `malformed` (three malformed messages
    /// after each answer's first token). Flag: `crash_on_duplicate` (every
    /// stream: a repeated inbound sequenceNumber/chunk logs `crash: duplicated media frame
    /// seq=N` to stderr and drops the socket). E.g. `http500=0.1,never_read=0.05`.
    #[arg(long, value_name = "SPEC", default_value = "none")]
    misbehave: dialtone_bot::Misbehave,
    /// Be a ConversationRelay app: the webhook answers <Connect><ConversationRelay> to
    /// `/relay`, which echoes each final prompt as text tokens (150 ms of thinking, 30 ms
    /// apart), answers digits and stops an answer on `interrupt`.
    #[arg(long)]
    relay: bool,
}

/// Runs the reference app until Ctrl-C or SIGTERM.
pub(crate) async fn run(opts: BotOpts) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let config = dialtone_bot::BotConfig {
        auth_token: opts.auth_token,
        public_url: opts.public_url,
        registered: (!opts.registered.is_empty()).then_some(opts.registered),
        events_url: opts.events_url.clone(),
        misbehave: opts.misbehave.clone(),
        relay: opts.relay.then(dialtone_bot::RelayMode::default),
        ..dialtone_bot::BotConfig::default()
    };
    // Written without println!: a closed stdout (a supervisor that stopped reading) must not
    // take the app down.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "reference voice app listening on http://{addr}");
    let _ = writeln!(
        out,
        "  voice webhook  http://{addr}/voice   (POST or GET, X-Twilio-Signature checked)"
    );
    if opts.relay {
        let _ = writeln!(
            out,
            "  relay socket   ws://{addr}/relay   (ConversationRelay, X-Twilio-Signature checked)"
        );
    } else {
        let _ = writeln!(out, "  media stream   ws://{addr}/media");
    }
    let _ = match &opts.events_url {
        Some(u) => writeln!(out, "  milestones to  {u}"),
        None => writeln!(out, "  milestones     not reported (--events-url)"),
    };
    if !opts.misbehave.is_none() {
        let _ = writeln!(out, "  MISBEHAVING    {}", opts.misbehave);
    }
    let _ = out.flush();
    drop(out);
    dialtone_bot::serve(listener, config, crate::serve_cmd::shutdown_signal())
        .await
        .context("reference voice app")?;
    Ok(ExitCode::SUCCESS)
}
