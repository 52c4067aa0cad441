//! Any bytes into the TwiML parser: it must return Ok or a 12100/12200 error, never panic;
//! and whatever parses must survive serialize → parse unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(doc) = dialtone_twiml::parse(text) {
        let again = dialtone_twiml::parse(&doc.to_xml()).expect("serialized TwiML parses");
        assert_eq!(again, doc);
    }
});
