//! Any text into both Media Streams parsers (app → Twilio and Twilio → app): a value or a
//! `Violation`, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = dialtone_protocol::media::parse_app_message(text, "MZ00000000000000000000000000000000");
    let _ = dialtone_protocol::media::parse_twilio_message(text);
});
