//! A finished call's milestones put into its report, with a warning for each one that fits
//! nowhere: the app's mistakes are shown, not silently dropped.

use dialtone_call::CallReport;
use dialtone_events::MilestoneInbox;
use dialtone_milestones::milestone::Milestone;

/// Puts into `report` the milestones received for its call plus those of `log` (a milestone
/// file the app wrote) for it. Records for other call SIDs, malformed records refused with
/// a 400, and milestones no turn takes become warnings. With `fast` (virtual time) nothing
/// is matched: milestones carry the app's wall clock, the turns virtual time.
///
/// For a run of one call: every record left in `received` afterwards is for another call.
pub fn put_milestones(
    report: &mut CallReport,
    received: &MilestoneInbox,
    log: &[Milestone],
    fast: bool,
) {
    let mut milestones = received.take(&report.call_sid);
    milestones.extend(
        log.iter()
            .filter(|m| m.call_sid == report.call_sid)
            .cloned(),
    );
    for (sid, records) in received.drain() {
        let words = format!(
            "{} milestone record(s) for unknown call SID {sid:?} (this call is {})",
            records.len(),
            report.call_sid
        );
        report.warnings.push((0, words));
    }
    let bad = received.counts().bad;
    if bad > 0 {
        let words = format!("{bad} malformed milestone record(s) were refused with HTTP 400");
        report.warnings.push((0, words));
    }
    if fast {
        if !milestones.is_empty() {
            let words = format!(
                "{} milestone record(s) not matched to turns: --fast runs on virtual time",
                milestones.len()
            );
            report.warnings.push((0, words));
        }
        return;
    }
    for m in dialtone_events::attach(report, &milestones) {
        let words = format!("milestone {} matched no caller turn", m.name);
        report.warnings.push((0, words));
    }
}
