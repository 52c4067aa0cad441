//! Word error rate: how far a transcript is from what was really said.

/// Word error rate of `hypothesis` against `reference`: the word-level Levenshtein
/// distance (substitutions + deletions + insertions) divided by the number of reference
/// words. Case and punctuation are ignored (`"Yes."` equals `"yes"`; apostrophes are
/// dropped, so `"that's"` equals `"thats"`; hyphens split words).
///
/// 0.0 is a perfect transcript; the value can exceed 1.0 when the hypothesis adds many
/// words. An empty reference gives 0.0 against an empty hypothesis and 1.0 otherwise.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let r = words(reference);
    let h = words(hypothesis);
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    edit_distance(&r, &h) as f64 / r.len() as f64
}

/// Lowercased words with punctuation removed.
pub fn words(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        } else if c == '\'' || c == '’' {
            // Part of the word: "don't" and "dont" are one word either way.
        } else {
            cleaned.push(' ');
        }
    }
    cleaned.split_whitespace().map(str::to_owned).collect()
}

/// Levenshtein distance over words, two rows of memory.
fn edit_distance(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, wa) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, wb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(wa != wb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const REF: &str = "Hi, I'd like to check the status of my order please.";

    #[test]
    fn exact_transcripts_score_zero_whatever_the_case_and_punctuation() {
        assert_eq!(wer(REF, REF), 0.0);
        assert_eq!(
            wer(REF, "hi id like to check the status of my order please"),
            0.0
        );
        assert_eq!(wer("Yes.", "YES"), 0.0);
    }

    #[test]
    fn planted_errors_score_what_they_deserve() {
        // 11 reference words.
        assert_eq!(words(REF).len(), 11);
        // One substitution (order → border).
        let sub = "Hi, I'd like to check the status of my border please.";
        assert_eq!(wer(REF, sub), 1.0 / 11.0);
        // One deletion (please).
        let del = "Hi, I'd like to check the status of my order.";
        assert_eq!(wer(REF, del), 1.0 / 11.0);
        // One insertion (um) and one substitution.
        let ins = "Hi um, I'd like to check the state of my order please.";
        assert_eq!(wer(REF, ins), 2.0 / 11.0);
        // Nothing recognised: every word deleted.
        assert_eq!(wer(REF, ""), 1.0);
        // Insertions can push it past 1.
        assert_eq!(wer("yes", "yes yes yes"), 2.0);
    }

    #[test]
    fn empty_reference() {
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("...", "hello"), 1.0);
    }
}
