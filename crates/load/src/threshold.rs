//! `--threshold` expressions, which turn a run into a CI gate:
//! `METRIC STAT OP VALUE` (`turn_latency p95 < 900ms`, `ws_connect max <= 1s`,
//! `frame_lateness p99.9 < 20`), `error_rate OP PERCENT` (`error_rate < 1%`) and
//! `failed_calls OP COUNT` (`failed_calls == 0`). Values without a unit are ms.

use crate::LoadError;
use crate::metrics::{Metric, Recorder};
use crate::summary::{Summary, ThresholdResult};

/// What a threshold looks at.
#[derive(Debug, Clone, PartialEq)]
enum Subject {
    /// A statistic of a metric's histogram, in ms.
    Metric(Metric, Stat),
    /// Failed calls ÷ finished calls, in %.
    ErrorRate,
    /// Failed calls.
    FailedCalls,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    Quantile(f64),
    Max,
    Min,
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// A parsed `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    expr: String,
    subject: Subject,
    op: Op,
    value: f64,
}

impl std::str::FromStr for Threshold {
    type Err = LoadError;

    fn from_str(s: &str) -> Result<Self, LoadError> {
        let bad = |why: String| LoadError::Invalid(format!("--threshold {s:?}: {why}"));
        let words: Vec<&str> = s.split_whitespace().collect();
        let (subject, rest) = match words.as_slice() {
            ["error_rate", rest @ ..] => (Subject::ErrorRate, rest),
            ["failed_calls", rest @ ..] => (Subject::FailedCalls, rest),
            [name, stat, rest @ ..] => {
                let metric = Metric::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                    bad(format!(
                        "unknown metric {name:?} (known: {}, error_rate, failed_calls)",
                        known.join(", ")
                    ))
                })?;
                (
                    Subject::Metric(metric, parse_stat(stat).map_err(bad)?),
                    rest,
                )
            }
            _ => return Err(bad("expected e.g. 'turn_latency p95 < 900ms'".into())),
        };
        let [op, value] = rest else {
            return Err(bad(
                "expected an operator and a value, e.g. '< 900ms'".into()
            ));
        };
        let op = match *op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" | "=" => Op::Eq,
            o => return Err(bad(format!("unknown operator {o:?} (use < <= > >= ==)"))),
        };
        let value = match subject {
            Subject::Metric(..) => parse_ms(value).map(|v| {
                // A time a metric can take: 0 to the longest duration dialtone accepts.
                let max_ms = dialtone_call::config::MAX_DURATION.as_secs_f64() * 1e3;
                check_range(v, 0.0, max_ms, "a time from 0 to 168h")
            }),
            Subject::ErrorRate => value
                .trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .map(|v| check_range(v, 0.0, 100.0, "a percentage from 0% to 100%")),
            Subject::FailedCalls => value
                .parse::<u64>()
                .ok()
                .map(|v| check_range(v as f64, 0.0, crate::plan::MAX_CALLS as f64, "a call count")),
        }
        .ok_or_else(|| {
            bad(format!(
                "{value:?} is not a value (e.g. 900ms, 1.5s, 1%, 0)"
            ))
        })?
        .map_err(|why| bad(format!("{value:?} is out of range: {why}")))?;
        Ok(Threshold {
            expr: s.trim().to_string(),
            subject,
            op,
            value,
        })
    }
}

/// `v` when it is within `lo..=hi` (NaN never is), else what it should be.
fn check_range(v: f64, lo: f64, hi: f64, what: &'static str) -> Result<f64, &'static str> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(what)
    }
}

fn parse_stat(s: &str) -> Result<Stat, String> {
    match s {
        "max" => Ok(Stat::Max),
        "min" => Ok(Stat::Min),
        "mean" | "avg" => Ok(Stat::Mean),
        _ => {
            let q: f64 = s
                .strip_prefix('p')
                .and_then(|p| p.parse().ok())
                .filter(|q| (0.0..=100.0).contains(q))
                .ok_or_else(|| {
                    format!("unknown statistic {s:?} (p50, p95, p99.9, max, min, mean)")
                })?;
            Ok(Stat::Quantile(q / 100.0))
        }
    }
}

/// `900ms`, `1.5s`, `250us`, or plain ms.
fn parse_ms(s: &str) -> Option<f64> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us").or_else(|| s.strip_suffix("µs")) {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v * mult)
}

impl Threshold {
    /// Judges the threshold against a run's totals and counts.
    pub fn check(&self, totals: &Recorder, summary: &Summary) -> ThresholdResult {
        let actual = match &self.subject {
            Subject::Metric(m, stat) => {
                let h = totals.get(*m);
                (!h.is_empty()).then(|| {
                    let us = match stat {
                        Stat::Quantile(q) => h.value_at_quantile(*q) as f64,
                        Stat::Max => h.max() as f64,
                        Stat::Min => h.min() as f64,
                        Stat::Mean => h.mean(),
                    };
                    us / 1000.0
                })
            }
            Subject::ErrorRate => {
                let c = &summary.calls;
                (c.finished > 0).then(|| 100.0 * c.failed as f64 / c.finished as f64)
            }
            Subject::FailedCalls => Some(summary.calls.failed as f64),
        };
        let Some(v) = actual else {
            return ThresholdResult {
                expr: self.expr.clone(),
                passed: false,
                actual: None,
                detail: "no samples in this run".into(),
            };
        };
        let passed = match self.op {
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Eq => (v - self.value).abs() < 1e-9,
        };
        let unit = match self.subject {
            Subject::Metric(..) => " ms",
            Subject::ErrorRate => "%",
            Subject::FailedCalls => "",
        };
        ThresholdResult {
            expr: self.expr.clone(),
            passed,
            actual: Some(crate::metrics::round3(v)),
            detail: if passed {
                String::new()
            } else {
                format!("measured {v:.3}{unit}")
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let t: Threshold = "turn_latency p95 < 900ms".parse().unwrap();
        assert_eq!(
            t.subject,
            Subject::Metric(Metric::TurnLatency, Stat::Quantile(0.95))
        );
        assert_eq!(t.value, 900.0);
        let t: Threshold = "ws_connect max <= 1.5s".parse().unwrap();
        assert_eq!(t.value, 1500.0);
        let t: Threshold = "error_rate < 1%".parse().unwrap();
        assert_eq!(t.subject, Subject::ErrorRate);
        assert!("failed_calls == 0".parse::<Threshold>().is_ok());
        assert!("latency p95 < 1".parse::<Threshold>().is_err());
        assert!("webhook p95 ~ 1".parse::<Threshold>().is_err());
        assert!("webhook p101 < 1".parse::<Threshold>().is_err());
    }

    #[test]
    fn values_out_of_their_range_are_named() {
        for (expr, why) in [
            ("error_rate < 200%", "percentage"),
            ("error_rate < -1%", "percentage"),
            ("error_rate < nan%", "percentage"),
            ("error_rate < inf", "percentage"),
            ("webhook p95 < -5ms", "time"),
            ("webhook p95 < 1e300s", "time"),
            ("failed_calls == 1e20", "not a value"),
            ("failed_calls == -1", "not a value"),
            ("failed_calls == 1.5", "not a value"),
            ("failed_calls < 99999999999", "call count"),
        ] {
            let e = expr.parse::<Threshold>().expect_err(expr).to_string();
            assert!(e.contains(why), "{expr}: {e}");
        }
        for ok in [
            "error_rate <= 100%",
            "error_rate < 0",
            "webhook p99 < 604800s",
            "failed_calls == 0",
        ] {
            assert!(ok.parse::<Threshold>().is_ok(), "{ok}");
        }
    }
}
