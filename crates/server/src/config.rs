//! What `dialtone serve` runs with: accounts and their auth tokens, the phone numbers it
//! hosts (each routed to a voice URL like a Twilio account's numbers), and the simulation
//! knobs. Read from a TOML file in two stages: [`FileConfig`] mirrors the file, and
//! [`ServerConfig::from_file`] validates it into what the server uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_call::HttpMethod;
use serde::Deserialize;

/// The account used when the config file names none (dialtone's usual local default).
pub const DEFAULT_ACCOUNT_SID: &str = dialtone_call::DEFAULT_ACCOUNT_SID;
/// The auth token of the default account.
pub const DEFAULT_AUTH_TOKEN: &str = dialtone_call::DEFAULT_AUTH_TOKEN;
/// The number hosted by default (routed to the reference app when the CLI starts one).
pub const DEFAULT_NUMBER: &str = "+15005550001";

/// Errors in the config file or the values derived from it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config {path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// The parser's words (line and key named).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// The far-end audio file could not be used.
    #[error(transparent)]
    Audio(#[from] dialtone_audio::AudioError),
}

/// The config file as written (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Base URL the server is reached at by apps (recording URLs in callbacks use it);
    /// default `http://{listen address}`.
    pub public_url: Option<String>,
    /// WAV a callee that dialtone does not host plays into the call (default: a built-in
    /// caller utterance).
    pub far_end_audio: Option<PathBuf>,
    /// Directory of WAVs served under `/audio/` (handy for `<Play>` in caller TwiML).
    pub audio_dir: Option<PathBuf>,
    /// How long an outbound call rings before it is answered, in ms (default 1000).
    pub ring_ms: Option<u64>,
    /// How long a caller stays on the line after its audio ends, in ms (default 2000).
    pub caller_tail_ms: Option<u64>,
    /// Calls that run at once; more wait `queued` (default 100).
    pub max_concurrent_calls: Option<usize>,
    /// Calls that may wait `queued`; more are refused with 429/20429 (default 1000).
    pub max_queued_calls: Option<usize>,
    /// Finished calls kept for the API and the web page (default 500); live calls are never
    /// forgotten and do not count (they are bounded by the two limits above).
    pub history: Option<usize>,
    /// Longest a call may last, in seconds (default 4 h, Twilio's `TimeLimit` default).
    pub max_call_secs: Option<u64>,
    /// Refuse a `From` that is not one of the account's numbers or verified caller IDs
    /// (21210), as Twilio does. Off by default so existing scripts run unchanged.
    pub require_known_from: Option<bool>,
    /// The web page and its audio need an account's credentials (HTTP Basic: account SID and
    /// auth token, or an API key of the account), and each account sees only its own calls.
    /// On by default; `false` opens them to anyone who can reach the port (a single-user
    /// machine).
    pub web_auth: Option<bool>,
    /// Recording media (`…/Recordings/{RE}.wav`) needs the account's credentials, like
    /// Twilio's "Enforce HTTP Auth on Media URLs" setting. Off by default, as on Twilio.
    pub enforce_http_auth_on_media_urls: Option<bool>,
    /// Public origins mapped to local ones, `"https://bot.example.ts.net=http://127.0.0.1:8765"`,
    /// for every number (each number's own `tunnels` come first).
    #[serde(default)]
    pub tunnels: Vec<String>,
    /// PEM files of CAs trusted besides the system roots for `https://`/`wss://` apps.
    #[serde(default)]
    pub cacert: Vec<PathBuf>,
    /// Accept any TLS certificate from apps.
    pub insecure: Option<bool>,
    /// Accounts and their credentials.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Numbers hosted by the accounts.
    #[serde(default)]
    pub numbers: Vec<NumberConfig>,
}

/// One account in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// `AC` + 32 hex.
    pub sid: String,
    /// Primary auth token: HTTP Basic password and the key that signs webhooks.
    pub auth_token: String,
    /// Shown in the web page.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// API keys (`SK…` + secret) accepted for Basic auth.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// Numbers allowed as `From` besides the account's own, when `require_known_from`.
    #[serde(default)]
    pub verified_caller_ids: Vec<String>,
}

/// An API key: Basic auth as `SK…:secret` with the account SID in the path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// `SK` + 32 hex.
    pub sid: String,
    /// The key's secret.
    pub secret: String,
}

/// One hosted number: where its calls go, like a Twilio number's voice configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    /// E.164, e.g. `+15005550001`.
    pub phone_number: String,
    /// Owning account (default: the first account).
    #[serde(default)]
    pub account_sid: Option<String>,
    /// Shown in the API (default: the number formatted).
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// The voice webhook called for inbound calls.
    #[serde(default)]
    pub voice_url: Option<String>,
    /// `POST` (default) or `GET`.
    #[serde(default)]
    pub voice_method: Option<String>,
    /// Requested when the voice URL fails.
    #[serde(default)]
    pub voice_fallback_url: Option<String>,
    /// Receives the terminal status callback of inbound calls.
    #[serde(default)]
    pub status_callback: Option<String>,
    /// `POST` (default) or `GET`.
    #[serde(default)]
    pub status_callback_method: Option<String>,
    /// This number's tunnel mappings (`PUBLIC=LOCAL`), before the global ones.
    #[serde(default)]
    pub tunnels: Vec<String>,
}

/// A validated account.
#[derive(Clone)]
pub struct Account {
    /// `AC…`.
    pub sid: String,
    /// Auth token.
    pub auth_token: String,
    /// Display name.
    pub friendly_name: String,
    /// API keys: (sid, secret).
    pub api_keys: Vec<(String, String)>,
    /// Extra allowed `From` numbers.
    pub verified_caller_ids: Vec<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: configs end up in logs.
        f.debug_struct("Account")
            .field("sid", &self.sid)
            .field("friendly_name", &self.friendly_name)
            .finish_non_exhaustive()
    }
}

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on from the file (`None`: the CLI's default).
    pub listen: Option<String>,
    /// Accounts; the first is the default owner of numbers.
    pub accounts: Vec<Account>,
    /// Numbers hosted at start (more can be created through the API).
    pub numbers: Vec<NumberConfig>,
    /// Base URL apps reach the server at; `None`: `http://{bound address}`.
    pub public_url: Option<String>,
    /// What a callee that dialtone does not host says.
    pub far_end_audio: Arc<FrameSet>,
    /// Directory served under `/audio/`.
    pub audio_dir: Option<PathBuf>,
    /// `--capture DIR`: every call's exchanges written to `DIR/{CallSid}.jsonl`.
    pub capture_dir: Option<PathBuf>,
    /// Ring time of outbound calls.
    pub ring: Duration,
    /// How long a caller stays after its audio.
    pub caller_tail: Duration,
    /// Calls running at once.
    pub max_concurrent_calls: usize,
    /// Calls waiting `queued` at most.
    pub max_queued_calls: usize,
    /// Finished calls kept (at every moment; live calls come on top).
    pub history: usize,
    /// Longest call.
    pub max_call: Duration,
    /// Enforce 21210 on unknown `From`.
    pub require_known_from: bool,
    /// The web page and its audio need an account's credentials (`web_auth`).
    pub web_auth: bool,
    /// Recording media needs the account's credentials (`enforce_http_auth_on_media_urls`).
    pub enforce_http_auth_on_media_urls: bool,
    /// Global tunnel table (`--tunnel`, `tunnels = [...]`).
    pub tunnels: dialtone_call::Tunnels,
    /// TLS trust for `https://`/`wss://` apps (`cacert`, `insecure`).
    pub tls: dialtone_call::TlsOptions,
    /// The transport built from `tls`; rebuild it with [`ServerConfig::set_tls`].
    pub net: dialtone_call::Net,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self::from_file(FileConfig::default(), Path::new("."))
            .expect("the built-in defaults are valid")
    }
}

/// Largest config file read: a hand-written file is a few kB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Longest ring (`ring_ms`): Twilio rings at most 600 s (`Timeout`).
pub const MAX_RING_MS: u64 = 600_000;
/// Longest call (`max_call_secs`): 24 h, Twilio's largest `TimeLimit`.
pub const MAX_CALL_SECS: u64 = 24 * 3600;
/// Most calls at once (`max_concurrent_calls`).
pub const MAX_CALLS_AT_ONCE: usize = 100_000;
/// Most calls waiting `queued` (`max_queued_calls`).
pub const MAX_QUEUED: usize = 1_000_000;
/// Most finished calls kept (`history`).
pub const MAX_HISTORY: usize = 1_000_000;

/// Reads `path`, refusing a file over [`MAX_CONFIG_BYTES`] before reading it whole.
fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::Invalid(format!(
            "{} is over {MAX_CONFIG_BYTES} bytes: not a config file",
            path.display()
        )));
    }
    Ok(text)
}

impl ServerConfig {
    /// Reads and validates a TOML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_bounded(path)?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Toml {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_file(file, path.parent().unwrap_or(Path::new(".")))
    }

    /// Validates a parsed file; relative paths in it are taken from `base_dir`.
    pub fn from_file(file: FileConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut accounts = Vec::new();
        for a in file.accounts {
            if !dialtone_protocol::sid::is_valid("AC", &a.sid) {
                return Err(ConfigError::Invalid(format!(
                    "account sid {:?} is not AC + 32 hex digits",
                    a.sid
                )));
            }
            if a.auth_token.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "account {} has an empty auth_token",
                    a.sid
                )));
            }
            accounts.push(Account {
                friendly_name: a
                    .friendly_name
                    .unwrap_or_else(|| format!("{} (dialtone)", a.sid)),
                sid: a.sid,
                auth_token: a.auth_token,
                api_keys: a.api_keys.into_iter().map(|k| (k.sid, k.secret)).collect(),
                verified_caller_ids: a.verified_caller_ids,
            });
        }
        if accounts.is_empty() {
            accounts.push(Account {
                sid: DEFAULT_ACCOUNT_SID.into(),
                auth_token: DEFAULT_AUTH_TOKEN.into(),
                friendly_name: "dialtone local account".into(),
                api_keys: Vec::new(),
                verified_caller_ids: Vec::new(),
            });
        }
        for n in &file.numbers {
            validate_number(n, &accounts)?;
        }
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
        let tunnels = parse_tunnels(&file.tunnels, "tunnels")?;
        let tls = dialtone_call::TlsOptions {
            cacerts: file.cacert.into_iter().map(resolve).collect(),
            insecure: file.insecure.unwrap_or(false),
        };
        let net = dialtone_call::Net::new(&tls).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let far_end_audio = match file.far_end_audio {
            Some(p) => dialtone_audio::load_frames(&resolve(p))?,
            None => dialtone_corpus::caller::builtin_hello()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
        };
        let positive = |v: Option<usize>, default: usize, max: usize, name: &str| match v {
            Some(v) if v == 0 || v > max => Err(ConfigError::Invalid(format!(
                "{name} = {v} is out of range: 1 to {max}"
            ))),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        // Durations are bounded so no later `Instant + duration` can overflow.
        let millis = |v: Option<u64>, default: u64, max: u64, name: &str| match v {
            Some(v) if v > max => Err(ConfigError::Invalid(format!(
                "{name} = {v} is out of range: 0 to {max}"
            ))),
            v => Ok(Duration::from_millis(v.unwrap_or(default))),
        };
        let max_call_secs = match file.max_call_secs {
            Some(v) if v == 0 || v > MAX_CALL_SECS => {
                return Err(ConfigError::Invalid(format!(
                    "max_call_secs = {v} is out of range: 1 to {MAX_CALL_SECS} (24 h)"
                )));
            }
            v => v.unwrap_or(4 * 3600),
        };
        Ok(Self {
            listen: file.listen,
            accounts,
            numbers: file.numbers,
            public_url: file.public_url.map(|u| u.trim_end_matches('/').to_string()),
            far_end_audio: Arc::new(far_end_audio),
            audio_dir: file.audio_dir.map(resolve),
            capture_dir: None,
            ring: millis(file.ring_ms, 1000, MAX_RING_MS, "ring_ms")?,
            caller_tail: millis(
                file.caller_tail_ms,
                2000,
                MAX_CALL_SECS * 1000,
                "caller_tail_ms",
            )?,
            max_concurrent_calls: positive(
                file.max_concurrent_calls,
                100,
                MAX_CALLS_AT_ONCE,
                "max_concurrent_calls",
            )?,
            max_queued_calls: positive(
                file.max_queued_calls,
                1000,
                MAX_QUEUED,
                "max_queued_calls",
            )?,
            history: positive(file.history, 500, MAX_HISTORY, "history")?,
            max_call: Duration::from_secs(max_call_secs),
            require_known_from: file.require_known_from.unwrap_or(false),
            web_auth: file.web_auth.unwrap_or(true),
            enforce_http_auth_on_media_urls: file.enforce_http_auth_on_media_urls.unwrap_or(false),
            tunnels,
            tls,
            net,
        })
    }

    /// Replaces the TLS trust (and the transport built from it).
    pub fn set_tls(&mut self, tls: dialtone_call::TlsOptions) -> Result<(), ConfigError> {
        self.net =
            dialtone_call::Net::new(&tls).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.tls = tls;
        Ok(())
    }

    /// Adds (or replaces) a hosted number routed to `voice_url`, owned by the first
    /// account.
    pub fn host_number(&mut self, phone_number: &str, voice_url: &str) {
        self.numbers.retain(|n| n.phone_number != phone_number);
        self.numbers.push(NumberConfig {
            phone_number: phone_number.into(),
            account_sid: None,
            friendly_name: None,
            voice_url: Some(voice_url.into()),
            voice_method: None,
            voice_fallback_url: None,
            status_callback: None,
            status_callback_method: None,
            tunnels: Vec::new(),
        });
    }
}

/// Parses `PUBLIC=LOCAL` mappings; `what` names the key in errors.
pub(crate) fn parse_tunnels(
    specs: &[String],
    what: &str,
) -> Result<dialtone_call::Tunnels, ConfigError> {
    specs
        .iter()
        .map(|s| {
            s.parse::<dialtone_call::Tunnel>()
                .map_err(|e| ConfigError::Invalid(format!("{what}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(dialtone_call::Tunnels::new)
}

fn validate_number(n: &NumberConfig, accounts: &[Account]) -> Result<(), ConfigError> {
    if !crate::format::is_phone_number(&n.phone_number) {
        return Err(ConfigError::Invalid(format!(
            "number {:?} is not an E.164 phone number",
            n.phone_number
        )));
    }
    if let Some(a) = &n.account_sid
        && !accounts.iter().any(|acc| &acc.sid == a)
    {
        return Err(ConfigError::Invalid(format!(
            "number {} belongs to unknown account {a}",
            n.phone_number
        )));
    }
    for m in [&n.voice_method, &n.status_callback_method]
        .into_iter()
        .flatten()
    {
        parse_method(m).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "number {}: method {m:?} is not GET or POST",
                n.phone_number
            ))
        })?;
    }
    parse_tunnels(&n.tunnels, &format!("number {} tunnels", n.phone_number))?;
    for u in [&n.voice_url, &n.voice_fallback_url, &n.status_callback]
        .into_iter()
        .flatten()
    {
        if !crate::format::is_http_url(u) {
            return Err(ConfigError::Invalid(format!(
                "number {}: {u:?} is not an http(s) URL",
                n.phone_number
            )));
        }
    }
    Ok(())
}

/// `GET`/`POST` in any case.
pub(crate) fn parse_method(s: &str) -> Option<HttpMethod> {
    match s.to_ascii_uppercase().as_str() {
        "POST" => Some(HttpMethod::Post),
        "GET" => Some(HttpMethod::Get),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_one_account_and_no_numbers() {
        let c = ServerConfig::default();
        assert_eq!(c.accounts.len(), 1);
        assert_eq!(c.accounts[0].sid, DEFAULT_ACCOUNT_SID);
        assert!(c.numbers.is_empty());
        assert!(!c.far_end_audio.is_empty());
    }

    #[test]
    fn file_with_numbers_parses() {
        let file: FileConfig = toml::from_str(
            r#"
            ring_ms = 10
            [[accounts]]
            sid = "AC11111111111111111111111111111111"
            auth_token = "secret"
            [[numbers]]
            phone_number = "+15551230000"
            voice_url = "http://127.0.0.1:3000/voice"
            voice_method = "get"
            "#,
        )
        .unwrap();
        let c = ServerConfig::from_file(file, Path::new(".")).unwrap();
        assert_eq!(c.ring, Duration::from_millis(10));
        assert_eq!(c.numbers[0].phone_number, "+15551230000");
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |toml_text: &str| {
            let file: FileConfig = toml::from_str(toml_text).unwrap();
            ServerConfig::from_file(file, Path::new("."))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("[[accounts]]\nsid = \"AC1\"\nauth_token = \"x\"").contains("AC1"));
        assert!(bad("[[numbers]]\nphone_number = \"555\"").contains("E.164"));
        assert!(
            bad("[[numbers]]\nphone_number = \"+15551230000\"\nvoice_url = \"ftp://x\"")
                .contains("ftp://x")
        );
        assert!(toml::from_str::<FileConfig>("nope = 1").is_err());
        // Every number is bounded: nothing huge reaches a Duration or an allocation.
        for (text, name) in [
            ("ring_ms = 18446744073709551615", "ring_ms"),
            ("caller_tail_ms = 18446744073709551615", "caller_tail_ms"),
            ("max_call_secs = 18446744073709551615", "max_call_secs"),
            ("max_call_secs = 0", "max_call_secs"),
            ("max_concurrent_calls = 0", "max_concurrent_calls"),
            ("max_concurrent_calls = 100000000", "max_concurrent_calls"),
            ("max_queued_calls = 100000000", "max_queued_calls"),
            ("history = 100000000", "history"),
        ] {
            let e = bad(text);
            assert!(
                e.contains(name) && e.contains("out of range"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn an_oversized_config_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        std::fs::write(&path, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
        let e = ServerConfig::load(&path).unwrap_err().to_string();
        assert!(e.contains("not a config file"), "{e}");
    }
}
