//! How a call card on the web page shows the calls linked to it, in words: the legs its
//! `<Dial>`s placed (nested, with the one that answered and was bridged), the parent of a
//! dialed leg, the hosted app's call a leg rang, and the other leg of a two-leg call.
//!
//! Only calls the viewer sees are described (number, status, anchor); a linked call of
//! another account (a dialed number hosted by it) shows its SID alone, as the page always
//! has for the other leg.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use crate::store::CallRecord;
use crate::web::esc;

/// The viewer's calls by SID, and each call's dialed legs in the order they were placed.
pub(crate) struct Related<'a> {
    by_sid: HashMap<&'a str, &'a CallRecord>,
    legs: HashMap<&'a str, Vec<&'a CallRecord>>,
}

impl<'a> Related<'a> {
    /// Indexes `calls` (newest first, as the store lists them).
    pub(crate) fn new(calls: &'a [CallRecord]) -> Self {
        let mut by_sid = HashMap::with_capacity(calls.len());
        let mut legs: HashMap<&str, Vec<&CallRecord>> = HashMap::new();
        for c in calls.iter().rev() {
            by_sid.insert(c.sid.as_str(), c);
            if let Some(p) = &c.parent_call_sid {
                legs.entry(p.as_str()).or_default().push(c);
            }
        }
        Self { by_sid, legs }
    }

    fn get(&self, sid: &str) -> Option<&'a CallRecord> {
        self.by_sid.get(sid).copied()
    }

    /// `sid` as an anchor to its card when the page shows it, else as plain code.
    pub(crate) fn link(&self, sid: &str) -> String {
        match self.get(sid) {
            Some(_) => format!("<a href=\"#{s}\"><code>{s}</code></a>", s = esc(sid)),
            None => format!("<code>{}</code>", esc(sid)),
        }
    }
}

/// How long from `started` to `ended` (or now), or `None` when never started.
pub(crate) fn elapsed(started: Option<SystemTime>, ended: Option<SystemTime>) -> Option<String> {
    let s = started?;
    Some(match ended {
        Some(e) => format!("{} s", e.duration_since(s).unwrap_or_default().as_secs()),
        None => format!(
            "{} s so far",
            SystemTime::now()
                .duration_since(s)
                .unwrap_or_default()
                .as_secs()
        ),
    })
}

/// A dialed leg's bridge: the executor tells `dial_legs` a leg answered only once it has won
/// the bridge, so a leg's answer (`started`) is its bridge.
fn bridge(leg: &CallRecord) -> Option<String> {
    elapsed(leg.started, leg.ended)
}

/// The card's lines about linked calls, and the table of its dialed legs.
pub(crate) fn links(h: &mut String, c: &CallRecord, rel: &Related) {
    let mut lines: Vec<String> = Vec::new();
    if let Some(p) = &c.parent_call_sid {
        let mut l = format!("leg of {} (parent)", rel.link(p));
        if let Some(for_) = bridge(c) {
            let _ = write!(
                l,
                " &middot; bridged to {} ({}) for {for_}",
                rel.link(p),
                esc(&c.from)
            );
        } else if c.status.is_terminal() {
            l.push_str(" &middot; never bridged");
        }
        if let Some(app) = &c.peer_sid {
            let _ = write!(
                l,
                " &middot; {} is hosted here: its app answers as {}",
                esc(&c.to),
                rel.link(app)
            );
        }
        lines.push(l);
    } else if let Some(peer_sid) = &c.peer_sid {
        match rel.get(peer_sid) {
            // A hosted app's call, rung by another call's <Dial> leg.
            Some(leg) if leg.parent_call_sid.is_some() => {
                let parent = leg.parent_call_sid.as_deref().unwrap_or_default();
                let mut l = format!(
                    "answers <code>&lt;Dial&gt;</code> leg {} of {}",
                    rel.link(&leg.sid),
                    rel.link(parent)
                );
                if let Some(for_) = bridge(leg) {
                    let _ = write!(
                        l,
                        " &middot; bridged to {} ({}) for {for_}",
                        rel.link(parent),
                        esc(&c.from)
                    );
                }
                lines.push(l);
            }
            // The two legs of a call to a hosted number answer together.
            _ => {
                let party = if c.direction == dialtone_protocol::webhook::Direction::Inbound {
                    &c.from
                } else {
                    &c.to
                };
                lines.push(match elapsed(c.started, c.ended) {
                    Some(for_) => format!(
                        "bridged to {} ({}) for {for_}",
                        rel.link(peer_sid),
                        esc(party)
                    ),
                    None => format!("other leg {}", rel.link(peer_sid)),
                });
            }
        }
    }
    let legs = rel.legs.get(c.sid.as_str()).map_or(&[][..], Vec::as_slice);
    for leg in legs {
        if let Some(for_) = bridge(leg) {
            lines.push(format!(
                "bridged to {} ({}) for {for_}",
                rel.link(&leg.sid),
                esc(&leg.to)
            ));
        }
    }
    for l in &lines {
        let _ = write!(h, "<div class=links>{l}</div>");
    }
    if !legs.is_empty() {
        legs_table(h, legs, rel);
    }
}

/// One row per dialed leg: its callee, status, time bridged, and how it ended.
fn legs_table(h: &mut String, legs: &[&CallRecord], rel: &Related) {
    let _ = write!(
        h,
        "<table class=legs><tr><th>legs ({})</th><th>to</th><th>status</th><th>direction</th>\
         <th>duration</th><th></th></tr>",
        legs.len()
    );
    for leg in legs {
        let bridged = bridge(leg);
        let mut note = match (&bridged, leg.status.is_terminal()) {
            (Some(_), _) => "answered, bridged".to_string(),
            (None, true) => format!(
                "not bridged: {}",
                esc(leg.outcome.as_deref().unwrap_or("ended"))
            ),
            (None, false) => "ringing".to_string(),
        };
        if let Some(app) = &leg.peer_sid {
            let _ = write!(note, " &middot; hosted app {}", rel.link(app));
        }
        let _ = write!(
            h,
            "<tr{cls}><td>{sid}</td><td><b>{to}</b></td><td><span class=\"status {st}\">{st}</span></td>\
             <td class=dir>{dir}</td><td>{dur}</td><td>{note}</td></tr>",
            cls = if bridged.is_some() {
                " class=bridged"
            } else {
                ""
            },
            sid = rel.link(&leg.sid),
            to = esc(&leg.to),
            st = leg.status.as_str(),
            dir = leg.direction.as_str(),
            dur = bridged.as_deref().unwrap_or("not answered"),
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dialtone_protocol::webhook::{CallStatus, Direction};

    use super::*;

    fn record(sid: &str, to: &str, direction: Direction, status: CallStatus) -> CallRecord {
        CallRecord::new(
            sid.into(),
            "AC1".into(),
            ("+15005550006".into(), to.into()),
            direction,
            status,
            String::new(),
        )
    }

    /// A leg dialed by `CAparent` that ended after `talked` (bridged when `Some`).
    fn leg(sid: &str, to: &str, talked: Option<u64>, outcome: &str) -> CallRecord {
        let t0 = SystemTime::now();
        CallRecord {
            parent_call_sid: Some("CAparent".into()),
            started: talked.map(|_| t0),
            ended: Some(t0 + Duration::from_secs(talked.unwrap_or(0))),
            outcome: Some(outcome.into()),
            ..record(
                sid,
                to,
                Direction::OutboundDial,
                match talked {
                    Some(_) => CallStatus::Completed,
                    None => CallStatus::Canceled,
                },
            )
        }
    }

    #[test]
    fn ended_legs_show_which_one_was_bridged_and_for_how_long() {
        let parent = record(
            "CAparent",
            "+15005550001",
            Direction::Inbound,
            CallStatus::Completed,
        );
        let won = CallRecord {
            // Its hosted app's call belongs to an account the viewer does not see.
            peer_sid: Some("CAelsewhere".into()),
            ..leg("CAwon", "+15551110001", Some(12), "the app hung up")
        };
        let lost = leg("CAlost", "+1555<2>", None, "another party answered first");
        // Newest first, as the store lists them.
        let calls = vec![lost.clone(), won.clone(), parent.clone()];
        let rel = Related::new(&calls);

        let mut h = String::new();
        links(&mut h, &parent, &rel);
        assert!(
            h.contains(
                "<div class=links>bridged to <a href=\"#CAwon\"><code>CAwon</code></a> \
             (+15551110001) for 12 s</div>"
            ),
            "{h}"
        );
        assert!(!h.contains("bridged to <a href=\"#CAlost\""), "{h}");
        assert!(h.contains("<th>legs (2)</th>"), "{h}");
        // Placed first, listed first; the other account's call is named, not linked.
        let (won_row, lost_row) = (
            h.find("CAwon</code></a></td>"),
            h.find("CAlost</code></a></td>"),
        );
        assert!(won_row < lost_row, "{h}");
        assert!(h.contains("<tr class=bridged>"), "{h}");
        assert!(h.contains("<td>12 s</td><td>answered, bridged &middot; hosted app <code>CAelsewhere</code></td>"), "{h}");
        assert!(h.contains("<b>+1555&lt;2&gt;</b>"), "{h}");
        assert!(
            h.contains("<td>not answered</td><td>not bridged: another party answered first</td>"),
            "{h}"
        );

        let mut h = String::new();
        links(&mut h, &lost, &rel);
        assert_eq!(
            h,
            "<div class=links>leg of <a href=\"#CAparent\"><code>CAparent</code></a> (parent) \
             &middot; never bridged</div>"
        );
    }
}
