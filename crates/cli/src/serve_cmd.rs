//! `dialtone serve`: the Twilio-compatible REST API, hosted numbers, status callbacks,
//! recordings and the live web page, until Ctrl-C / SIGTERM. With no number configured it
//! starts the reference voice app and hosts `+15005550001` for it, so a script using an
//! official helper library can place a call at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use dialtone_server::ServerConfig;
use dialtone_server::config::{Account, DEFAULT_AUTH_TOKEN, DEFAULT_NUMBER};

/// Where `dialtone serve` listens by default (2010, as in the API version 2010-04-01).
const DEFAULT_LISTEN: &str = "127.0.0.1:2010";

/// Options of `dialtone serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeOpts {
    /// TOML config file: accounts, numbers and their voice URLs, simulation knobs (see
    /// docs/serve.md).
    #[arg(long, env = "DIALTONE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:2010, or the config file's `listen`].
    #[arg(long, env = "DIALTONE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Port on 127.0.0.1 (0 picks a free one); the easy way to run instances side by side.
    #[arg(long, env = "DIALTONE_PORT", conflicts_with = "listen")]
    port: Option<u16>,
    /// Base URL apps reach dialtone at, used in recording URLs [default: http://ADDR].
    #[arg(long, env = "DIALTONE_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Account SID of the (first) account.
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    account_sid: Option<String>,
    /// Auth token of the (first) account: Basic-auth password and webhook signing key.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Host a number: `+15551230000=http://127.0.0.1:3000/voice` (repeatable).
    #[arg(long = "number", value_name = "E164=URL")]
    numbers: Vec<String>,
    /// Voice URL for the default number +15005550001, instead of the reference app.
    #[arg(long, env = "DIALTONE_VOICE_URL", value_name = "URL")]
    voice_url: Option<String>,
    /// Do not start the reference voice app, even when no number is configured.
    #[arg(long)]
    no_bot: bool,
    /// Open the web page and its stream audio to anyone who can reach the port, showing
    /// every account (a single-user machine); by default they need an account's credentials
    /// (config `web_auth = false`).
    #[arg(long)]
    no_web_auth: bool,
    /// Recording media needs the account's credentials, like Twilio's "Enforce HTTP Auth on
    /// Media URLs" (config `enforce_http_auth_on_media_urls = true`); open by default.
    #[arg(long)]
    enforce_http_auth_on_media_urls: bool,
    /// Write every call's exchanges (webhooks, every stream message with its time) to
    /// DIR/{CallSid}.jsonl, to read or `dialtone replay` (the softphone's calls too).
    #[arg(long, value_name = "DIR")]
    capture: Option<std::path::PathBuf>,
    /// Global tunnel mappings and TLS trust (before the config file's `tunnels`; numbers'
    /// own `tunnels` come first).
    #[command(flatten)]
    net: crate::net_args::NetArgs,
}

/// Runs `dialtone serve` until a shutdown signal.
pub(crate) async fn run(mut opts: ServeOpts) -> anyhow::Result<ExitCode> {
    // An empty environment variable (compose files often pass `${VAR:-}`) means unset.
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    opts.voice_url = set(opts.voice_url.take());
    opts.public_url = set(opts.public_url.take());
    opts.account_sid = set(opts.account_sid.take());
    opts.auth_token = set(opts.auth_token.take());
    opts.config = opts.config.take().filter(|p| !p.as_os_str().is_empty());
    let mut config = match &opts.config {
        Some(path) => ServerConfig::load(path)
            .with_context(|| format!("cannot use --config {}", path.display()))?,
        None => ServerConfig::default(),
    };
    override_account(&mut config, &opts)?;
    config.web_auth &= !opts.no_web_auth;
    if let Some(dir) = &opts.capture {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--capture {}: cannot create the folder", dir.display()))?;
        config.capture_dir = Some(dir.clone());
    }
    config.enforce_http_auth_on_media_urls |= opts.enforce_http_auth_on_media_urls;
    config.tunnels = opts.net.tunnels(&config.tunnels);
    if !opts.net.cacerts.is_empty() || opts.net.insecure {
        let mut tls = config.tls.clone();
        tls.cacerts.extend(opts.net.cacerts.iter().cloned());
        tls.insecure |= opts.net.insecure;
        config.set_tls(tls).context("TLS settings")?;
    }
    config.public_url = opts
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string())
        .or(config.public_url);
    for spec in &opts.numbers {
        let Some((number, url)) = spec.split_once('=') else {
            bail!(
                "--number {spec:?}: expected E164=URL, e.g. +15551230000=http://127.0.0.1:3000/voice"
            );
        };
        if !dialtone_server::format::is_phone_number(number)
            || !dialtone_server::format::is_http_url(url)
        {
            bail!("--number {spec:?}: expected an E.164 number and an http(s) URL");
        }
        config.host_number(number, url);
    }
    let listen: SocketAddr = match (opts.listen, opts.port, &config.listen) {
        (Some(a), _, _) => a,
        (None, Some(p), _) => SocketAddr::from(([127, 0, 0, 1], p)),
        (None, None, Some(a)) => a.parse().with_context(|| format!("config listen {a:?}"))?,
        (None, None, None) => DEFAULT_LISTEN.parse()?,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (another instance? try --port)"))?;
    let addr = listener.local_addr()?;
    let mut bot_url = None;
    if let Some(url) = &opts.voice_url {
        if !dialtone_server::format::is_http_url(url) {
            bail!("--voice-url {url:?} is not an http(s) URL");
        }
        config.host_number(DEFAULT_NUMBER, url);
    } else if config.numbers.is_empty() && !opts.no_bot {
        // The task runs for the server's life; its handle is not needed.
        let bot = dialtone_bot::BotConfig {
            auth_token: config.accounts[0].auth_token.clone(),
            ..dialtone_bot::BotConfig::default()
        };
        let (url, _) = dialtone_bot::spawn_loopback(bot)
            .await
            .context("cannot start the reference app on a loopback port")?;
        config.host_number(DEFAULT_NUMBER, &url);
        bot_url = Some(url);
    }
    print_banner(&config, addr, bot_url.as_deref(), opts.auth_token.is_some());
    dialtone_server::run(listener, config, shutdown_signal())
        .await
        .context("server stopped")?;
    eprintln!("dialtone serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `--account-sid` / `--auth-token` (or `TWILIO_ACCOUNT_SID` / `TWILIO_AUTH_TOKEN`) replace
/// the first account's credentials, so scripts keep the environment they use with Twilio.
fn override_account(config: &mut ServerConfig, opts: &ServeOpts) -> anyhow::Result<()> {
    let first: &mut Account = &mut config.accounts[0];
    if let Some(sid) = &opts.account_sid {
        if !dialtone_protocol::sid::is_valid("AC", sid) {
            bail!("--account-sid {sid:?} is not AC followed by 32 hex digits");
        }
        first.sid = sid.clone();
    }
    if let Some(token) = &opts.auth_token {
        first.auth_token = token.clone();
    }
    Ok(())
}

fn print_banner(config: &ServerConfig, addr: SocketAddr, bot_url: Option<&str>, token_given: bool) {
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    // The first line is stable: scripts and tests read the address from it.
    println!("dialtone serve listening on http://{addr}");
    for a in &config.accounts {
        let token = if token_given || a.auth_token != DEFAULT_AUTH_TOKEN {
            "(as configured)".to_string()
        } else {
            a.auth_token.clone()
        };
        println!("  account    {}  auth token {token}", a.sid);
    }
    for n in &config.numbers {
        let url = n.voice_url.as_deref().unwrap_or("(no voice URL)");
        let note = if Some(url) == bot_url {
            "  (reference voice app)"
        } else {
            ""
        };
        println!("  number     {} -> {url}{note}", n.phone_number);
    }
    let who = if config.web_auth {
        "  (sign in with an account SID and auth token)"
    } else {
        "  (open to anyone: web auth off)"
    };
    println!("  web page   {base}/{who}");
    println!("  python     client.api.base_url = \"{base}\"");
    println!("  node       client.api.baseUrl = '{base}'");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
