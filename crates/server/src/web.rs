//! The read-only page at `/`: hosted numbers, live and recent calls with their timelines,
//! outcomes, audio players (what each stream's caller heard and sent), recordings, the legs
//! their `<Dial>`s placed and how they are bridged (`web_legs`), and the conferences and
//! queues of the call engine (`web_sections`), under the softphone (`web_phone`). A small
//! script polls a change counter and, when something changed (and no audio is playing),
//! fetches the page and swaps everything but the phone in place, so it follows calls live
//! without flicker and without cutting the phone's call.
//!
//! The page and its stream audio need an account's credentials (HTTP Basic, so a browser
//! prompts: the account SID and auth token, or an API key of the account), and show only
//! that account's numbers, calls, conferences, queues and audio; another account's call is
//! 404. `web_auth = false` (`--no-web-auth`) opens them, showing every account, for a
//! single-user machine.
//! `/audio/{file}` stays open: it serves the server's own WAVs, which the caller leg's
//! `<Play>` fetches without credentials, not account data.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};

use crate::Shared;
use crate::auth::identify;
use crate::config::Account;
use crate::error::ApiError;
use crate::format::rfc2822;
use crate::store::CallRecord;
use crate::web_legs::{Related, elapsed};

/// Calls shown in the "recent" list.
const RECENT: usize = 50;

/// Who is looking: `Ok(None)` (everyone's data) when `web_auth` is off, else the account
/// the request's credentials belong to.
fn viewer<'a>(shared: &'a Shared, headers: &HeaderMap) -> Result<Option<&'a Account>, ApiError> {
    if !shared.config.web_auth {
        return Ok(None);
    }
    identify(&shared.config.accounts, headers).map(Some)
}

/// True when `viewer` may see data of account `sid`.
pub(crate) fn sees(viewer: Option<&Account>, sid: &str) -> bool {
    viewer.is_none_or(|a| a.sid == sid)
}

/// `GET /`.
pub(crate) async fn index(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    let viewer = viewer(&shared, &headers)?;
    let calls = shared.store.calls(|c| sees(viewer, &c.account_sid));
    let rel = Related::new(&calls);
    let (live, done): (Vec<&CallRecord>, Vec<&CallRecord>) =
        calls.iter().partition(|c| !c.status.is_terminal());
    let mut h = String::with_capacity(16 * 1024);
    h.push_str(HEAD);
    let _ = write!(
        h,
        "<header><h1>dialtone serve</h1><p>Twilio-compatible REST API at <code>{url}</code> \
         &middot; {n} live &middot; {m} recent</p></header>",
        url = esc(&shared.public_url),
        n = live.len(),
        m = done.len(),
    );
    crate::web_phone::section(&mut h, &shared, viewer);
    let _ = write!(h, "<main id=calls data-version={}>", shared.store.version());
    numbers(&mut h, &shared, viewer);
    h.push_str("<h2>Live calls</h2>");
    if live.is_empty() {
        h.push_str("<p class=empty>No call in progress.</p>");
    }
    for c in &live {
        call_card(&mut h, c, &rel, true);
    }
    crate::web_sections::conferences(&mut h, &shared, viewer, &rel);
    crate::web_sections::queues(&mut h, &shared, viewer, &rel);
    h.push_str("<h2>Recent calls</h2>");
    if done.is_empty() {
        h.push_str("<p class=empty>No finished call yet.</p>");
    }
    for (i, c) in done.iter().take(RECENT).enumerate() {
        call_card(&mut h, c, &rel, i < 3);
    }
    let _ = write!(
        h,
        "</main><script>{SCRIPT}</script><script>{}</script></body></html>",
        crate::web_phone::SCRIPT
    );
    Ok(Html(h))
}

fn numbers(h: &mut String, shared: &Shared, viewer: Option<&Account>) {
    h.push_str("<h2>Numbers</h2><table class=nums><tr><th>number</th><th>voice URL</th><th>account</th></tr>");
    for n in shared.store.numbers() {
        if !sees(viewer, &n.account_sid) {
            continue;
        }
        let _ = write!(
            h,
            "<tr><td><b>{}</b></td><td><code>{} {}</code></td><td><code>{}</code></td></tr>",
            esc(&n.phone_number),
            n.voice_method.as_str(),
            esc(n.voice_url.as_deref().unwrap_or("(none)")),
            esc(&n.account_sid),
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<details class=howto><summary>Point the official clients here</summary><pre>\
         # Python\nclient = Client(\"{ac}\", auth_token)\nclient.api.base_url = \"{u}\"\n\n\
         // Node\nconst client = require('twilio')(\"{ac}\", authToken);\nclient.api.baseUrl = '{u}';</pre></details>",
        ac = esc(&viewer.unwrap_or(&shared.config.accounts[0]).sid),
        u = esc(&shared.public_url),
    );
}

fn call_card(h: &mut String, c: &CallRecord, rel: &Related, open: bool) {
    let secs = elapsed(c.started, c.ended).unwrap_or_else(|| "not answered".into());
    let _ = write!(
        h,
        "<section class=call id={sid}><div class=top><span class=\"status {st}\">{st}</span> \
         <b>{from}</b> &rarr; <b>{to}</b> <span class=dir>{dir}</span> \
         <code class=sid>{sid}</code> <span class=muted>{when} &middot; {secs}</span></div>",
        sid = esc(&c.sid),
        st = c.status.as_str(),
        from = esc(&c.from),
        to = esc(&c.to),
        dir = c.direction.as_str(),
        when = rfc2822(c.created),
    );
    let _ = write!(
        h,
        "<div class=muted>runs <code>{}</code></div>",
        esc(&c.source)
    );
    crate::web_legs::links(h, c, rel);
    if let Some(o) = &c.outcome {
        let _ = write!(h, "<div class=outcome>{}</div>", esc(o));
    }
    for f in &c.failures {
        let _ = write!(h, "<div class=failure>FAILED {}</div>", esc(f));
    }
    for (i, clip) in c.audio.iter().enumerate() {
        let base = format!("/calls/{}/streams/{i}", c.sid);
        let _ = write!(
            h,
            "<div class=audio><span>stream <code>{s}</code> ({:.1} s)</span> \
             <label>heard <audio controls preload=none src=\"{base}/heard.wav\"></audio></label> \
             <label>sent <audio controls preload=none src=\"{base}/sent.wav\"></audio></label></div>",
            clip.heard.len().max(clip.sent.len()) as f64 / 8000.0,
            s = esc(&clip.stream_sid),
        );
    }
    for r in &c.recording_sids {
        let url = format!(
            "{}/Recordings/{r}.wav",
            crate::resources::account_path(&c.account_sid)
        );
        let _ = write!(
            h,
            "<div class=audio><span>recording <code>{r}</code></span> \
             <audio controls preload=none src=\"{u}\"></audio> <a href=\"{u}\">{u}</a></div>",
            r = esc(r),
            u = esc(&url),
        );
    }
    let _ = write!(
        h,
        "<details{}><summary>timeline ({} steps)</summary><table class=tl>",
        if open { " open" } else { "" },
        c.timeline.len()
    );
    for line in &c.timeline {
        let _ = write!(
            h,
            "<tr class={}><td class=t>{:.3} s</td><td>{}</td></tr>",
            line.level,
            line.at_ms as f64 / 1000.0,
            esc(&line.text)
        );
    }
    if c.timeline_dropped > 0 {
        let _ = write!(
            h,
            "<tr><td></td><td>… {} more</td></tr>",
            c.timeline_dropped
        );
    }
    h.push_str("</table></details></section>");
}

/// `GET /_dialtone/version`: the change counter the page polls.
pub(crate) async fn version(State(shared): State<Arc<Shared>>) -> String {
    shared.store.version().to_string()
}

/// `GET /calls/{CA}/streams/{n}/{heard|sent}.wav`: 404 for another account's call.
pub(crate) async fn stream_audio(
    State(shared): State<Arc<Shared>>,
    Path((call, n, file)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer(&shared, &headers)?;
    let clip = shared
        .store
        .call(&call)
        .filter(|c| sees(viewer, &c.account_sid))
        .and_then(|c| c.audio.get(n.parse::<usize>().ok()?).cloned());
    let codes = match (&clip, file.as_str()) {
        (Some(c), "heard.wav") => &c.heard,
        (Some(c), "sent.wav") => &c.sent,
        _ => return Err(crate::calls_api::not_found(&uri)),
    };
    let bytes = dialtone_audio::wav::encode_mulaw_8k(codes)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "audio/x-wav")], bytes).into_response())
}

/// `GET /audio/{file}`: `hello.wav` (built in) or a WAV from `audio_dir`.
pub(crate) async fn audio_file(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    uri: OriginalUri,
) -> Response {
    const HELLO: &[u8] = include_bytes!("../../../audio/hello.wav");
    // One plain file name only: an absolute or nested path would escape the audio folder.
    let plain = matches!(
        std::path::Path::new(&file).components().collect::<Vec<_>>()[..],
        [std::path::Component::Normal(_)]
    );
    if !plain || !file.ends_with(".wav") {
        return crate::calls_api::not_found(&uri).into_response();
    }
    let bytes = match &shared.config.audio_dir {
        Some(dir) => match read_audio(&dir.join(&file)).await {
            Ok(Some(b)) => b,
            // More than any `<Play>` reads (dialtone_call::fetch::PLAY_MAX_BYTES): refused
            // rather than held in memory whole.
            Ok(None) => {
                return ApiError::Refused {
                    status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    code: 20413,
                    message: format!(
                        "{file} is over the {}-byte limit for served audio",
                        dialtone_call::fetch::PLAY_MAX_BYTES
                    ),
                }
                .into_response();
            }
            Err(_) if file == "hello.wav" => HELLO.to_vec(),
            Err(_) => return crate::calls_api::not_found(&uri).into_response(),
        },
        None if file == "hello.wav" => HELLO.to_vec(),
        None => return crate::calls_api::not_found(&uri).into_response(),
    };
    ([(header::CONTENT_TYPE, "audio/x-wav")], bytes).into_response()
}

/// A WAV of the audio folder, or `None` when it is larger than any `<Play>` reads.
async fn read_audio(path: &std::path::Path) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let max = dialtone_call::fetch::PLAY_MAX_BYTES as u64;
    let mut bytes = Vec::new();
    tokio::fs::File::open(path)
        .await?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .await?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// Unknown routes: Twilio's 20404 JSON, as every error of the router.
pub(crate) async fn not_found(uri: OriginalUri) -> ApiError {
    crate::calls_api::not_found(&uri)
}

/// HTML-escapes text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = r#"<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1"><title>dialtone serve</title><link rel=icon href="data:,"><style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:16px 24px;color:#1d2330;background:#f6f7f9}
header h1{margin:0;font-size:22px}header p{margin:2px 0 8px;color:#555}
h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
table.nums{border-collapse:collapse}table.nums td,table.nums th{padding:3px 12px 3px 0;text-align:left}
.call{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 14px;margin:10px 0}
.top{font-size:15px}.muted,.dir{color:#667}.sid{color:#445}
.status{display:inline-block;border-radius:10px;padding:0 9px;font-size:12px;font-weight:600;color:#fff;background:#8a94a6}
.status.in-progress,.status.ringing,.status.queued{background:#2f7de1}.status.completed{background:#1f9d55}
.status.failed,.status.busy,.status.no-answer{background:#d64545}.status.canceled{background:#b7791f}
.outcome{margin-top:4px}.failure{color:#b42318;font-weight:600}
.audio{margin:6px 0;display:flex;gap:10px;align-items:center;flex-wrap:wrap}.audio audio{height:30px;vertical-align:middle}
table.tl{border-collapse:collapse;width:100%;margin-top:4px}table.tl td{padding:1px 8px 1px 0;vertical-align:top}
td.t{color:#667;white-space:nowrap;text-align:right;width:70px;font:12px ui-monospace,monospace}
tr.ok td:last-child{color:#1f7a45}tr.warn td:last-child{color:#a15c00}tr.fail td:last-child{color:#b42318;font-weight:600}
.empty{color:#667}.howto pre{background:#fff;border:1px solid #dde1e6;padding:8px;border-radius:6px}
summary{cursor:pointer;color:#334}
.links{margin-top:2px}table.legs{border-collapse:collapse;margin:4px 0 2px 12px}
table.legs td,table.legs th{padding:1px 12px 1px 0;text-align:left;font-size:13px}tr.bridged td{font-weight:600}
.status.error{background:#d64545}
.phone-card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 14px;display:flex;flex-direction:column;gap:8px}
.phone-dial,.phone-ctl{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.phone-dial select,.phone-dial input{font:13px system-ui,sans-serif;padding:3px 4px;border:1px solid #c5ccd6;border-radius:5px;max-width:100%}
.phone button{font:13px system-ui,sans-serif;padding:4px 12px;border:1px solid #c5ccd6;border-radius:6px;background:#f6f7f9;color:#1d2330;cursor:pointer}
.phone button:disabled{opacity:.45;cursor:default}.phone button:not(:disabled):hover{background:#eceff3}
#phone-call:not(:disabled){background:#1f9d55;border-color:#1f9d55;color:#fff}
#phone-hangup:not(:disabled){background:#d64545;border-color:#d64545;color:#fff}
#phone-mute[aria-pressed=true]{background:#b7791f;border-color:#b7791f;color:#fff}
.phone-body{display:flex;gap:16px;align-items:flex-start}
.phone-keypad{display:grid;grid-template-columns:repeat(3,40px);gap:5px}
.phone-say{margin:6px 0 0}
.phone .phone-key{padding:6px 0;font:600 15px ui-monospace,monospace}.phone .phone-key.down{background:#2f7de1;color:#fff}
.phone-side{flex:1;min-width:0}.phone-meters{display:flex;gap:14px;color:#667;font-size:12px}
.phone-meters meter{width:120px;height:10px;vertical-align:middle}
ol.phone-tl{list-style:none;margin:6px 0 0;padding:0;max-height:150px;overflow:auto;font:12px ui-monospace,monospace;white-space:pre}
ol.phone-tl:empty{display:none}
</style></head><body>"#;

/// The refresh: polls the change counter and, when it moved and no `<audio>` of the calls is
/// playing, fetches the page again and swaps the header and `main#calls` in place. The phone
/// section is never touched, so a call in it goes on across refreshes.
const SCRIPT: &str = r#"
(()=>{let ver=+document.getElementById('calls').dataset.version,busy=false;
const playing=()=>[...document.querySelectorAll('#calls audio')].some(a=>!a.paused);
setInterval(async()=>{if(busy)return;busy=true;try{
const v=+(await (await fetch('/_dialtone/version',{cache:'no-store'})).text());
if(v===ver||playing())return;
const r=await fetch('/',{cache:'no-store'});if(!r.ok)return;
const doc=new DOMParser().parseFromString(await r.text(),'text/html');
const main=doc.getElementById('calls');if(!main||playing())return;
const open=new Set([...document.querySelectorAll('#calls details')].map(d=>key(d)+':'+d.open));
for(const sel of ['header','#calls']){const a=document.querySelector(sel),b=doc.querySelector(sel);if(a&&b)a.innerHTML=b.innerHTML;}
for(const d of document.querySelectorAll('#calls details')){const k=key(d);if(open.has(k+':true'))d.open=true;else if(open.has(k+':false'))d.open=false;}
ver=+main.dataset.version;}catch(e){}finally{busy=false;}},1500);
function key(d){const s=d.closest('section[id]');return (s?s.id:'')+'/'+[...(s||document).querySelectorAll('details')].indexOf(d);}
})();"#;
