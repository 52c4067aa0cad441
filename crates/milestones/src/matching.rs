//! Matching an app's milestones to the caller's ground-truth turns, and sorting records
//! by whether their call is one dialtone placed.
//!
//! Assignment rule: a milestone belongs to the **last turn that had started by its `ts`**
//! — the turn being spoken, or the one most recently spoken — where *onset* milestones
//! (`vad.speech_start`, and any name with a `.start` segment such as `stt.start`) may be
//! up to [`EARLY_MS`] (300 ms) early: a VAD that back-dates its onset, or a little clock
//! skew, must not push a turn's start into the previous turn. Other milestones get no
//! such slack, because they are often *late*: with a 500 ms hangover a VAD reports the end
//! of a turn 500 ms after it, and a caller who answers 700 ms after the previous turn
//! would otherwise have that turn's `vad.speech_end` taken by their answer.
//!
//! A milestone before every turn (a greeting's `tts.first_audio`) or without a timestamp
//! is unmatched. An app slower than the caller — a turn-1 milestone that arrives after
//! turn 2 has started — cannot be told apart by time from a turn-2 milestone, and goes to
//! turn 2, where its latency from turn 2's end is typically negative.
//!
//! Latency anchor: onset milestones are measured from the turn's true **start**;
//! everything else (`vad.speech_end`, `transcript.*`, `llm.*`, `tts.*`, …) from its true
//! **end** (negative for a `transcript.partial` during speech).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::milestone::Milestone;
use crate::wer::wer;

/// How long before a turn's true start an onset milestone may be stamped and still
/// belong to it.
pub const EARLY_MS: i64 = 300;

/// Most distinct unknown call SIDs listed by [`partition_known`]; more are only counted,
/// so an app that invents SIDs cannot grow the report without bound.
pub const MAX_UNKNOWN_SIDS: usize = 100;

/// Name of the milestone whose text is scored against the turn's text.
pub const TRANSCRIPT_FINAL: &str = "transcript.final";

/// Name of the VAD onset milestone: one per turn is its onset, more are re-onsets.
pub const VAD_SPEECH_START: &str = "vad.speech_start";

/// A ground-truth turn placed on the wall clock: when the caller's speech really started
/// and ended, in Unix epoch milliseconds (from the send time of the frames at the
/// turn's boundaries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TurnClock {
    /// Turn number in the caller audio, from 0.
    pub index: usize,
    /// True start of speech, epoch ms.
    pub start_ms: i64,
    /// True end of speech, epoch ms.
    pub end_ms: i64,
    /// What was said (empty when unknown).
    pub text: String,
}

/// Which true boundary a milestone's latency is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    /// The turn's true start of speech.
    Start,
    /// The turn's true end of speech.
    End,
}

impl Anchor {
    /// The anchor for a milestone called `name` (see the module documentation).
    pub fn for_name(name: &str) -> Anchor {
        let starts = name == VAD_SPEECH_START || name.contains(".start");
        if starts { Anchor::Start } else { Anchor::End }
    }
}

/// One milestone as matched to its turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnEvent {
    /// Milestone name.
    pub name: String,
    /// Its timestamp, epoch ms.
    pub ts_ms: i64,
    /// `ts_ms` minus the anchor (negative: reported before the true boundary).
    pub latency_ms: i64,
    /// Which boundary `latency_ms` is from.
    pub anchor: Anchor,
    /// Its text, if any.
    pub text: Option<String>,
}

/// The milestones of one turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnMilestones {
    /// The turn's [`TurnClock::index`].
    pub index: usize,
    /// Its milestones in timestamp order, with at most one `vad.speech_start`: the first.
    pub milestones: Vec<TurnEvent>,
    /// Further `vad.speech_start`s matched to this turn, in timestamp order: the app's VAD
    /// fired again inside the turn (split it). Their latency is from the turn's true start.
    pub reonsets: Vec<TurnEvent>,
    /// Word error rate of the `transcript.final` text(s) against the turn's text; `None`
    /// without a final transcript or without a reference text.
    pub wer: Option<f64>,
}

/// A call's milestones matched to its turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Matched {
    /// One entry per turn, in turn order, including turns with no milestones.
    pub per_turn: Vec<TurnMilestones>,
    /// Milestones with no turn: no timestamp, or earlier than any turn allows.
    pub unmatched: Vec<Milestone>,
}

/// Assigns each milestone of one call to a turn and measures its latency (rules in the
/// module documentation). `turns` may come in any order; `milestones` are the call's, in
/// any order.
pub fn match_turns(turns: &[TurnClock], milestones: &[Milestone]) -> Matched {
    // Turns in time order; ends follow the same order since turns do not overlap.
    let mut order: Vec<usize> = (0..turns.len()).collect();
    order.sort_by_key(|&i| (turns[i].start_ms, turns[i].index));
    let mut per_turn: Vec<TurnMilestones> = order
        .iter()
        .map(|&i| TurnMilestones {
            index: turns[i].index,
            milestones: Vec::new(),
            reonsets: Vec::new(),
            wer: None,
        })
        .collect();
    let mut unmatched = Vec::new();
    for m in milestones {
        let Some(ts) = m.ts_ms else {
            unmatched.push(m.clone());
            continue;
        };
        let anchor = Anchor::for_name(&m.name);
        let slack = if anchor == Anchor::Start { EARLY_MS } else { 0 };
        // The last turn with start − slack ≤ ts is just before the first without.
        let owners = order.partition_point(|&i| turns[i].start_ms - slack <= ts);
        let Some(slot) = owners.checked_sub(1) else {
            unmatched.push(m.clone());
            continue;
        };
        let turn = &turns[order[slot]];
        let from = match anchor {
            Anchor::Start => turn.start_ms,
            Anchor::End => turn.end_ms,
        };
        per_turn[slot].milestones.push(TurnEvent {
            name: m.name.clone(),
            ts_ms: ts,
            latency_ms: ts - from,
            anchor,
            text: m.text.clone(),
        });
    }
    for (slot, tm) in per_turn.iter_mut().enumerate() {
        // Stable: equal timestamps keep the order the app reported them in.
        tm.milestones.sort_by_key(|e| e.ts_ms);
        // The first onset is the turn's; the VAD firing again inside it is a split.
        let mut onsets = 0;
        let (kept, reonsets): (Vec<TurnEvent>, Vec<TurnEvent>) = std::mem::take(&mut tm.milestones)
            .into_iter()
            .partition(|e| {
                if e.name != VAD_SPEECH_START {
                    return true;
                }
                onsets += 1;
                onsets == 1
            });
        tm.milestones = kept;
        tm.reonsets = reonsets;
        let reference = &turns[order[slot]].text;
        let finals: Vec<&str> = tm
            .milestones
            .iter()
            .filter(|e| e.name == TRANSCRIPT_FINAL)
            .filter_map(|e| e.text.as_deref())
            .collect();
        // An app may finalise a long turn in pieces: score them together.
        if !finals.is_empty() && !reference.trim().is_empty() {
            tm.wer = Some(wer(reference, &finals.join(" ")));
        }
    }
    Matched {
        per_turn,
        unmatched,
    }
}

/// Records sorted by call: those of calls dialtone knows, those of unknown calls
/// (counted), and those that name no call (duration-only records).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Partition {
    /// Records of known calls, per call SID, in input order.
    pub known: BTreeMap<String, Vec<Milestone>>,
    /// Records per unknown call SID (the first [`MAX_UNKNOWN_SIDS`] SIDs seen).
    pub unknown: BTreeMap<String, u64>,
    /// All records of unknown calls, including those beyond the listed SIDs.
    pub unknown_records: u64,
    /// Records without a call SID.
    pub no_call: Vec<Milestone>,
}

/// Splits `milestones` by whether `is_known(call_sid)`.
pub fn partition_known(
    milestones: impl IntoIterator<Item = Milestone>,
    is_known: impl Fn(&str) -> bool,
) -> Partition {
    let mut p = Partition::default();
    for m in milestones {
        if m.call_sid.is_empty() {
            p.no_call.push(m);
        } else if is_known(&m.call_sid) {
            p.known.entry(m.call_sid.clone()).or_default().push(m);
        } else {
            p.unknown_records += 1;
            if let Some(n) = p.unknown.get_mut(&m.call_sid) {
                *n += 1;
            } else if p.unknown.len() < MAX_UNKNOWN_SIDS {
                p.unknown.insert(m.call_sid, 1);
            }
        }
    }
    p
}
