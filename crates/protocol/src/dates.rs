//! The UTC date forms Twilio's traffic carries: ISO 8601 with milliseconds (stream status
//! callbacks), with microseconds (real-time transcription's `Timestamp`), and the bare
//! `YYYY-MM-DD` of the Calls list's filters. (`webhook::rfc2822` is the REST resources'.)

use std::time::{SystemTime, UNIX_EPOCH};

/// `2010-08-31T20:36:28.000Z`.
pub fn iso8601_ms(t: SystemTime) -> String {
    let (date, secs) = civil(t);
    let ms = since_epoch(t).subsec_millis();
    format!("{date}T{}.{ms:03}Z", clock(secs))
}

/// `2024-06-25T18:45:21.454203Z`.
pub fn iso8601_us(t: SystemTime) -> String {
    let (date, secs) = civil(t);
    let us = since_epoch(t).subsec_micros();
    format!("{date}T{}.{us:06}Z", clock(secs))
}

/// `2010-08-31`.
pub fn date(t: SystemTime) -> String {
    civil(t).0
}

fn since_epoch(t: SystemTime) -> std::time::Duration {
    // Times before 1970 do not occur in a call; they print as the epoch.
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `HH:MM:SS` of `secs` into a day.
fn clock(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// (`YYYY-MM-DD`, seconds into the day) in UTC.
fn civil(t: SystemTime) -> (String, u64) {
    let since = since_epoch(t).as_secs();
    let days = (since / 86_400) as i64;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (format!("{y:04}-{m:02}-{d:02}"), since % 86_400)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_across_leap_days_and_year_ends() {
        assert_eq!(iso8601_us(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601_us(leap), "2000-02-29T00:00:00.000000Z");
        let end = UNIX_EPOCH + Duration::from_micros(1_735_689_599_454_203);
        assert_eq!(iso8601_us(end), "2024-12-31T23:59:59.454203Z");
        assert_eq!(iso8601_ms(end), "2024-12-31T23:59:59.454Z");
        assert_eq!(date(end), "2024-12-31");
        let twilio = UNIX_EPOCH + Duration::from_secs(1_283_286_988); // Twilio's example
        assert_eq!(iso8601_ms(twilio), "2010-08-31T20:36:28.000Z");
    }
}
