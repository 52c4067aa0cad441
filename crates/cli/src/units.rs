//! Human units on the command line: durations like `20ms`, `1.5s`, `2m`, `1h`, or plain
//! seconds; timed DTMF like `2.5s:123#`.

use std::time::Duration;

/// Parses `20ms`, `1.5s`, `2m`, `1h` or a plain number of seconds (the same rules as
/// scenario files).
pub(crate) use dialtone_load::scenario::parse_duration;

/// Parses `TIME:DIGITS` (e.g. `2s:1`, `3.5:42#`): digits sent 100 ms apart from TIME on.
pub(crate) fn parse_timed_dtmf(s: &str) -> Result<Vec<(Duration, char)>, String> {
    let (time, digits) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected TIME:DIGITS, e.g. 2s:1"))?;
    let at = parse_duration(time)?;
    if digits.is_empty() {
        return Err(format!("{s:?}: no digits after ':'"));
    }
    digits
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if is_dtmf(c) {
                Ok((at + Duration::from_millis(100 * i as u64), c))
            } else {
                Err(format!("{s:?}: {c:?} is not a DTMF digit (0-9 * # A-D)"))
            }
        })
        .collect()
}

/// Validates digits keyed at `<Gather>`.
pub(crate) fn parse_digits(s: &str) -> Result<String, String> {
    match s.chars().find(|&c| !is_dtmf(c)) {
        Some(c) => Err(format!("{c:?} is not a DTMF digit (0-9 * # A-D)")),
        None => Ok(s.to_string()),
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A' | 'B' | 'C' | 'D')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms").unwrap(), Duration::from_millis(20));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn timed_dtmf() {
        let v = parse_timed_dtmf("2s:12").unwrap();
        assert_eq!(
            v,
            vec![
                (Duration::from_secs(2), '1'),
                (Duration::from_millis(2100), '2')
            ]
        );
        assert!(parse_timed_dtmf("2s").is_err());
        assert!(parse_timed_dtmf("2s:x").is_err());
        assert!(parse_digits("12#").is_ok());
        assert!(parse_digits("1e").is_err());
    }
}
