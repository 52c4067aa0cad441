//! Milestones of multi-turn calls matched to ground truth: a corpus script placed on the
//! wall clock, an app reporting VAD, transcript and reply milestones for every turn
//! (with jitter, a planted transcription error, early and late stamps), and the records
//! of unknown calls counted.

use dialtone_corpus::Corpus;
use dialtone_milestones::{Anchor, Milestone, TurnClock, match_turns, partition_known, wer};

/// Wall-clock time (epoch ms) at which the script's first frame was sent.
const T0: i64 = 1_732_460_000_000;
const CALL: &str = "CA0123456789abcdef0123456789abcdef";

fn ms(name: &str, ts: i64, text: Option<&str>) -> Milestone {
    Milestone {
        call_sid: CALL.into(),
        name: name.into(),
        ts_ms: Some(ts),
        duration_ms: None,
        text: text.map(str::to_owned),
    }
}

/// The `session` script's five turns, as the engine would clock them.
fn session_turns() -> Vec<TurnClock> {
    let turns = script_turns("session");
    assert_eq!(turns.len(), 5);
    turns
}

/// A corpus script's turns placed on the wall clock from `T0`.
fn script_turns(name: &str) -> Vec<TurnClock> {
    let corpus = Corpus::open(&Corpus::default_dir()).expect("corpus");
    let entry = corpus.get(name).expect("corpus script");
    entry
        .turns
        .iter()
        .enumerate()
        .map(|(index, t)| TurnClock {
            index,
            start_ms: T0 + i64::from(t.start_ms),
            end_ms: T0 + i64::from(t.end_ms),
            text: t.text.clone(),
        })
        .collect()
}

#[test]
fn every_turn_gets_its_milestones_and_latencies() {
    let turns = session_turns();
    let mut app = vec![ms("tts.first_audio", T0 - 2000, None)]; // the greeting
    for (k, t) in turns.iter().enumerate() {
        let k = k as i64;
        // The app's VAD: onset 100 ms late, except turn 2, stamped 250 ms early
        // (clock skew); end of speech after a 500 ms hangover plus k ms of jitter.
        let onset = if k == 2 { -250 } else { 100 };
        app.push(ms("vad.speech_start", t.start_ms + onset, None));
        app.push(ms("vad.speech_end", t.end_ms + 500 + k, None));
        // Turn 1's transcript has a planted substitution; the others are exact.
        let text = if k == 1 {
            t.text.replace("nervous", "nerves")
        } else {
            t.text.to_uppercase()
        };
        app.push(ms("transcript.final", t.end_ms + 800, Some(&text)));
        app.push(ms("llm.first_token", t.end_ms + 1100, None));
    }
    // A report with no timestamp cannot be placed.
    app.push(Milestone {
        ts_ms: None,
        duration_ms: Some(30.0),
        ..ms("tts.synth", 0, None)
    });
    // Shuffle: matching must not depend on arrival order.
    app.reverse();

    let matched = match_turns(&turns, &app);
    assert_eq!(matched.per_turn.len(), 5);
    let unmatched: Vec<&str> = matched.unmatched.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(unmatched, ["tts.synth", "tts.first_audio"]);
    for (k, turn) in matched.per_turn.iter().enumerate() {
        assert_eq!(turn.index, k);
        let got: Vec<(&str, i64, Anchor)> = turn
            .milestones
            .iter()
            .map(|e| (e.name.as_str(), e.latency_ms, e.anchor))
            .collect();
        let onset = if k == 2 { -250 } else { 100 };
        assert_eq!(
            got,
            [
                ("vad.speech_start", onset, Anchor::Start),
                ("vad.speech_end", 500 + k as i64, Anchor::End),
                ("transcript.final", 800, Anchor::End),
                ("llm.first_token", 1100, Anchor::End),
            ],
            "turn {k}"
        );
    }
    // Turn 1: "I have a presentation on Friday and I am really nervous." is 11 words,
    // one substituted.
    assert_eq!(matched.per_turn[1].wer, Some(1.0 / 11.0));
    for k in [0, 2, 3, 4] {
        assert_eq!(matched.per_turn[k].wer, Some(0.0), "turn {k}");
    }
}

/// The `rapid` script answers 700 ms after each turn, and a VAD with a 500 ms hangover
/// reports the end of a turn less than 300 ms before the next starts: end milestones still
/// belong to the turn that ended (only onsets may be early).
#[test]
fn quick_answers_do_not_steal_the_previous_turns_milestones() {
    let turns = script_turns("rapid");
    assert_eq!(turns.len(), 4);
    let mut app = Vec::new();
    for t in &turns {
        app.push(ms("vad.speech_start", t.start_ms + 80, None));
        app.push(ms("transcript.partial", t.start_ms + 150, Some("y")));
        app.push(ms("vad.speech_end", t.end_ms + 480, None));
        app.push(ms("transcript.final", t.end_ms + 600, Some(&t.text)));
    }
    // The end is reported within 300 ms of the next turn's start.
    assert!(turns[1].start_ms - 300 < turns[0].end_ms + 480);
    let matched = match_turns(&turns, &app);
    assert!(matched.unmatched.is_empty(), "{:?}", matched.unmatched);
    for (k, turn) in matched.per_turn.iter().enumerate() {
        let partial = turns[k].start_ms + 150 - turns[k].end_ms;
        let got: Vec<(&str, i64)> = turn
            .milestones
            .iter()
            .map(|e| (e.name.as_str(), e.latency_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("vad.speech_start", 80),
                ("transcript.partial", partial),
                ("vad.speech_end", 480),
                ("transcript.final", 600),
            ],
            "turn {k}"
        );
        assert_eq!(turn.wer, Some(0.0));
    }
}

#[test]
fn assignment_rule_at_the_boundaries() {
    let turns = vec![
        TurnClock {
            index: 0,
            start_ms: 10_000,
            end_ms: 12_000,
            text: "one two".into(),
        },
        TurnClock {
            index: 1,
            start_ms: 14_000,
            end_ms: 15_000,
            text: String::new(),
        },
    ];
    let app = [
        ms("vad.speech_start", 9_699, None), // 301 ms early: before turn 0's window
        ms("vad.speech_start", 9_700, None), // exactly 300 ms early: turn 0
        ms("transcript.partial", 11_000, Some("one")), // before the end: negative latency
        ms("tts.first_audio", 13_699, None), // still turn 0
        ms("stt.started", 13_700, None),     // 300 ms before turn 1: turn 1, from its start
        ms("transcript.final", 15_400, Some("anything")), // no reference text: no WER
        ms("vad.speech_end", 13_850, None),  // 150 ms before turn 1: only onsets may be early
        ms("vad.speech_end", 9_800, None),   // before any turn: unmatched
    ];
    let matched = match_turns(&turns, &app);
    let unmatched: Vec<Option<i64>> = matched.unmatched.iter().map(|m| m.ts_ms).collect();
    assert_eq!(unmatched, [Some(9_699), Some(9_800)]);
    let lat = |k: usize| -> Vec<i64> {
        matched.per_turn[k]
            .milestones
            .iter()
            .map(|e| e.latency_ms)
            .collect()
    };
    assert_eq!(lat(0), [-300, -1000, 1699, 1850]);
    assert_eq!(lat(1), [-300, 400]);
    assert_eq!(matched.per_turn[0].wer, None);
    assert_eq!(matched.per_turn[1].wer, None);
}

#[test]
fn split_final_transcripts_are_scored_together() {
    let turns = vec![TurnClock {
        index: 0,
        start_ms: 0,
        end_ms: 5_000,
        text: "So the thing is, I have this big meeting next week".into(),
    }];
    let app = [
        ms(
            "transcript.final",
            6_000,
            Some("I have this big meeting next weak"),
        ),
        ms("transcript.final", 3_000, Some("so the thing is")),
    ];
    let matched = match_turns(&turns, &app);
    let expected = wer(
        &turns[0].text,
        "so the thing is I have this big meeting next weak",
    );
    assert_eq!(matched.per_turn[0].wer, Some(expected));
    assert_eq!(expected, 1.0 / 11.0);
}

#[test]
fn unknown_calls_are_counted_not_matched() {
    let mut records = vec![
        ms("vad.speech_end", T0, None),
        Milestone {
            call_sid: "CAffff".into(),
            ..ms("vad.speech_end", T0, None)
        },
        Milestone {
            call_sid: "CAffff".into(),
            ..ms("vad.speech_start", T0, None)
        },
        Milestone {
            call_sid: "CAeeee".into(),
            ..ms("vad.speech_end", T0, None)
        },
        Milestone {
            call_sid: String::new(),
            duration_ms: Some(1250.0),
            ..ms("job", T0, None)
        },
    ];
    // Hundreds of invented SIDs: all counted, only the first hundred listed.
    for i in 0..300 {
        records.push(Milestone {
            call_sid: format!("CAx{i}"),
            ..ms("x", T0, None)
        });
    }
    let p = partition_known(records, |sid| sid == CALL);
    assert_eq!(p.known[CALL].len(), 1);
    assert_eq!(p.unknown_records, 303);
    assert_eq!(p.unknown["CAffff"], 2);
    assert_eq!(
        p.unknown.len(),
        dialtone_milestones::matching::MAX_UNKNOWN_SIDS
    );
    assert_eq!(p.no_call.len(), 1);
}

/// Issue 11: a VAD with a hangover re-fires `vad.speech_start` inside one caller turn. Only
/// the first onset is the turn's (its latency from the true start); the others are
/// re-onsets of the same turn, never a later turn's onset.
#[test]
fn r11_only_the_first_onset_of_a_turn_is_its_onset() {
    let turns = session_turns();
    let mut app = Vec::new();
    for t in &turns {
        app.push(ms("vad.speech_start", t.start_ms + 90, None));
        app.push(ms("vad.speech_end", t.end_ms + 480, None));
    }
    // Turn 1 (3.1 s of speech) is split twice by a pause, turn 4 once, and reported out
    // of order.
    app.push(ms("vad.speech_start", turns[1].start_ms + 1_600, None));
    app.push(ms("vad.speech_start", turns[1].start_ms + 900, None));
    app.push(ms("vad.speech_start", turns[4].start_ms + 2_000, None));
    let matched = match_turns(&turns, &app);
    assert!(matched.unmatched.is_empty(), "{:?}", matched.unmatched);
    for (k, turn) in matched.per_turn.iter().enumerate() {
        let onsets: Vec<i64> = turn
            .milestones
            .iter()
            .filter(|e| e.name == "vad.speech_start")
            .map(|e| e.latency_ms)
            .collect();
        assert_eq!(onsets, [90], "turn {k}: one onset, the first");
        let reonsets: Vec<i64> = turn.reonsets.iter().map(|e| e.latency_ms).collect();
        let want: &[i64] = match k {
            1 => &[900, 1_600],
            4 => &[2_000],
            _ => &[],
        };
        assert_eq!(reonsets, want, "turn {k}");
        assert!(turn.reonsets.iter().all(|e| e.anchor == Anchor::Start));
    }
}
