//! Puts an app's milestones into a call's report: each matched to the caller turn it belongs
//! to, with its latency from the turn's true speech start or end, the word error rate of
//! its final transcript, and the VAD's re-onsets inside a turn (splits).

use dialtone_call::CallReport;
use dialtone_milestones::matching::{TurnClock, match_turns};
use dialtone_milestones::milestone::Milestone;

/// Matches `milestones` (this call's) to the turns of every stream in `report`; returns the
/// milestones no turn could take.
pub fn attach(report: &mut CallReport, milestones: &[Milestone]) -> Vec<Milestone> {
    let mut unmatched = Vec::new();
    let mut any_turns = false;
    for stream in &mut report.streams {
        if stream.turns.is_empty() {
            continue;
        }
        any_turns = true;
        let clocks: Vec<TurnClock> = stream
            .turns
            .iter()
            .map(|t| TurnClock {
                index: t.index,
                start_ms: t.start_unix_ms,
                end_ms: t.end_unix_ms,
                text: t.text.clone(),
            })
            .collect();
        let matched = match_turns(&clocks, milestones);
        for tm in matched.per_turn {
            if let Some(turn) = stream.turns.iter_mut().find(|t| t.index == tm.index) {
                turn.milestones = tm
                    .milestones
                    .into_iter()
                    .map(|e| (e.name, e.latency_ms as f64, e.text))
                    .collect();
                turn.wer = tm.wer;
                turn.vad_splits = tm.reonsets.len() as u32;
                turn.vad_reonsets_ms = tm.reonsets.iter().map(|e| e.latency_ms as f64).collect();
            }
        }
        stream.vad_splits = stream.turns.iter().map(|t| t.vad_splits).sum();
        unmatched.extend(matched.unmatched);
    }
    if !any_turns {
        unmatched.extend_from_slice(milestones);
    }
    unmatched
}
