//! The web page over real sockets: `dialtone serve` on a loopback port with two accounts, a
//! voice app on another loopback port answering the hosted numbers, and live calls that
//! `<Dial>` a hosted number, join a conference and wait in a queue. The page must show the
//! dialed leg nested in its parent's card with the bridge in words, the conference with its
//! participant, the queue with its member, and none of it to the other account. The phone
//! section offers the viewer's own hosted numbers only.

use std::time::Duration;

use dialtone_protocol::webhook::form_encode;
use dialtone_server::ServerConfig;
use dialtone_server::config::FileConfig;
use serde_json::Value;

const AC1: &str = "AC11111111111111111111111111111111";
const AC2: &str = "AC22222222222222222222222222222222";

/// The voice app: TwiML by path. Names carry `&` so the page's escaping is seen.
async fn app() -> String {
    use axum::routing::any;
    fn twiml(body: &'static str) -> ([(&'static str, &'static str); 1], &'static str) {
        ([("content-type", "text/xml")], body)
    }
    let router = axum::Router::new()
        .route(
            "/dialer",
            any(|| async {
                twiml("<Response><Dial><Number>+15005550002</Number></Dial></Response>")
            }),
        )
        .route(
            "/callee",
            any(|| async { twiml("<Response><Say>hello</Say><Pause length=\"60\"/></Response>") }),
        )
        .route(
            "/room",
            any(|| async {
                twiml(
                    "<Response><Dial><Conference participantLabel=\"agent&lt;1&gt;\" muted=\"true\">\
                     stand&amp;up</Conference></Dial></Response>",
                )
            }),
        )
        .route(
            "/wait",
            any(|| async { twiml("<Response><Enqueue>help&amp;desk</Enqueue></Response>") }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, router).await });
    base
}

struct Server {
    api: String,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn server(app: &str) -> Server {
    // The simulated callees stay on the line (caller tail) until the server shuts down.
    let file: FileConfig = toml::from_str(&format!(
        r#"ring_ms = 50
        caller_tail_ms = 120000
        [[accounts]]
        sid = "{AC1}"
        auth_token = "token1"
        [[accounts]]
        sid = "{AC2}"
        auth_token = "token2"
        [[numbers]]
        phone_number = "+15005550001"
        account_sid = "{AC1}"
        voice_url = "{app}/dialer"
        [[numbers]]
        phone_number = "+15005550002"
        account_sid = "{AC1}"
        voice_url = "{app}/callee"
        [[numbers]]
        phone_number = "+15005550003"
        account_sid = "{AC2}"
        friendly_name = "front <desk> & co"
        voice_url = "{app}/callee"
        "#
    ))
    .unwrap();
    let config = ServerConfig::from_file(file, std::path::Path::new(".")).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(dialtone_server::run(l, config, async {
        let _ = stopped.await;
    }));
    Server {
        api,
        http: reqwest::Client::new(),
        stop,
        task,
    }
}

impl Server {
    /// Creates a call of account 1; its SID.
    async fn call(&self, params: &[(&str, &str)]) -> String {
        let body = form_encode(
            &params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        );
        let resp = self
            .http
            .post(format!("{}/2010-04-01/Accounts/{AC1}/Calls.json", self.api))
            .basic_auth(AC1, Some("token1"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        v["sid"].as_str().unwrap().to_string()
    }

    /// A REST list of account 1.
    async fn list(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/2010-04-01/Accounts/{AC1}/{path}", self.api))
            .basic_auth(AC1, Some("token1"))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    /// The page as `who` sees it.
    async fn page(&self, who: (&str, &str)) -> String {
        let resp = self
            .http
            .get(format!("{}/", self.api))
            .basic_auth(who.0, Some(who.1))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }
}

/// The card of call (or conference, queue) `sid`: from its `<section>` to the section's end.
fn card<'a>(page: &'a str, sid: &str) -> &'a str {
    let start = page
        .find(&format!("<section class=call id={sid}>"))
        .unwrap_or_else(|| panic!("no card for {sid}:\n{page}"));
    let len = page[start..].find("</section>").unwrap();
    &page[start..start + len]
}

fn anchor(sid: &str) -> String {
    format!("<a href=\"#{sid}\"><code>{sid}</code></a>")
}

/// The first item of `list[key]` that `keep` accepts, as JSON.
fn find(list: &Value, key: &str, keep: impl Fn(&Value) -> bool) -> Option<Value> {
    list[key].as_array()?.iter().find(|v| keep(v)).cloned()
}

#[tokio::test]
async fn the_page_shows_legs_bridges_conferences_and_queues_to_their_account_only() {
    let app = app().await;
    let s = server(&app).await;
    // The created leg talks (silence) to +15005550001's app, which dials +15005550002.
    let created = s
        .call(&[
            ("To", "+15005550001"),
            ("From", "+15005550006"),
            ("Twiml", "<Response><Pause length=\"60\"/></Response>"),
        ])
        .await;
    let member = s
        .call(&[
            ("To", "+15551230002"),
            ("From", "+15005550006"),
            ("Url", &format!("{app}/wait")),
        ])
        .await;
    let seated = s
        .call(&[
            ("To", "+15551230001"),
            ("From", "+15005550006"),
            ("Url", &format!("{app}/room")),
        ])
        .await;

    // Wait until the dialed leg is bridged, the conference has its participant and the
    // queue its member.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (leg, conf, queue) = loop {
        let calls = s.list("Calls.json").await;
        let leg = find(&calls, "calls", |c| {
            c["direction"] == "outbound-dial" && c["status"] == "in-progress"
        });
        // One participant alone holds the conference at `init`, as on Twilio.
        let conf = find(&s.list("Conferences.json").await, "conferences", |c| {
            c["status"] == "init"
        });
        let seated_now = match &conf {
            Some(c) => {
                let sid = c["sid"].as_str().unwrap();
                let list = s
                    .list(&format!("Conferences/{sid}/Participants.json"))
                    .await;
                list["participants"].as_array().map_or(0, Vec::len)
            }
            None => 0,
        };
        let queue = find(&s.list("Queues.json").await, "queues", |q| {
            q["current_size"] == 1
        });
        if let (Some(l), Some(c), Some(q), 1) = (&leg, &conf, &queue, seated_now) {
            break (l.clone(), c.clone(), q.clone());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all set up in 30 s: leg {leg:?}, conference {conf:?} ({seated_now} seated), \
             queue {queue:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let leg_sid = leg["sid"].as_str().unwrap().to_string();
    // The parent: +15005550001's app's inbound call, whose <Dial> placed the leg.
    let parent = leg["parent_call_sid"].as_str().unwrap().to_string();
    let calls = s.list("Calls.json?To=%2B15005550002").await;
    let callee = find(&calls, "calls", |c| c["direction"] == "inbound").unwrap();
    let callee = callee["sid"].as_str().unwrap().to_string();
    let cf = conf["sid"].as_str().unwrap().to_string();
    let qu = queue["sid"].as_str().unwrap().to_string();

    let page = s.page((AC1, "token1")).await;

    // The parent's card: the leg nested, answered and bridged, the hosted app's call linked.
    let p = card(&page, &parent);
    let bridged = format!("bridged to {} (+15005550002) for ", anchor(&leg_sid));
    assert!(p.contains(&bridged), "parent card lacks {bridged:?}:\n{p}");
    let row = format!(
        "<tr class=bridged><td>{}</td><td><b>+15005550002</b></td>",
        anchor(&leg_sid)
    );
    assert!(p.contains(&row), "parent card lacks the leg row:\n{p}");
    assert!(p.contains("<th>legs (1)</th>"), "{p}");
    assert!(p.contains("outbound-dial"), "{p}");
    assert!(
        p.contains(&format!(
            "answered, bridged &middot; hosted app {}",
            anchor(&callee)
        )),
        "{p}"
    );
    // And its own caller: the created leg is bridged to it.
    assert!(
        p.contains(&format!(
            "bridged to {} (+15005550006) for ",
            anchor(&created)
        )),
        "{p}"
    );
    // The leg's card names its parent; the hosted app's call names the leg it answers.
    let l = card(&page, &leg_sid);
    assert!(
        l.contains(&format!("leg of {} (parent)", anchor(&parent))),
        "{l}"
    );
    assert!(
        l.contains(&format!("its app answers as {}", anchor(&callee))),
        "{l}"
    );
    let c = card(&page, &callee);
    assert!(
        c.contains(&format!(
            "answers <code>&lt;Dial&gt;</code> leg {} of {}",
            anchor(&leg_sid),
            anchor(&parent)
        )),
        "{c}"
    );

    // Conferences: the live one, named and escaped, with its muted, labelled participant.
    let conferences = &page[page
        .find("<h2>Conferences</h2>")
        .expect("a Conferences section")..];
    let room = card(conferences, &cf);
    assert!(room.contains("<b>stand&amp;up</b>"), "{room}");
    assert!(
        room.contains("<span class=\"status init\">init</span>"),
        "{room}"
    );
    assert!(
        room.contains(&format!(
            "<tr><td>{}</td><td>agent&lt;1&gt;</td><td>muted</td></tr>",
            anchor(&seated)
        )),
        "{room}"
    );
    // Queues: its size and the member at the front.
    let queues = &page[page.find("<h2>Queues</h2>").expect("a Queues section")..];
    let q = card(queues, &qu);
    assert!(q.contains("<b>help&amp;desk</b>"), "{q}");
    assert!(q.contains("size 1 of max 1000"), "{q}");
    assert!(
        q.contains(&format!("<tr><td>1</td><td>{}</td>", anchor(&member))),
        "{q}"
    );
    assert!(
        !page.contains("stand&up") && !page.contains("agent<1>"),
        "unescaped"
    );

    // The other account sees none of it.
    let other = s.page((AC2, "token2")).await;
    for secret in [
        &created, &parent, &leg_sid, &callee, &seated, &member, &cf, &qu,
    ] {
        assert!(!other.contains(secret.as_str()), "account 2 sees {secret}");
    }
    for name in ["stand&amp;up", "help&amp;desk", "+15005550002"] {
        assert!(!other.contains(name), "account 2 sees {name}");
    }
    assert!(other.contains("No conference yet.") && other.contains("No queue yet."));

    let _ = s.stop.send(());
    s.task.await.unwrap().unwrap();
}

/// `<select id=phone-number>…</select>` of the page.
fn phone_select(page: &str) -> &str {
    let start = page
        .find("<select id=phone-number>")
        .unwrap_or_else(|| panic!("no phone number select:\n{page}"));
    let len = page[start..].find("</select>").unwrap();
    &page[start..start + len]
}

#[tokio::test]
async fn the_page_has_a_phone_with_the_viewers_numbers_only() {
    let app = app().await;
    let s = server(&app).await;
    let page = s.page((AC1, "token1")).await;

    // The section with its WebSocket path, above the numbers table.
    let phone = page
        .find("<section id=phone class=phone data-ws=\"/phone/ws?")
        .unwrap_or_else(|| panic!("no phone section with data-ws:\n{page}"));
    assert!(phone < page.find("<h2>Numbers</h2>").unwrap(), "{page}");
    // The refresh swaps main#calls (and the header) in place; the phone is outside both, so
    // a call in it goes on. Nothing reloads the whole page.
    let main = page
        .find("<main id=calls data-version=")
        .expect("main#calls");
    assert!(phone < main && main < page.find("<h2>Numbers</h2>").unwrap());
    assert!(!page.contains("location.reload"), "{page}");
    for id in [
        "<input id=phone-url",
        "<button type=button id=phone-call>",
        "<input id=phone-say-text",
        "<button type=button id=phone-hangup",
        "<button type=button id=phone-mute aria-pressed=false",
        "id=phone-status>idle<",
        "<code class=sid id=phone-sid>",
        "<meter id=phone-level-mic min=0 max=1",
        "<meter id=phone-level-app min=0 max=1",
        "<ol id=phone-timeline",
    ] {
        assert!(page.contains(id), "the phone lacks {id:?}:\n{page}");
    }
    for digit in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"] {
        let key = format!("class=phone-key data-digit=\"{digit}\"");
        assert!(page.contains(&key), "no key {digit}:\n{page}");
    }
    // The script, whole: nothing in it ends its <script> element early.
    assert!(page.contains("window.dialtonePhone = phone;"), "{page}");
    assert!(page.contains("ctx.audioWorklet.addModule("), "{page}");
    assert_eq!(page.matches("</script>").count(), 2, "{page}");

    // Account 1 can call its own numbers, not account 2's, and the other way round.
    let select = phone_select(&page);
    for n in ["+15005550001", "+15005550002"] {
        assert!(
            select.contains(&format!("<option value=\"{n}\">")),
            "{select}"
        );
    }
    assert!(!select.contains("+15005550003"), "{select}");
    let other = s.page((AC2, "token2")).await;
    let select = phone_select(&other);
    assert!(
        select.contains(
            "<option value=\"+15005550003\">+15005550003 \u{b7} front &lt;desk&gt; &amp; co \u{b7} "
        ),
        "{select}"
    );
    assert!(
        !select.contains("+15005550001") && !select.contains("+15005550002"),
        "{select}"
    );

    let _ = s.stop.send(());
    s.task.await.unwrap().unwrap();
}
