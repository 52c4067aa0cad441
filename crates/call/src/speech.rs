//! The simulated recognizer behind speech `<Gather>`, `<Record transcribe>` and real-time
//! `<Transcription>`: it hears the caller's exact words (its turns, from the corpus manifest
//! or a transcript beside the WAV), timed across each turn, and returns them as they were
//! said, or with seeded word errors when asked. Pure functions of the turns: no I/O, no
//! clock.

use std::time::Duration;

use dialtone_corpus::Turn;

/// A seeded word-error model: each word is substituted or deleted with probability `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WordErrors {
    /// Chance that a word comes out wrong, 0 to 1.
    pub rate: f64,
    /// Seed: the same seed gives the same errors.
    pub seed: u64,
}

/// What the recognizer made of an utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognized {
    /// The words, space-separated.
    pub text: String,
    /// `Confidence`, 0 to 1.
    pub confidence: f64,
}

/// Confidence of an exact result (Twilio's results on clear speech sit about here).
pub const EXACT_CONFIDENCE: f64 = 0.92;

/// Words a wrong word becomes: short, common ones.
const CONFUSIONS: &[&str] = &["uh", "the", "a", "and", "to", "in", "on", "it", "so", "oh"];

/// How many of `turn`'s words are spoken `at_ms` into it (words spread evenly over it).
pub fn words_by(turn: &Turn, at_ms: u32) -> usize {
    let span = turn.end_ms.saturating_sub(turn.start_ms);
    words_at(
        turn.text.split_whitespace().count(),
        Duration::from_millis(span.into()),
        Duration::from_millis(at_ms.into()),
    )
}

/// How many of `total` words spread evenly over `span` are said `elapsed` into it (to the
/// millisecond): a word counts from its first millisecond. Every recognizer in the call uses
/// this one spread.
pub fn words_at(total: usize, span: Duration, elapsed: Duration) -> usize {
    let (span, at) = (span.as_millis(), elapsed.as_millis());
    if span == 0 || at >= span {
        return total;
    }
    ((total as u128 * at).div_ceil(span) as usize).min(total)
}

/// The first `n` words of `text`, space-separated.
pub fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// splitmix64: a small, well-mixed generator (the model must be reproducible from its
/// seed, not cryptographic).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the recognizer returns for `text`: the words as said, or, with `errors`, each word
/// substituted or deleted (even odds) with the model's rate. `salt` tells utterances apart
/// (the same utterance and seed always give the same result).
pub fn recognize(text: &str, errors: Option<&WordErrors>, salt: u64) -> Recognized {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(e) = errors.filter(|e| e.rate > 0.0) else {
        return Recognized {
            text: words.join(" "),
            confidence: EXACT_CONFIDENCE,
        };
    };
    let mut out = Vec::with_capacity(words.len());
    let mut wrong = 0usize;
    let mut state = mix(e.seed ^ mix(salt));
    for w in &words {
        state = mix(state);
        let roll = (state >> 11) as f64 / (1u64 << 53) as f64;
        if roll >= e.rate {
            out.push((*w).to_string());
            continue;
        }
        wrong += 1;
        state = mix(state);
        if state & 1 == 0 {
            let other = CONFUSIONS[(state >> 1) as usize % CONFUSIONS.len()];
            // A substitution that happens to be the word itself is still a different word.
            let other = if other.eq_ignore_ascii_case(w) {
                "um"
            } else {
                other
            };
            out.push(other.to_string());
        }
    }
    let share = if words.is_empty() {
        0.0
    } else {
        wrong as f64 / words.len() as f64
    };
    Recognized {
        text: out.join(" "),
        confidence: (EXACT_CONFIDENCE * (1.0 - share)).max(0.05),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(text: &str) -> Turn {
        Turn {
            start_ms: 1000,
            end_ms: 3000,
            text: text.into(),
        }
    }

    #[test]
    fn words_spread_over_the_turn() {
        let t = turn("one two three four");
        assert_eq!(words_by(&t, 0), 0);
        assert_eq!(words_by(&t, 1), 1);
        assert_eq!(words_by(&t, 500), 1);
        assert_eq!(words_by(&t, 501), 2);
        assert_eq!(words_by(&t, 2000), 4);
        assert_eq!(words_by(&t, 9000), 4);
        assert_eq!(first_words("one  two three", 2), "one two");
    }

    #[test]
    fn without_errors_the_words_come_back_as_said() {
        let r = recognize("  I want  to pay my bill ", None, 1);
        assert_eq!(r.text, "I want to pay my bill");
        assert_eq!(r.confidence, EXACT_CONFIDENCE);
    }

    #[test]
    fn errors_follow_the_rate_and_the_seed() {
        let text = "word ".repeat(2000);
        let e = WordErrors { rate: 0.2, seed: 7 };
        let a = recognize(&text, Some(&e), 3);
        let b = recognize(&text, Some(&e), 3);
        assert_eq!(a, b, "same seed and salt, same errors");
        assert_ne!(a.text, recognize(&text, Some(&e), 4).text);
        let kept = a.text.split_whitespace().filter(|w| *w == "word").count();
        let wrong = 2000 - kept;
        assert!(
            (330..=470).contains(&wrong),
            "{wrong} wrong of 2000 at 20 %"
        );
        assert!(a.confidence < EXACT_CONFIDENCE && a.confidence > 0.6);
        let all = WordErrors { rate: 1.0, seed: 1 };
        assert!(!recognize("hello", Some(&all), 0).text.contains("hello"));
    }
}
