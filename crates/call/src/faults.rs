//! Seeded fault injection: what dialtone does wrong on purpose, the same way every time.
//!
//! A [`FaultSpec`] (`--faults 'loss=0.02,dup=0.01,jitter=30ms,drop=8s'`) says which faults
//! to inject and how often; a seed turns it into a schedule. Every decision is a pure hash of
//! (seed, stream, frame or mark index, fault kind), never a running random generator, so the
//! schedule does not depend on timing, on what the app does, or on which other faults are
//! enabled: the same seed and spec give the same frames, byte for byte, in the same order.
//! The keys are documented in `docs/faults.md`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::config::parse_duration;

/// Which faults to inject, and how often. Probabilities are per frame (per mark for the
/// mark faults, per call for `webhook_timeout` and `calls`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultSpec {
    /// Fraction of calls that get faults at all (1 by default).
    pub calls: Option<f64>,
    /// Each frame is sent up to this much later than its schedule (order kept).
    pub jitter: Duration,
    /// A burst starts at a frame with this probability: frames are held for the duration,
    /// then sent all at once (late, then catching up).
    pub burst: Option<(f64, Duration)>,
    /// Frame lost: never sent (its sequence number and chunk are used up, as on a network).
    pub loss: f64,
    /// Frame sent twice.
    pub dup: f64,
    /// Frame swapped with the next one.
    pub reorder: f64,
    /// `sequenceNumber` jumps by 1–5 before the frame.
    pub seq_gap: f64,
    /// Frame sent as truncated, unparseable JSON.
    pub bad_json: f64,
    /// Frame's payload is not valid base64.
    pub bad_base64: f64,
    /// Frame carries another stream's SID.
    pub wrong_sid: f64,
    /// At this time into the stream, no frames for this long (the audio of that time is
    /// lost; `timestamp` jumps).
    pub pause: Option<(Duration, Duration)>,
    /// At this time into the stream, the TCP connection is dropped: no `stop`, no close
    /// frame.
    pub drop_at: Option<Duration>,
    /// At this time into the stream, a WebSocket close frame with this code, no `stop`.
    pub close_at: Option<(Duration, u16)>,
    /// After reading each app message, wait this long before reading the next
    /// (backpressure on the app's writes).
    pub slow_read: Option<Duration>,
    /// Fraction of calls whose voice webhook request is abandoned as timed out.
    pub webhook_timeout: f64,
    /// Mark echoes sent this much later than their audio finished playing.
    pub mark_delay: Duration,
    /// Mark never echoed.
    pub mark_loss: f64,
}

/// A `--faults` string that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--faults {spec:?}: {reason}")]
pub struct FaultSpecError {
    spec: String,
    reason: String,
}

const KEYS: &str = "calls, jitter, burst, loss, dup, reorder, seq_gap, bad_json, bad_base64, \
                    wrong_sid, pause, drop, close, slow_read, webhook_timeout, mark_delay, \
                    mark_loss";

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| FaultSpecError {
            spec: s.to_string(),
            reason,
        };
        let mut f = FaultSpec::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| err(format!("{item:?} is not KEY=VALUE (keys: {KEYS})")))?;
            let (key, value) = (key.trim(), value.trim());
            let p = || prob(value).map_err(|r| err(format!("{key}: {r}")));
            let d = |v: &str| parse_duration(v).map_err(|r| err(format!("{key}: {r}")));
            match key {
                "calls" => f.calls = Some(p()?),
                "jitter" => f.jitter = d(value)?,
                "burst" => {
                    let (pr, hold) = value.split_once(':').ok_or_else(|| {
                        err(format!(
                            "burst: {value:?} is not PROB:HOLD, e.g. 0.01:300ms"
                        ))
                    })?;
                    let pr = prob(pr).map_err(|r| err(format!("burst: {r}")))?;
                    f.burst = Some((pr, d(hold)?));
                }
                "loss" => f.loss = p()?,
                "dup" => f.dup = p()?,
                "reorder" => f.reorder = p()?,
                "seq_gap" => f.seq_gap = p()?,
                "bad_json" => f.bad_json = p()?,
                "bad_base64" => f.bad_base64 = p()?,
                "wrong_sid" => f.wrong_sid = p()?,
                "pause" => {
                    let (at, len) = value.split_once('+').ok_or_else(|| {
                        err(format!("pause: {value:?} is not AT+LENGTH, e.g. 5s+2s"))
                    })?;
                    f.pause = Some((d(at)?, d(len)?));
                }
                "drop" => f.drop_at = Some(d(value)?),
                "close" => {
                    let (at, code) = value.split_once(':').ok_or_else(|| {
                        err(format!("close: {value:?} is not AT:CODE, e.g. 8s:1011"))
                    })?;
                    let code: u16 = code
                        .trim()
                        .parse()
                        .ok()
                        .filter(|c| (1000..5000).contains(c) && !matches!(c, 1005 | 1006 | 1015))
                        .ok_or_else(|| {
                            err(format!(
                                "close: {code:?} is not a close code that can be sent \
                                 (1000–4999 except 1005, 1006, 1015)"
                            ))
                        })?;
                    f.close_at = Some((d(at)?, code));
                }
                "slow_read" => f.slow_read = Some(d(value)?),
                "webhook_timeout" => f.webhook_timeout = p()?,
                "mark_delay" => f.mark_delay = d(value)?,
                "mark_loss" => f.mark_loss = p()?,
                other => return Err(err(format!("unknown fault {other:?} (keys: {KEYS})"))),
            }
        }
        let exclusive = f.loss + f.dup + f.reorder + f.bad_json + f.bad_base64 + f.wrong_sid;
        if exclusive > 1.0 + 1e-9 {
            return Err(err(format!(
                "loss + dup + reorder + bad_json + bad_base64 + wrong_sid is {exclusive}, \
                 over 1 (a frame gets at most one of them)"
            )));
        }
        Ok(f)
    }
}

fn prob(v: &str) -> Result<f64, String> {
    let x: f64 = v
        .trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a probability (0 to 1)"))?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("{v:?} is not a probability (0 to 1)"));
    }
    Ok(x)
}

impl fmt::Display for FaultSpec {
    /// The canonical spec string (parses back to the same spec).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Exact to the microsecond, so the printed spec gives the same schedule.
        let ms = |d: Duration| {
            let us = d.as_micros();
            if us.is_multiple_of(1000) {
                format!("{}ms", us / 1000)
            } else {
                format!("{}.{:03}ms", us / 1000, us % 1000)
            }
        };
        let mut parts = Vec::new();
        if let Some(c) = self.calls {
            parts.push(format!("calls={c}"));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}", ms(self.jitter)));
        }
        if let Some((p, hold)) = self.burst {
            parts.push(format!("burst={p}:{}", ms(hold)));
        }
        for (k, v) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
            ("seq_gap", self.seq_gap),
            ("bad_json", self.bad_json),
            ("bad_base64", self.bad_base64),
            ("wrong_sid", self.wrong_sid),
        ] {
            if v > 0.0 {
                parts.push(format!("{k}={v}"));
            }
        }
        if let Some((at, len)) = self.pause {
            parts.push(format!("pause={}+{}", ms(at), ms(len)));
        }
        if let Some(at) = self.drop_at {
            parts.push(format!("drop={}", ms(at)));
        }
        if let Some((at, code)) = self.close_at {
            parts.push(format!("close={}:{code}", ms(at)));
        }
        if let Some(d) = self.slow_read {
            parts.push(format!("slow_read={}", ms(d)));
        }
        if self.webhook_timeout > 0.0 {
            parts.push(format!("webhook_timeout={}", self.webhook_timeout));
        }
        if !self.mark_delay.is_zero() {
            parts.push(format!("mark_delay={}", ms(self.mark_delay)));
        }
        if self.mark_loss > 0.0 {
            parts.push(format!("mark_loss={}", self.mark_loss));
        }
        f.write_str(&parts.join(","))
    }
}

/// Salts that keep each decision's hash independent of the others.
mod salt {
    pub(super) const CALL: u64 = 1;
    pub(super) const WEBHOOK: u64 = 2;
    pub(super) const JITTER: u64 = 3;
    pub(super) const BURST: u64 = 4;
    pub(super) const EXCLUSIVE: u64 = 5;
    pub(super) const SEQ_GAP: u64 = 6;
    pub(super) const SEQ_GAP_LEN: u64 = 7;
    pub(super) const MARK: u64 = 8;
    pub(super) const WRONG_SID: u64 = 9;
}

/// SplitMix64 of (seed, index, salt): platform-independent and stable across releases, so a
/// recorded seed reproduces its schedule forever.
pub fn mix(seed: u64, index: u64, salt: u64) -> u64 {
    let mut z = seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1).
fn unit(seed: u64, index: u64, salt: u64) -> f64 {
    (mix(seed, index, salt) >> 11) as f64 / (1u64 << 53) as f64
}

impl FaultSpec {
    /// True when the spec injects nothing.
    pub fn is_empty(&self) -> bool {
        *self
            == FaultSpec {
                calls: self.calls,
                ..FaultSpec::default()
            }
    }

    /// Whether the call with this seed gets faults (`calls=`).
    pub fn applies_to_call(&self, call_seed: u64) -> bool {
        self.calls
            .is_none_or(|c| unit(call_seed, 0, salt::CALL) < c)
    }

    /// Whether this call's voice webhook is abandoned as timed out.
    pub fn webhook_times_out(&self, call_seed: u64) -> bool {
        self.webhook_timeout > 0.0 && unit(call_seed, 0, salt::WEBHOOK) < self.webhook_timeout
    }

    /// The stream-level plan for one stream of a call.
    pub fn for_stream(&self, call_seed: u64, stream_index: u64) -> StreamFaults {
        StreamFaults {
            spec: self.clone(),
            seed: mix(call_seed, stream_index, 0),
            computed: None,
            offset_us: 0,
            hold_until_us: 0,
        }
    }
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameFate {
    /// Not sent at all: inside a `pause` (uses no sequence number or chunk).
    pub paused: bool,
    /// Not sent (its sequence number and chunk are used up).
    pub lost: bool,
    /// Sent twice.
    pub duplicated: bool,
    /// Sent after the next frame.
    pub swapped: bool,
    /// `sequenceNumber` skips this many before the frame.
    pub seq_skip: u64,
    /// The message is corrupted this way.
    pub corrupt: Option<Corrupt>,
}

/// How a frame's message is corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupt {
    /// Cut in the middle: not JSON.
    BadJson,
    /// The payload holds characters outside base64.
    BadBase64,
    /// Another stream's SID.
    WrongSid,
}

/// The fault schedule of one stream. Frame decisions are pure functions of the frame index;
/// only the send times (jitter and bursts, which must keep frames in order) are computed
/// frame by frame, in order.
#[derive(Debug, Clone)]
pub struct StreamFaults {
    spec: FaultSpec,
    seed: u64,
    /// The frame `offset_us` belongs to.
    computed: Option<u64>,
    offset_us: u64,
    hold_until_us: u64,
}

impl StreamFaults {
    /// The spec this schedule follows.
    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// When frame `k` goes out, in µs from the stream's start: its slot (20 ms·k), plus
    /// jitter, held back by a burst, never before the previous frame. Call with k = 0, 1,
    /// 2… (asking again for the current frame is free).
    pub fn send_offset_us(&mut self, k: u64) -> u64 {
        debug_assert!(
            self.computed.is_none_or(|c| c <= k),
            "frames are scheduled in order"
        );
        while self.computed.is_none_or(|c| c < k) {
            let j = self.computed.map_or(0, |c| c + 1);
            let slot = j * 20_000;
            let mut at = slot;
            if !self.spec.jitter.is_zero() {
                let max = self.spec.jitter.as_micros() as f64;
                at += (unit(self.seed, j, salt::JITTER) * max) as u64;
            }
            if let Some((p, hold)) = self.spec.burst
                && slot >= self.hold_until_us
                && unit(self.seed, j, salt::BURST) < p
            {
                self.hold_until_us = slot + hold.as_micros() as u64;
            }
            if slot < self.hold_until_us {
                at = at.max(self.hold_until_us);
            }
            self.offset_us = at.max(self.offset_us);
            self.computed = Some(j);
        }
        self.offset_us
    }

    /// What happens to frame `k`.
    pub fn frame(&self, k: u64) -> FrameFate {
        let s = &self.spec;
        let slot = Duration::from_micros(k * 20_000);
        if let Some((at, len)) = s.pause
            && slot >= at
            && slot < at + len
        {
            return FrameFate {
                paused: true,
                ..FrameFate::default()
            };
        }
        let mut fate = FrameFate::default();
        let x = unit(self.seed, k, salt::EXCLUSIVE);
        let mut edge = 0.0;
        for (p, apply) in [
            (s.loss, 0u8),
            (s.dup, 1),
            (s.reorder, 2),
            (s.bad_json, 3),
            (s.bad_base64, 4),
            (s.wrong_sid, 5),
        ] {
            edge += p;
            if p > 0.0 && x < edge {
                match apply {
                    0 => fate.lost = true,
                    1 => fate.duplicated = true,
                    2 => fate.swapped = true,
                    3 => fate.corrupt = Some(Corrupt::BadJson),
                    4 => fate.corrupt = Some(Corrupt::BadBase64),
                    _ => fate.corrupt = Some(Corrupt::WrongSid),
                }
                break;
            }
        }
        if s.seq_gap > 0.0 && unit(self.seed, k, salt::SEQ_GAP) < s.seq_gap {
            fate.seq_skip = 1 + mix(self.seed, k, salt::SEQ_GAP_LEN) % 5;
        }
        fate
    }

    /// What happens to the n-th mark echo: `None` never sent, else sent this much later.
    pub fn mark(&self, n: u64) -> Option<Duration> {
        if self.spec.mark_loss > 0.0 && unit(self.seed, n, salt::MARK) < self.spec.mark_loss {
            None
        } else {
            Some(self.spec.mark_delay)
        }
    }

    /// The SID a `wrong_sid` frame carries: a valid-looking SID of no stream.
    pub fn wrong_sid(&self, k: u64) -> String {
        dialtone_protocol::sid::seeded("MZ", self.seed ^ salt::WRONG_SID, k)
    }

    /// Applies a corruption to a formatted message.
    pub fn corrupt(&self, how: Corrupt, text: &str, stream_sid: &str, k: u64) -> String {
        match how {
            // Cut mid-message, on a char boundary: what a broken proxy or a bug produces.
            Corrupt::BadJson => {
                let mut cut = text.len() / 2;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text[..cut].to_string()
            }
            Corrupt::BadBase64 => text.replacen("\"payload\":\"", "\"payload\":\"!*~", 1),
            Corrupt::WrongSid => text.replace(stream_sid, &self.wrong_sid(k)),
        }
    }
}

/// What a stream's faults did, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    /// Frames sent later than their slot because of jitter or a burst.
    pub delayed: u64,
    /// Frames not sent during a pause.
    pub paused: u64,
    /// Frames lost.
    pub lost: u64,
    /// Frames sent twice.
    pub duplicated: u64,
    /// Frames swapped with the next.
    pub reordered: u64,
    /// Sequence gaps.
    pub seq_gaps: u64,
    /// Frames sent as broken JSON.
    pub bad_json: u64,
    /// Frames with an invalid base64 payload.
    pub bad_base64: u64,
    /// Frames carrying another stream's SID.
    pub wrong_sid: u64,
    /// Mark echoes delayed.
    pub marks_delayed: u64,
    /// Mark echoes never sent.
    pub marks_dropped: u64,
    /// How the stream was ended by a fault: `drop` or `close CODE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_and_errors_name_the_problem() {
        let s: FaultSpec = "loss=0.02, dup=0.01,jitter=30ms,burst=0.01:300ms,pause=5s+2s,\
                            drop=8s,close=9s:1011,slow_read=50ms,webhook_timeout=0.1,\
                            mark_delay=500ms,mark_loss=0.5,seq_gap=0.01,calls=0.5"
            .parse()
            .unwrap();
        assert_eq!(s.loss, 0.02);
        assert_eq!(s.burst, Some((0.01, Duration::from_millis(300))));
        assert_eq!(s.close_at, Some((Duration::from_secs(9), 1011)));
        assert_eq!(s.to_string().parse::<FaultSpec>().unwrap(), s);
        let sub_ms: FaultSpec = "jitter=1.5ms,mark_delay=0.25ms".parse().unwrap();
        assert_eq!(sub_ms.to_string(), "jitter=1.500ms,mark_delay=0.250ms");
        assert_eq!(sub_ms.to_string().parse::<FaultSpec>().unwrap(), sub_ms);
        assert!(!s.is_empty());
        assert!("calls=0.5".parse::<FaultSpec>().unwrap().is_empty());

        for (bad, says) in [
            ("los=0.1", "unknown fault \"los\""),
            ("loss", "is not KEY=VALUE"),
            ("loss=2", "not a probability"),
            ("jitter=fast", "not a duration"),
            ("close=1s:1006", "not a close code"),
            ("burst=0.1", "PROB:HOLD"),
            ("loss=0.6,dup=0.6", "over 1"),
        ] {
            let e = bad.parse::<FaultSpec>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn schedules_are_pure_functions_of_the_seed() {
        let spec: FaultSpec = "loss=0.1,dup=0.1,reorder=0.1,seq_gap=0.1,jitter=15ms,\
                               burst=0.05:200ms"
            .parse()
            .unwrap();
        let run = |seed| {
            let mut f = spec.for_stream(seed, 0);
            (0..500)
                .map(|k| (f.send_offset_us(k), f.frame(k)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let a = run(7);
        // Send times never go backwards, and never precede the frame's slot.
        for (k, w) in a.windows(2).enumerate() {
            assert!(w[1].0 >= w[0].0, "frame {} before {}", k + 1, k);
        }
        for (k, (at, _)) in a.iter().enumerate() {
            assert!(*at >= k as u64 * 20_000);
        }
        // Each fault shows up at roughly its rate.
        let lost = a.iter().filter(|(_, f)| f.lost).count();
        let dup = a.iter().filter(|(_, f)| f.duplicated).count();
        assert!((25..=80).contains(&lost), "{lost}");
        assert!((25..=80).contains(&dup), "{dup}");
        assert!(a.iter().any(|(_, f)| f.seq_skip > 0));
    }

    #[test]
    fn a_certain_burst_sends_frames_in_groups() {
        // Every burst holds 100 ms: frames go out five at a time, at the end of each hold.
        let mut f = "burst=1:100ms"
            .parse::<FaultSpec>()
            .unwrap()
            .for_stream(1, 0);
        let at: Vec<u64> = (0..15).map(|k| f.send_offset_us(k)).collect();
        assert_eq!(
            at,
            [[100_000; 5], [200_000; 5], [300_000; 5]].concat(),
            "{at:?}"
        );
    }

    #[test]
    fn pauses_cover_their_window_only() {
        let f = "pause=1s+500ms"
            .parse::<FaultSpec>()
            .unwrap()
            .for_stream(1, 0);
        let paused: Vec<u64> = (0..200).filter(|&k| f.frame(k).paused).collect();
        assert_eq!(paused, (50..75).collect::<Vec<_>>());
    }

    #[test]
    fn corruptions_break_what_they_say() {
        let f = FaultSpec::default().for_stream(1, 0);
        let sid = "MZ00000000000000000000000000000001";
        let text =
            format!(r#"{{"event":"media","streamSid":"{sid}","media":{{"payload":"AAAA"}}}}"#);
        assert!(
            serde_json::from_str::<serde_json::Value>(&f.corrupt(Corrupt::BadJson, &text, sid, 3))
                .is_err()
        );
        assert!(
            f.corrupt(Corrupt::BadBase64, &text, sid, 3)
                .contains("\"payload\":\"!*~AAAA\"")
        );
        let w = f.corrupt(Corrupt::WrongSid, &text, sid, 3);
        assert!(!w.contains(sid) && w.contains("\"streamSid\":\"MZ"));
    }
}
