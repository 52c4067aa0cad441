//! What callers do: one or more weighted call profiles (audio, DTMF, early hang-up, long
//! calls), from flags or a TOML scenario file. Each call's profile, caller number and audio
//! file are picked from its index and the seed, so a run is reproducible.
//!
//! ```toml
//! # scenario.toml
//! # The app's public origins mapped to where it listens (as --tunnel; flags come first).
//! tunnels = ["https://bot.example.ts.net=http://127.0.0.1:8765"]
//!
//! [[call]]
//! name = "order-status"      # shown in outcomes
//! weight = 3                 # relative share of calls
//! audio = "audio/"           # a WAV, a folder of WAVs or a corpus folder (default: the flags');
//!                            # each WAV's transcript sidecar, if any, gives its turns
//! # script = "session"       # or a corpus entry, with its exact turns (as --script)
//! tail = "2s"                # caller stays this long after its audio
//! dtmf = "1#"                # digits keyed at <Gather>
//! stream_dtmf = ["2s:5"]     # dtmf messages on the stream, TIME:DIGITS
//!
//! [[call]]
//! name = "hang-up-early"
//! weight = 1
//! hangup_after = "3s"        # the caller hangs up this long after the call starts
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use dialtone_audio::AudioCache;
use dialtone_corpus::CallerAudio;
use dialtone_corpus::caller::{CallerSource, resolve};
use serde::Deserialize;

use crate::LoadError;
use crate::plan::{mix, pick_weighted};

/// One kind of caller, resolved (audio loaded and encoded once).
#[derive(Debug, Clone)]
pub struct Profile {
    /// Name used in reports.
    pub name: String,
    /// Relative share of calls.
    pub weight: u32,
    /// Caller audio to pick from (one per call), each with its turns.
    pub audio: Vec<CallerAudio>,
    /// Time on the line after the audio.
    pub tail: Duration,
    /// Digits keyed at `<Gather>`.
    pub dtmf: String,
    /// `dtmf` messages on the bidirectional stream.
    pub stream_dtmf: Vec<(Duration, char)>,
    /// The caller hangs up this long after the call starts.
    pub hangup_after: Option<Duration>,
}

/// The caller side of a run: profiles and the caller-number pool.
#[derive(Debug, Clone)]
pub struct Callers {
    /// Weighted profiles (at least one).
    pub profiles: Vec<Profile>,
    /// Caller numbers (`From`), picked per call.
    pub numbers: Vec<String>,
}

/// The per-call choice made from the seed.
#[derive(Debug, Clone)]
pub struct CallerChoice<'a> {
    /// Which profile.
    pub profile: &'a Profile,
    /// Which audio.
    pub audio: &'a CallerAudio,
    /// Which caller number.
    pub from: &'a str,
}

impl Callers {
    /// Picks call `index`'s profile, utterance and number.
    pub fn choose(&self, seed: u64, index: u64) -> CallerChoice<'_> {
        let weights: Vec<u32> = self.profiles.iter().map(|p| p.weight).collect();
        let profile = &self.profiles[pick_weighted(&weights, mix(seed, index, 1))];
        let audio = &profile.audio[(mix(seed, index, 2) % profile.audio.len() as u64) as usize];
        let from = &self.numbers[(mix(seed, index, 3) % self.numbers.len() as u64) as usize];
        CallerChoice {
            profile,
            audio,
            from,
        }
    }
}

/// Largest caller-number pool (`--callers`): 100,000 numbers, built up front (a few MB).
pub const MAX_CALLERS: u32 = 100_000;

/// A pool of `count` numbers counting up from `first` (`+15005550100` → `…0101`, …), at
/// most [`MAX_CALLERS`].
pub fn number_pool(first: &str, count: u32) -> Result<Vec<String>, LoadError> {
    if count > MAX_CALLERS {
        return Err(LoadError::Invalid(format!(
            "--callers {count} is out of range: 1 to {MAX_CALLERS}"
        )));
    }
    let digits = first.trim_start_matches('+');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 18 {
        return Err(LoadError::Invalid(format!(
            "--from {first:?}: expected an E.164 number like +15005550100"
        )));
    }
    let base: u64 = digits.parse().expect("checked digits");
    let plus = if first.starts_with('+') { "+" } else { "" };
    Ok((0..u64::from(count.max(1)))
        .map(|i| format!("{plus}{:0width$}", base + i, width = digits.len()))
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    tunnels: Vec<String>,
    call: Vec<ProfileSpec>,
}

/// A scenario file, resolved.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The call profiles.
    pub profiles: Vec<Profile>,
    /// Its tunnel mappings (`tunnels = [...]`).
    pub tunnels: dialtone_call::Tunnels,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileSpec {
    name: String,
    #[serde(default = "one")]
    weight: u32,
    audio: Option<PathBuf>,
    script: Option<String>,
    tail: Option<String>,
    #[serde(default)]
    dtmf: String,
    #[serde(default)]
    stream_dtmf: Vec<String>,
    hangup_after: Option<String>,
}

fn one() -> u32 {
    1
}

/// Reads a scenario file. Relative audio paths resolve against the file's folder, `script`
/// names against `corpus` (`None`: the default corpus); `default` fills in what an entry
/// leaves out (flags' values).
pub fn load_scenario(
    path: &Path,
    cache: &AudioCache,
    default: &Profile,
    corpus: Option<&Path>,
) -> Result<Scenario, LoadError> {
    let text = read_bounded(path)
        .map_err(|e| LoadError::Input(format!("cannot read scenario {}: {e}", path.display())))?;
    parse_scenario(
        &text,
        path.parent().unwrap_or(Path::new(".")),
        cache,
        default,
        corpus,
    )
    .map_err(|e| LoadError::Input(format!("scenario {}: {e}", path.display())))
}

/// Largest scenario file read: 1 MiB, thousands of entries; `/dev/zero` or a wrong file
/// is refused after that much, not read into memory whole.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

fn read_bounded(path: &Path) -> std::io::Result<String> {
    let bytes = crate::read_bounded(path, MAX_SCENARIO_BYTES)?.ok_or_else(|| {
        std::io::Error::other(format!("larger than {MAX_SCENARIO_BYTES} bytes (1 MiB)"))
    })?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Parses scenario TOML text (see the module docs and [`load_scenario`]).
pub fn parse_scenario(
    text: &str,
    base: &Path,
    cache: &AudioCache,
    default: &Profile,
    corpus: Option<&Path>,
) -> Result<Scenario, LoadError> {
    let file: ScenarioFile =
        toml::from_str(text).map_err(|e| LoadError::Invalid(e.message().to_string()))?;
    if file.call.is_empty() {
        return Err(LoadError::Invalid("no [[call]] entries".into()));
    }
    if file.call.iter().all(|c| c.weight == 0) {
        return Err(LoadError::Invalid("every [[call]] has weight 0".into()));
    }
    let tunnels = file
        .tunnels
        .iter()
        .map(|t| {
            t.parse::<dialtone_call::Tunnel>()
                .map_err(|e| LoadError::Invalid(format!("tunnels: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(dialtone_call::Tunnels::new)?;
    let profiles = file
        .call
        .into_iter()
        .map(|spec| {
            let bad = |what: &str, e: String| {
                LoadError::Invalid(format!("[[call]] {:?}: {what}: {e}", spec.name))
            };
            let source = match (&spec.audio, &spec.script) {
                (Some(_), Some(_)) => {
                    return Err(bad("audio", "give audio or script, not both".into()));
                }
                (Some(p), None) => Some(CallerSource::Path(base.join(p))),
                (None, Some(name)) => Some(CallerSource::Script(name.clone())),
                (None, None) => None,
            };
            let audio = match source {
                Some(source) => {
                    resolve(&source, corpus, cache).map_err(|e| bad("audio", e.to_string()))?
                }
                None => default.audio.clone(),
            };
            let tail = match &spec.tail {
                Some(t) => parse_duration(t).map_err(|e| bad("tail", e))?,
                None => default.tail,
            };
            let hangup_after = match &spec.hangup_after {
                Some(t) => Some(parse_positive_duration(t).map_err(|e| bad("hangup_after", e))?),
                None => default.hangup_after,
            };
            let mut stream_dtmf = Vec::new();
            for s in &spec.stream_dtmf {
                stream_dtmf.extend(parse_timed_dtmf(s).map_err(|e| bad("stream_dtmf", e))?);
            }
            stream_dtmf.sort_by_key(|(t, _)| *t);
            parse_digits(&spec.dtmf).map_err(|e| bad("dtmf", e))?;
            Ok(Profile {
                name: spec.name.clone(),
                weight: spec.weight,
                audio,
                tail,
                dtmf: spec.dtmf.clone(),
                stream_dtmf,
                hangup_after,
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    Ok(Scenario { profiles, tunnels })
}

/// Parses `20ms`, `1.5s`, `2m`, `1h` or plain seconds (one parser for flags, scenario
/// files and fault specs).
pub use dialtone_call::config::parse_duration;
use dialtone_call::config::{parse_digits, parse_positive_duration, parse_timed_dtmf};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dialtone_audio::FrameSet;

    use super::*;

    fn default_profile() -> Profile {
        Profile {
            name: "default".into(),
            weight: 1,
            audio: vec![dialtone_corpus::from_frames(
                "silence".into(),
                Arc::new(FrameSet::silence(10)),
            )],
            tail: Duration::from_secs(2),
            dtmf: String::new(),
            stream_dtmf: Vec::new(),
            hangup_after: None,
        }
    }

    #[test]
    fn scenario_entries_inherit_and_override() {
        let text = r#"
            tunnels = ["https://bot.example.ts.net=http://127.0.0.1:8765"]
            [[call]]
            name = "a"
            weight = 3
            dtmf = "1#"
            stream_dtmf = ["2s:5"]
            [[call]]
            name = "b"
            hangup_after = "1.5s"
            tail = "30s"
        "#;
        let s = parse_scenario(
            text,
            Path::new("."),
            &AudioCache::new(),
            &default_profile(),
            None,
        )
        .unwrap();
        assert_eq!(
            s.tunnels.entries()[0].to_string(),
            "https://bot.example.ts.net=http://127.0.0.1:8765"
        );
        let p = s.profiles;
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].weight, 3);
        assert_eq!(p[0].tail, Duration::from_secs(2));
        assert_eq!(p[0].stream_dtmf, vec![(Duration::from_secs(2), '5')]);
        assert_eq!(p[1].hangup_after, Some(Duration::from_millis(1500)));
        assert_eq!(p[1].tail, Duration::from_secs(30));
    }

    #[test]
    fn scenario_errors_name_the_entry() {
        let err = parse_scenario(
            "[[call]]\nname = \"x\"\ndtmf = \"9z\"\n",
            Path::new("."),
            &AudioCache::new(),
            &default_profile(),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"x\""), "{err}");
        assert!(
            parse_scenario(
                "[[call]]\nname = \"x\"\nspeed = 3\n",
                Path::new("."),
                &AudioCache::new(),
                &default_profile(),
                None,
            )
            .is_err()
        );
    }

    #[test]
    fn hostile_scenario_durations_and_sizes_are_errors() {
        for (field, value, why) in [
            ("tail", "\"1e20s\"", "longer than the maximum"),
            ("tail", "\"nan\"", "not a duration"),
            ("tail", "\"-1\"", "negative"),
            ("hangup_after", "\"inf\"", "longer than the maximum"),
            ("hangup_after", "\"0s\"", "zero"),
            ("stream_dtmf", "[\"1e20s:1\"]", "longer than the maximum"),
        ] {
            let text = format!("[[call]]\nname = \"x\"\n{field} = {value}\n");
            let err = parse_scenario(
                &text,
                Path::new("."),
                &AudioCache::new(),
                &default_profile(),
                None,
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(field) && err.contains(why),
                "{field} {value}: {err}"
            );
        }
        let big = tempfile_with(&vec![b'#'; MAX_SCENARIO_BYTES as usize + 1]);
        let err =
            load_scenario(big.path(), &AudioCache::new(), &default_profile(), None).unwrap_err();
        assert!(err.to_string().contains("1 MiB"), "{err}");
    }

    fn tempfile_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    #[test]
    fn number_pools_count_up() {
        assert_eq!(
            number_pool("+15005550198", 3).unwrap(),
            vec!["+15005550198", "+15005550199", "+15005550200"]
        );
        assert!(number_pool("caller", 2).is_err());
    }
}
