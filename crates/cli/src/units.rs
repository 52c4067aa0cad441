//! Human units on the command line: durations like `20ms`, `1.5s`, `2m`, `1h`, or plain
//! seconds; timed DTMF like `2.5s:123#`. One set of parsers for flags, scenario files and
//! fault specs, kept with the call configuration they fill.

pub(crate) use dialtone_call::config::{parse_digits, parse_duration, parse_timed_dtmf};
