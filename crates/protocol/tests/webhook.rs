//! Voice webhook parameters, form encoding, GET query building, and SIDs.

use dialtone_protocol::sid;
use dialtone_protocol::signing;
use dialtone_protocol::webhook::{
    CallInfo, CallStatus, Direction, append_query, form_encode, signed_get, signed_post,
    sort_params, voice_params,
};

fn info() -> CallInfo {
    CallInfo {
        account_sid: "AC0123456789abcdef0123456789abcdef".into(),
        call_sid: "CAfedcba9876543210fedcba9876543210".into(),
        from: "+14158675310".into(),
        to: "+18005551212".into(),
        direction: Direction::Inbound,
        call_token: None,
        caller_country: "US".into(),
        called_country: "GB".into(),
        parent_call_sid: None,
    }
}

fn names(params: &[(String, String)]) -> Vec<&str> {
    params.iter().map(|(n, _)| n.as_str()).collect()
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const STANDARD_NAMES: [&str; 25] = [
    "AccountSid",
    "ApiVersion",
    "CallSid",
    "CallStatus",
    "Called",
    "CalledCity",
    "CalledCountry",
    "CalledState",
    "CalledZip",
    "Caller",
    "CallerCity",
    "CallerCountry",
    "CallerState",
    "CallerZip",
    "Direction",
    "From",
    "FromCity",
    "FromCountry",
    "FromState",
    "FromZip",
    "To",
    "ToCity",
    "ToCountry",
    "ToState",
    "ToZip",
];

#[test]
fn standard_set_in_twilio_order() {
    let params = voice_params(&info(), CallStatus::Ringing);
    assert_eq!(names(&params), STANDARD_NAMES);
    assert_eq!(get(&params, "ApiVersion"), Some("2010-04-01"));
    assert_eq!(get(&params, "CallStatus"), Some("ringing"));
    assert_eq!(get(&params, "Direction"), Some("inbound"));
    assert_eq!(get(&params, "Called"), Some("+18005551212"));
    assert_eq!(get(&params, "Caller"), Some("+14158675310"));
    assert_eq!(get(&params, "FromCountry"), Some("US"));
    assert_eq!(get(&params, "CallerCountry"), Some("US"));
    assert_eq!(get(&params, "ToCountry"), Some("GB"));
    assert_eq!(get(&params, "CalledCountry"), Some("GB"));
    assert_eq!(get(&params, "ToCity"), Some(""));
    assert!(get(&params, "CallToken").is_none());
    assert!(get(&params, "ParentCallSid").is_none());
}

#[test]
fn call_token_only_when_present_and_sorted() {
    let mut with_token = info();
    with_token.call_token = Some("tok%en".into());
    with_token.parent_call_sid = Some("CA11111111111111111111111111111111".into());
    with_token.direction = Direction::OutboundDial;
    let params = voice_params(&with_token, CallStatus::InProgress);
    assert_eq!(get(&params, "CallToken"), Some("tok%en"));
    assert_eq!(
        get(&params, "ParentCallSid"),
        Some("CA11111111111111111111111111111111")
    );
    assert_eq!(get(&params, "Direction"), Some("outbound-dial"));
    assert_eq!(get(&params, "CallStatus"), Some("in-progress"));
    let mut sorted = params.clone();
    sort_params(&mut sorted);
    assert_eq!(params, sorted, "already in Twilio's byte order");
    assert_eq!(params.len(), 27);
}

#[test]
fn enum_spellings() {
    let all = [
        (CallStatus::Queued, "queued"),
        (CallStatus::Ringing, "ringing"),
        (CallStatus::InProgress, "in-progress"),
        (CallStatus::Completed, "completed"),
        (CallStatus::Busy, "busy"),
        (CallStatus::Failed, "failed"),
        (CallStatus::NoAnswer, "no-answer"),
        (CallStatus::Canceled, "canceled"),
    ];
    for (status, text) in all {
        assert_eq!(status.as_str(), text);
    }
    assert!(CallStatus::NoAnswer.is_terminal() && !CallStatus::Ringing.is_terminal());
    assert_eq!(Direction::OutboundApi.as_str(), "outbound-api");
}

#[test]
fn extra_params_sort_into_place() {
    let mut params = voice_params(&info(), CallStatus::InProgress);
    params.push(("Digits".into(), "1".into()));
    params.push(("FinishedOnKey".into(), "#".into()));
    sort_params(&mut params);
    let n = names(&params);
    let digits = n.iter().position(|x| *x == "Digits").expect("present");
    assert_eq!(n[digits - 1], "CallerZip");
    assert_eq!(n[digits + 1], "Direction");
    let key = n
        .iter()
        .position(|x| *x == "FinishedOnKey")
        .expect("present");
    assert_eq!(n[key + 1], "From");
}

#[test]
fn form_encoding() {
    let params = vec![
        ("From".to_owned(), "+14158675310".to_owned()),
        ("SpeechResult".to_owned(), "yes please & thanks".to_owned()),
        ("Empty".to_owned(), String::new()),
        ("Key".to_owned(), "*#".to_owned()),
    ];
    assert_eq!(
        form_encode(&params),
        "From=%2B14158675310&SpeechResult=yes+please+%26+thanks&Empty=&Key=%2A%23"
    );
    assert_eq!(form_encode(&[]), "");
}

#[test]
fn append_query_for_get_webhooks() {
    let params = vec![
        ("CallSid".to_owned(), "CA1".to_owned()),
        ("To".to_owned(), "+1 2".to_owned()),
    ];
    assert_eq!(
        append_query("https://h/v", &params),
        "https://h/v?CallSid=CA1&To=%2B1+2"
    );
    assert_eq!(
        append_query("https://h/v?x=1", &params),
        "https://h/v?x=1&CallSid=CA1&To=%2B1+2"
    );
    assert_eq!(
        append_query("https://h/v?", &params),
        "https://h/v?CallSid=CA1&To=%2B1+2"
    );
    assert_eq!(
        append_query("https://h/v?x=1&", &params),
        "https://h/v?x=1&CallSid=CA1&To=%2B1+2"
    );
    assert_eq!(
        append_query("https://h/v#rc=2", &params),
        "https://h/v?CallSid=CA1&To=%2B1+2#rc=2"
    );
    assert_eq!(append_query("https://h/v?x=1", &[]), "https://h/v?x=1");
}

#[test]
fn signed_requests_validate_at_the_app() {
    let params = voice_params(&info(), CallStatus::Ringing);
    let post = signed_post("tok", "https://u:p@app.example:8443/voice", &params);
    assert!(
        post.body
            .starts_with("AccountSid=AC0123456789abcdef0123456789abcdef&ApiVersion=2010-04-01&")
    );
    assert!(signing::validate(
        "tok",
        "https://app.example/voice",
        &params,
        &post.signature
    ));
    let (url, sig) = signed_get("tok", "http://127.0.0.1:8080/voice?a=b", &params);
    assert!(url.starts_with("http://127.0.0.1:8080/voice?a=b&AccountSid="));
    assert!(signing::validate("tok", &url, &[], &sig));
}

#[test]
fn sids() {
    let a = sid::seeded("CA", 7, 0);
    assert!(sid::is_valid("CA", &a));
    assert_eq!(a, sid::seeded("CA", 7, 0), "deterministic");
    // Compare the hex parts, so a prefix change alone does not count as distinct.
    let mut all: Vec<String> = (0..1000)
        .map(|i| sid::seeded("CA", 7, i)[2..].to_owned())
        .collect();
    all.push(sid::seeded("CA", 8, 0)[2..].to_owned());
    all.push(sid::seeded("MZ", 7, 0)[2..].to_owned());
    let before = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), before, "distinct across index, seed and prefix");
    let r = sid::random("MZ");
    assert!(sid::is_valid("MZ", &r) && !sid::is_valid("CA", &r));
}
