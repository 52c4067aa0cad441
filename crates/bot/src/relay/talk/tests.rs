use std::time::Duration;

use dialtone_protocol::relay::{FromApp, parse_app_message};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn talk(spec: &str) -> Talk {
    let mut t = Talk::new(RelayMode::default(), spec.parse().expect("spec"));
    t.on_message(
        Duration::ZERO,
        r#"{"type":"setup","sessionId":"VX1","callSid":"CA1"}"#,
    );
    t
}

fn prompt(words: &str, last: bool) -> String {
    serde_json::json!({"type": "prompt", "voicePrompt": words, "lang": "en-US", "last": last})
        .to_string()
}

/// Runs the clock until nothing is due (at most `until`): each output with its time.
fn run(t: &mut Talk, until: Duration) -> Vec<(Duration, Out)> {
    let mut got = Vec::new();
    while let Some(at) = t.next_at().filter(|&at| at <= until) {
        let mut out = Vec::new();
        t.on_timeout(at, &mut out);
        got.extend(out.into_iter().map(|o| (at, o)));
    }
    got
}

/// The `text` messages among `outs`, checked the way Twilio checks them: (token, last).
fn texts(outs: &[(Duration, Out)]) -> Vec<(String, bool)> {
    outs.iter()
        .filter_map(|(_, o)| match o {
            Out::Send(s) => match parse_app_message(s) {
                Ok(FromApp::Text { token, last, .. }) => Some((token, last)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_final_prompt_is_echoed_after_thinking_one_token_a_word() {
    let mut t = talk("none");
    t.on_message(100 * MS, &prompt("Hi, I'd", false));
    assert_eq!(t.next_at(), None, "a partial prompt is ignored");
    t.on_message(200 * MS, &prompt("Hi, I'd like tea.", true));
    let outs = run(&mut t, Duration::from_secs(10));
    let times: Vec<Duration> = outs.iter().map(|(at, _)| *at).collect();
    assert_eq!(times[0], 350 * MS, "150 ms of thinking");
    assert_eq!(times[1], 380 * MS, "30 ms between tokens");
    assert_eq!(joined(&outs), "You said: Hi, I'd like tea.");
    let lasts: Vec<bool> = texts(&outs).iter().map(|(_, l)| *l).collect();
    assert_eq!(lasts, [false, false, false, false, false, true]);
    assert_eq!(t.stats().tokens, 6);
}

/// The tokens of `outs`, joined as Twilio joins them.
fn joined(outs: &[(Duration, Out)]) -> String {
    texts(outs).into_iter().map(|(w, _)| w).collect()
}

#[test]
fn answers_are_bounded_and_digits_answered() {
    let mut t = talk("none");
    let long = format!("{} {}", "word ".repeat(100), "x".repeat(1000));
    t.on_message(Duration::ZERO, &prompt(&long, true));
    let outs = run(&mut t, Duration::from_secs(10));
    assert_eq!(texts(&outs).len(), MAX_ECHO_WORDS + 2);
    t.on_message(Duration::from_secs(20), &prompt("   ", true));
    let outs = run(&mut t, Duration::from_secs(30));
    assert_eq!(joined(&outs), "Sorry, I did not catch that.");
    t.on_message(Duration::from_secs(40), r#"{"type":"dtmf","digit":"5"}"#);
    let outs = run(&mut t, Duration::from_secs(50));
    assert_eq!(joined(&outs), "You pressed 5.");
    assert!(texts(&outs).last().expect("tokens").1);
}

#[test]
fn an_interrupt_stops_the_answer_and_a_new_prompt_replaces_it() {
    let mut t = talk("none");
    t.on_message(Duration::ZERO, &prompt("one two three four", true));
    let mut out = Vec::new();
    t.on_timeout(150 * MS, &mut out);
    assert_eq!(out.len(), 1);
    t.on_message(
        160 * MS,
        r#"{"type":"interrupt","utteranceUntilInterrupt":"You","durationUntilInterruptMs":10}"#,
    );
    assert_eq!(t.next_at(), None);
    assert_eq!(t.stats().cut, 1);
    t.on_message(Duration::from_secs(1), &prompt("first answer", true));
    t.on_message(Duration::from_secs(1) + 10 * MS, &prompt("second", true));
    let outs = run(&mut t, Duration::from_secs(10));
    assert_eq!(joined(&outs), "You said: second");
    // Junk is ignored, not fatal.
    t.on_message(Duration::from_secs(11), "not json");
    t.on_message(Duration::from_secs(11), r#"{"type":"whatever"}"#);
    assert_eq!(t.stats().ignored, 2);
}

#[test]
fn slow_first_token_waits_three_seconds_every_answer() {
    let mut t = talk("slow_first_token=1");
    assert_eq!(t.fault(), Some(Behaviour::SlowFirstToken));
    for start in [Duration::ZERO, Duration::from_secs(10)] {
        t.on_message(start, &prompt("hello there", true));
        let outs = run(&mut t, start + Duration::from_secs(9));
        assert_eq!(outs[0].0, start + SLOW_FIRST_TOKEN);
        assert!(texts(&outs).last().expect("tokens").1);
    }
}

#[test]
fn token_flood_floods_the_first_answer_only() {
    let mut t = talk("token_flood=1");
    t.on_message(Duration::ZERO, &prompt("hello", true));
    let outs = run(&mut t, Duration::from_secs(1));
    assert_eq!(outs, [(150 * MS, Out::Flood(TOKEN_FLOOD))]);
    assert!(parse_app_message(&text_message(FLOOD_TOKEN, true)).is_ok());
    t.on_message(Duration::from_secs(2), &prompt("hello", true));
    let outs = run(&mut t, Duration::from_secs(3));
    assert_eq!(joined(&outs), "You said: hello");
}

#[test]
fn never_last_never_says_last() {
    let mut t = talk("never_last=1");
    t.on_message(Duration::ZERO, &prompt("a b c", true));
    let outs = run(&mut t, Duration::from_secs(1));
    assert_eq!(texts(&outs).len(), 5);
    assert!(texts(&outs).iter().all(|(_, last)| !last));
    assert_eq!(t.next_at(), None);
}

#[test]
fn close_mid_turn_closes_after_two_tokens_of_the_first_answer() {
    let mut t = talk("close_mid_turn=1");
    t.on_message(Duration::ZERO, &prompt("a b c", true));
    let outs = run(&mut t, Duration::from_secs(1));
    assert_eq!(texts(&outs).len(), CLOSE_AFTER_TOKENS as usize);
    assert_eq!(outs.last().map(|(_, o)| o), Some(&Out::Close));
    assert!(
        !outs
            .iter()
            .any(|(_, o)| matches!(o, Out::Send(s) if s.contains("\"end\"")))
    );
    t.on_message(Duration::from_secs(2), &prompt("more", true));
    assert_eq!(t.next_at(), None, "closed: nothing more");
}

#[test]
fn malformed_slips_bad_messages_in_after_each_first_token() {
    let mut t = talk("malformed=1");
    t.on_message(Duration::ZERO, &prompt("a b", true));
    let outs = run(&mut t, Duration::from_secs(1));
    let sent: Vec<&str> = outs
        .iter()
        .filter_map(|(_, o)| match o {
            Out::Send(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 4 + MALFORMED_MESSAGES.len());
    assert!(parse_app_message(sent[0]).is_ok());
    for bad in &sent[1..=MALFORMED_MESSAGES.len()] {
        assert!(parse_app_message(bad).is_err(), "{bad}");
    }
    assert!(texts(&outs).last().expect("tokens").1);
}

#[test]
fn relay_faults_need_setup_and_stream_faults_do_nothing_here() {
    let mut t = Talk::new(RelayMode::default(), "never_last=1".parse().expect("spec"));
    assert_eq!(t.fault(), None);
    t.on_message(Duration::ZERO, r#"{"type":"setup","callSid":"CA1"}"#);
    assert_eq!(t.fault(), Some(Behaviour::NeverLast));
    let t = talk("mute=1");
    assert_eq!(t.fault(), None);
}
