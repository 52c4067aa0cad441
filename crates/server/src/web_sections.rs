//! The web page's "Conferences" and "Queues" sections: what the call engine's registries
//! hold for the accounts the viewer sees (live and recently ended conferences with their
//! participants, queues with the calls waiting in them).

use std::fmt::Write as _;

use dialtone_call::conference::{Conference, Status};

use crate::Shared;
use crate::config::Account;
use crate::format::rfc2822;
use crate::web::esc;
use crate::web_legs::Related;

/// Conferences shown, live ones first.
const CONFERENCES_SHOWN: usize = 50;

/// The accounts whose registries the viewer sees: its own, or every configured one with web
/// auth off (the engine's calls all belong to configured accounts: REST calls are
/// authenticated, and hosted numbers are owned by one).
fn accounts<'a>(shared: &'a Shared, viewer: Option<&'a Account>) -> Vec<&'a str> {
    match viewer {
        Some(a) => vec![a.sid.as_str()],
        None => shared
            .config
            .accounts
            .iter()
            .map(|a| a.sid.as_str())
            .collect(),
    }
}

/// `<h2>Conferences</h2>` and a box per conference.
pub(crate) fn conferences(
    h: &mut String,
    shared: &Shared,
    viewer: Option<&Account>,
    rel: &Related,
) {
    let registry = shared.engine.conferences();
    let mut all: Vec<_> = accounts(shared, viewer)
        .into_iter()
        .flat_map(|a| registry.list(a))
        .map(|c| (c.info(), c))
        .collect();
    all.sort_by(|(a, _), (b, _)| {
        let ended = |s: Status| s == Status::Completed;
        ended(a.status)
            .cmp(&ended(b.status))
            .then(b.created.cmp(&a.created))
    });
    h.push_str("<h2>Conferences</h2>");
    if all.is_empty() {
        h.push_str("<p class=empty>No conference yet.</p>");
    }
    for (i, c) in all.iter().take(CONFERENCES_SHOWN) {
        conference(h, i, c, rel);
    }
}

fn conference(
    h: &mut String,
    i: &dialtone_call::conference::ConferenceInfo,
    c: &Conference,
    rel: &Related,
) {
    let _ = write!(
        h,
        "<section class=call id={sid}><div class=top><span class=\"status {st}\">{st}</span> \
         <b>{name}</b> <code class=sid>{sid}</code> <span class=muted>{when}",
        sid = esc(&i.sid),
        st = i.status.as_str(),
        name = esc(&i.friendly_name),
        when = rfc2822(i.created),
    );
    if let Some(why) = &i.reason_ended {
        let _ = write!(h, " &middot; ended: {}", esc(why));
    }
    h.push_str("</span></div>");
    let people = c.participants();
    if people.is_empty() {
        h.push_str("<div class=muted>no participants</div></section>");
        return;
    }
    let _ = write!(
        h,
        "<table class=legs><tr><th>participants ({})</th><th>label</th><th></th></tr>",
        people.len()
    );
    for p in &people {
        let flags: Vec<&str> = [(p.role.muted, "muted"), (p.hold, "on hold")]
            .into_iter()
            .filter_map(|(on, word)| on.then_some(word))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            rel.link(&p.call_sid),
            esc(p.role.label.as_deref().unwrap_or("")),
            flags.join(", "),
        );
    }
    h.push_str("</table></section>");
}

/// `<h2>Queues</h2>` and a box per queue with its members, front first.
pub(crate) fn queues(h: &mut String, shared: &Shared, viewer: Option<&Account>, rel: &Related) {
    let registry = shared.engine.queues();
    h.push_str("<h2>Queues</h2>");
    let mut any = false;
    for account in accounts(shared, viewer) {
        for q in registry.list(account) {
            any = true;
            let _ = write!(
                h,
                "<section class=call id={sid}><div class=top><b>{name}</b> <code class=sid>{sid}</code> \
                 <span class=muted>size {n} of max {max} &middot; average wait {avg} s</span></div>",
                sid = esc(&q.sid),
                name = esc(&q.friendly_name),
                n = q.current_size,
                max = q.max_size,
                avg = q.average_wait_time,
            );
            // A queue deleted since it was listed has no members to show.
            let members = registry.members(account, &q.sid).unwrap_or_default();
            if members.is_empty() {
                h.push_str("<div class=muted>nobody waiting</div></section>");
                continue;
            }
            h.push_str(
                "<table class=legs><tr><th>position</th><th>member</th><th>waiting</th></tr>",
            );
            for m in &members {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{} s</td></tr>",
                    m.position,
                    rel.link(&m.call_sid),
                    m.wait_time
                );
            }
            h.push_str("</table></section>");
        }
    }
    if !any {
        h.push_str("<p class=empty>No queue yet.</p>");
    }
}
