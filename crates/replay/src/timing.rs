//! Timing in the comparison: the drift of matched app messages, and a `--fast` timing
//! divergence (same messages, landing later relative to the caller's frames).

use crate::capture::CapturedStream;
use crate::report::{Divergence, Timing};
use crate::stream::Run;

/// Identical app messages, before the first that differs in content, that landed after a
/// later `ws_out` than in the capture: the first one, in frames (media `ws_out`s) and words.
/// A message can only land later after a `--fast` wait for it ran out, which no jitter
/// explains. One that lands earlier (the sends did not wait, nothing bounds it) is a note.
pub(crate) fn timing_divergence(
    cs: &CapturedStream,
    run: &Run,
    content: Option<&Divergence>,
) -> (Option<(usize, Divergence)>, Option<String>) {
    let prefix = content
        .and_then(|d| d.app_message)
        .map_or(cs.ins.len().min(run.received.len()), |n| n - 1);
    // frames[n]: media messages among the first n `ws_out`s.
    let mut frames = Vec::with_capacity(cs.outs.len() + 1);
    frames.push(0usize);
    for out in &cs.outs {
        let media = out.text.contains(r#""event":"media""#);
        frames.push(frames.last().copied().unwrap_or(0) + usize::from(media));
    }
    let frames_at = |n: usize| frames[n.min(cs.outs.len())];
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    // (index, captured after_out, replayed after_out, frames between)
    let (mut later, mut earlier) = (Vec::new(), Vec::new());
    for i in 0..prefix {
        let (c, r) = (cs.ins[i].after_out, run.received[i].after_out);
        if r > c {
            later.push((i, c, r, frames_at(r) - frames_at(c)));
        } else if r < c {
            earlier.push(frames_at(c) - frames_at(r));
        }
    }
    let note = (!earlier.is_empty()).then(|| {
        format!(
            "{} came up to {} earlier than in the capture (--fast sends do not wait to see \
             that: not a divergence)",
            plural(earlier.len(), "app message"),
            plural(earlier.iter().copied().max().unwrap_or(0), "frame")
        )
    });
    let Some(&(i, c, r, by)) = later.first() else {
        return (None, note);
    };
    let what = match serde_json::from_str::<serde_json::Value>(&cs.ins[i].text)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_string))
        .as_deref()
    {
        Some("media") => "reply",
        Some("mark") => "mark",
        Some("clear") => "clear",
        _ => "message",
    };
    let shift = if by > 0 {
        plural(by, "frame")
    } else {
        format!(
            "{} (no caller frame between)",
            plural(r - c, "ws_out message")
        )
    };
    let mut description = format!(
        "timing divergence: same messages, the app's {what} came {shift} later than in the \
         capture; content matches (app message #{}, after ws_out #{r}; capture: after #{c})",
        i + 1
    );
    if later.len() > 1 {
        let most = later.iter().map(|m| m.3).max().unwrap_or(0);
        description.push_str(&format!(
            "; {} of {prefix} app messages came later, by up to {}",
            later.len(),
            plural(most, "frame")
        ));
    }
    let div = Divergence {
        kind: "timing",
        app_message: Some(i + 1),
        after_ws_out: Some(r),
        captured: None,
        replayed: None,
        description,
    };
    (Some((c, div)), note)
}

pub(crate) fn timing(drift: &[f64], meaningful: bool) -> Timing {
    if drift.is_empty() {
        return Timing {
            meaningful,
            ..Timing::default()
        };
    }
    let mut abs: Vec<f64> = drift.iter().map(|d| d.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let i = ((p * abs.len() as f64).ceil() as usize).clamp(1, abs.len()) - 1;
        round(abs[i])
    };
    Timing {
        matched: drift.len(),
        mean_ms: Some(round(drift.iter().sum::<f64>() / drift.len() as f64)),
        p50_ms: Some(pct(0.50)),
        p95_ms: Some(pct(0.95)),
        max_ms: abs.last().copied().map(round),
        meaningful,
    }
}

fn round(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}
