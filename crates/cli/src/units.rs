//! Human units on the command line: durations like `20ms`, `1.5s`, `2m`, `1h`, or plain
//! seconds; timed DTMF like `2.5s:123#`. One set of parsers for flags, scenario files and
//! fault specs, kept with the call configuration they fill.

//! Every duration is at most `MAX_DURATION` (7 days); counts have their own bounds here.

pub(crate) use dialtone_call::config::{
    parse_digits, parse_duration, parse_positive_duration, parse_timed_dtmf,
};

/// A count flag's parser: a whole number from `lo` to `hi`, else exit 2 naming the range.
pub(crate) fn count(lo: usize, hi: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(lo as u64..=hi as u64)
}

/// `--rate`: calls per second, from `MIN_RATE` to `MAX_RATE`.
pub(crate) fn parse_rate(s: &str) -> Result<f64, String> {
    use dialtone_load::plan::{MAX_RATE, MIN_RATE};
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of calls per second"))?;
    if !(MIN_RATE..=MAX_RATE).contains(&v) {
        return Err(format!(
            "{s:?} is out of range: {MIN_RATE} to {MAX_RATE} calls per second"
        ));
    }
    Ok(v)
}
