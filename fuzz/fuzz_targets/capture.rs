//! Any bytes into the capture reader of `dialtone replay` (the first byte picks the call:
//! the file's first, `CA1`, `CA2` or an empty SID): a call or a typed error, never a panic;
//! and a call's positions and offsets are ones the replay can use.
#![no_main]
use std::time::{Duration, Instant};

use dialtone_replay::capture::{read_from, CapturedCall};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else { return };
    let pick = match pick % 4 {
        0 => None,
        1 => Some("CA1"),
        2 => Some("CA2"),
        _ => Some(""),
    };
    let Ok(call) = read_from(text, "fuzz.jsonl", pick) else { return };
    check(&call);
    if pick.is_none() {
        // Naming the first call explicitly picks the same one.
        let again = read_from(text, "fuzz.jsonl", Some(&call.call_sid)).expect("same call");
        assert_eq!(again.call_sid, call.call_sid);
        assert_eq!(again.stream.map(|s| s.outs.len()), call.stream.as_ref().map(|s| s.outs.len()));
    }
});

fn check(call: &CapturedCall) {
    assert!(call.calls_in_file >= 1);
    let Some(s) = &call.stream else { return };
    // As the real-time replay uses them: offset -> Duration -> Instant.
    let usable = |ms: f64| {
        let d = Duration::try_from_secs_f64(ms.max(0.0) / 1e3).expect("offset fits a Duration");
        assert!(Instant::now().checked_add(d).is_some(), "offset fits an Instant");
    };
    let mut last = 0;
    for o in &s.outs {
        usable(o.offset_ms);
        assert!(o.ins_before >= last && o.ins_before <= s.ins.len());
        last = o.ins_before;
    }
    let mut last = 0;
    for i in &s.ins {
        usable(i.offset_ms);
        assert!(i.after_out >= last && i.after_out <= s.outs.len());
        last = i.after_out;
    }
    if let Some(c) = &s.close {
        usable(c.offset_ms);
        assert_eq!((c.after_out, c.ins_before), (s.outs.len(), s.ins.len()));
    }
}
