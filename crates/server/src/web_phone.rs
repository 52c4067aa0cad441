//! The web page's softphone: a section that calls one of the viewer's hosted numbers (or a
//! voice URL) from the browser's microphone and plays what the caller hears, over the
//! WebSocket that `crate::phone` serves (docs/softphone.md is the contract). This
//! renders the HTML; the behaviour is `phone.js`, included once at the end of the page
//! (`SCRIPT`). The page's refresh leaves this section alone, so a live call survives it.

use std::fmt::Write as _;

use crate::Shared;
use crate::config::Account;
use crate::web::esc;

/// The phone's script: no build step, the file is the script.
pub(crate) const SCRIPT: &str = include_str!("phone.js");

/// The keypad, row by row.
const KEYS: [&str; 12] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

/// `<section id=phone data-ws="…">`: the number select, the URL input, the call, hang-up and
/// mute buttons, the keypad, status, SID, level meters and the live timeline. Without a
/// WebSocket path (no account) it only says the phone is unavailable.
pub(crate) fn section(h: &mut String, shared: &Shared, viewer: Option<&Account>) {
    let Some(ws) = crate::phone::ws_path(shared, viewer) else {
        h.push_str(
            "<section id=phone class=phone><h2>Phone</h2>\
             <p class=empty id=phone-status>The phone is unavailable: no account.</p></section>",
        );
        return;
    };
    let _ = write!(
        h,
        "<section id=phone class=phone data-ws=\"{}\"><h2>Phone</h2><div class=phone-card>\
         <div class=phone-dial><label>number <select id=phone-number>",
        esc(&ws)
    );
    // The phone calls as the account its token is for (the first one when the page is open
    // to all): only that account's numbers can be called.
    let owner = viewer.or_else(|| shared.config.accounts.first());
    let numbers: Vec<_> = shared
        .store
        .numbers()
        .into_iter()
        .filter(|n| owner.is_some_and(|a| a.sid == n.account_sid))
        .collect();
    if numbers.is_empty() {
        h.push_str("<option value=\"\">(no hosted number)</option>");
    }
    for n in &numbers {
        let name = if n.friendly_name.is_empty() || n.friendly_name == n.phone_number {
            String::new()
        } else {
            format!(" \u{b7} {}", n.friendly_name)
        };
        let _ = write!(
            h,
            "<option value=\"{v}\">{v}{name} \u{b7} {url}</option>",
            v = esc(&n.phone_number),
            name = esc(&name),
            url = esc(n.voice_url.as_deref().unwrap_or("(no voice URL)")),
        );
    }
    h.push_str(
        "</select></label> <label>or URL <input id=phone-url type=url size=34 \
         placeholder=\"http://127.0.0.1:3000/voice\" autocomplete=off></label></div>\
         <div class=phone-ctl><button type=button id=phone-call>Call</button> \
         <button type=button id=phone-hangup disabled>Hang up</button> \
         <button type=button id=phone-mute aria-pressed=false disabled>Mute</button> \
         <span class=\"status idle\" id=phone-status>idle</span> \
         <code class=sid id=phone-sid></code> <span class=muted id=phone-reason></span></div>\
         <div class=phone-body><div class=phone-keypad>",
    );
    for k in KEYS {
        let _ = write!(
            h,
            "<button type=button class=phone-key data-digit=\"{k}\" disabled>{k}</button>"
        );
    }
    h.push_str(
        "</div><div class=phone-side><div class=phone-meters>\
         <label>mic <meter id=phone-level-mic min=0 max=1 value=0></meter></label>\
         <label>app <meter id=phone-level-app min=0 max=1 value=0></meter></label></div>\
         <form id=phone-say class=phone-say><label>say <input id=phone-say-text \
         maxlength=500 size=40 autocomplete=off disabled \
         placeholder=\"what you say, for a speech &lt;Gather&gt;\"></label> \
         <button type=submit id=phone-say-send disabled>Say</button></form>\
         <ol id=phone-timeline class=phone-tl></ol></div></div></div></section>",
    );
}
