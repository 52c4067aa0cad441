//! Any bytes into the WAV reader: 8 kHz samples or a typed error naming the file, never a
//! panic or an unbounded allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dialtone_audio::wav::load_8k_from_bytes(data, "fuzz.wav");
});
