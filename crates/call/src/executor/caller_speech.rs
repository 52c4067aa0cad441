//! The caller's words on the call's clock, for what listens to them without a stream
//! (speech `<Gather>`, `<Record>`, `<Transcription>`): each turn of its ground truth placed
//! where its audio puts it. A caller whose audio has not started (no stream has carried it)
//! starts talking when first listened to, as it would after a prompt, and hangs up after its
//! audio and tail as it does on a stream.

use tokio::time::Instant;

use super::Call;

/// One caller turn on the call's clock.
#[derive(Debug, Clone)]
#[allow(dead_code)] // <Record> reads `index`; speech <Gather> and <Transcription> the rest.
pub(super) struct Spoken {
    /// Its index among the caller's turns (tells utterances apart for the error model).
    pub(super) index: usize,
    /// Speech starts.
    pub(super) start: Instant,
    /// Speech ends.
    pub(super) end: Instant,
    /// The words, as the corpus or the transcript has them (empty when unknown).
    pub(super) text: String,
}

impl Call<'_> {
    /// The caller's turns that end after `from`, in order, on the call's clock (starting the
    /// caller's audio now if it had not started); `None` in virtual time, where the
    /// caller's audio keeps no clock the verbs share.
    pub(super) fn caller_speech_after(&mut self, from: Instant) -> Option<Vec<Spoken>> {
        self.caller_talks_from_now();
        let t0 = self.caller_t0()?;
        Some(
            self.cfg
                .caller
                .turns
                .iter()
                .enumerate()
                .map(|(index, t)| Spoken {
                    index,
                    start: t0 + t.start(),
                    end: t0 + t.end(),
                    text: t.text.clone(),
                })
                .filter(|s| s.end > from)
                .collect(),
        )
    }
}
