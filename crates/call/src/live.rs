//! A caller whose voice arrives while the call runs (the browser softphone in `dialtone
//! serve`): its μ-law goes through a jitter buffer into one 20 ms slot per frame counted
//! from the answer, so the frames the app's streams carry keep their cadence whatever the
//! browser's timing; its keys reach `<Gather>` and bidirectional streams as they are
//! pressed; what it hears (the app's stream audio after the playout, paced by the stream's
//! frame clock, else `<Say>`/`<Play>`) is handed out every 20 ms for the browser to play.
//!
//! Everything here is plain state behind one lock, fed bytes and asked for slots: the
//! stream sessions and the driver's clock decide when a slot is due.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_audio::FrameSet;
use tokio::sync::Notify;
use tokio::time::Instant;

/// μ-law bytes in one 20 ms frame.
pub const FRAME: usize = 160;
const SILENCE: [u8; FRAME] = [0xFF; FRAME];
/// Audio buffered before the first slot is filled (and again after an underrun): 60 ms
/// absorbs the browser's bursts (an AudioWorklet posts every 2.7 ms, a busy tab late).
pub const JITTER_TARGET: usize = 3 * FRAME;
/// Beyond 200 ms buffered the caller would hear the app ever later: the oldest audio goes.
pub const JITTER_MAX: usize = 10 * FRAME;
/// Keys kept (a keypad pressed for an hour is no reason to grow).
const KEYS_KEPT: usize = 4096;
/// Typed lines kept (see [`LiveCaller::say`]).
const LINES_KEPT: usize = 256;
/// Characters of one typed line heard (the rest are dropped: a page may paste a book).
pub const LINE_CHARS: usize = 500;
/// Heard frames queued for the browser: half a second.
const HEARD_QUEUED: usize = 25;
/// A stream that pushed nothing for this long has stopped playing to the caller (it ticks
/// every 20 ms).
const STREAM_QUIET: Duration = Duration::from_millis(100);

/// How the jitter buffer fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Slots filled with silence because the browser's audio was late (after it started).
    pub underruns: u64,
    /// μ-law bytes dropped because too much was buffered.
    pub dropped_bytes: u64,
    /// Slots decided so far.
    pub slots: u64,
}

#[derive(Debug, Default)]
struct State {
    /// The answer: slot 0 starts here.
    epoch: Option<Instant>,
    jitter: VecDeque<u8>,
    /// Waiting for `JITTER_TARGET` bytes before playing out.
    filling: bool,
    /// Some audio has arrived (silence before it is no underrun).
    started: bool,
    muted: bool,
    /// What the caller said, slot by slot from the answer (up to `max_slots`).
    said: Vec<u8>,
    max_slots: u64,
    stats: JitterStats,
    /// Keys in the order pressed; `keys_dropped` counts those before the first.
    keys: VecDeque<char>,
    keys_dropped: usize,
    /// Lines the caller typed as what it says, with when each came.
    lines: VecDeque<(Instant, String)>,
    /// Frames the app's streams played to the caller, not yet handed out, and when the
    /// last came.
    heard: VecDeque<[u8; FRAME]>,
    heard_pushed: Option<Instant>,
    /// `<Say>`/`<Play>` audio playing: its frames and the next one to hand out.
    playing: Option<(Arc<FrameSet>, usize)>,
    hung_up: bool,
}

/// One live caller, shared by the call's engine and the driver that feeds it.
#[derive(Debug)]
pub struct LiveCaller {
    state: Mutex<State>,
    /// Wakes whoever waits for a key, a typed line or the hang-up.
    keyed: Notify,
}

impl LiveCaller {
    /// A caller that talks for at most `longest` (what is said after that is not kept).
    pub fn new(longest: Duration) -> Arc<Self> {
        let max_slots = (longest.as_millis() / 20) as u64;
        Arc::new(Self {
            state: Mutex::new(State {
                filling: true,
                max_slots,
                ..State::default()
            }),
            keyed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller's next μ-law bytes, as they arrive.
    pub fn push_audio(&self, mulaw: &[u8]) {
        let mut s = self.lock();
        s.started = true;
        s.jitter.extend(mulaw);
        if s.epoch.is_none() {
            // Ringing: nobody hears it; what is said just before the answer is kept.
            let excess = s.jitter.len().saturating_sub(JITTER_TARGET);
            s.jitter.drain(..excess);
            return;
        }
        if s.jitter.len() > JITTER_MAX {
            let drop = s.jitter.len() - JITTER_TARGET;
            s.jitter.drain(..drop);
            s.stats.dropped_bytes += drop as u64;
        }
    }

    /// The jitter buffer is at its most: more audio now would only push out the oldest.
    pub fn buffer_full(&self) -> bool {
        self.lock().jitter.len() >= JITTER_MAX
    }

    /// Muted: the slots carry silence (the browser's audio still flows through the buffer).
    pub fn set_muted(&self, muted: bool) {
        self.lock().muted = muted;
    }

    /// A key pressed now.
    pub fn key(&self, digit: char) {
        let mut s = self.lock();
        if s.keys.len() == KEYS_KEPT {
            s.keys.pop_front();
            s.keys_dropped += 1;
        }
        s.keys.push_back(digit);
        drop(s);
        self.keyed.notify_waiters();
    }

    /// The caller says `text` now: its words, which no recognizer could take from its
    /// microphone, typed. A speech `<Gather>` listening hears them as if spoken from this
    /// moment (at `<Say>`'s pace). Blank lines are nothing; past [`LINE_CHARS`] the rest
    /// is dropped.
    pub fn say(&self, text: &str) {
        let text: String = text.trim().chars().take(LINE_CHARS).collect();
        if text.is_empty() {
            return;
        }
        let mut s = self.lock();
        if s.lines.len() == LINES_KEPT {
            s.lines.pop_front();
        }
        s.lines.push_back((Instant::now(), text));
        drop(s);
        self.keyed.notify_waiters();
    }

    /// A line was typed at or after `from`.
    pub fn typed_since(&self, from: Instant) -> bool {
        self.lock().lines.iter().any(|(at, _)| *at >= from)
    }

    /// The first line typed at or after `from`, waiting for it until `deadline`; `None` at
    /// the deadline or when the caller hangs up.
    pub async fn next_line(&self, from: Instant, deadline: Instant) -> Option<(Instant, String)> {
        loop {
            let notified = self.keyed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.lock();
                if let Some(line) = s.lines.iter().find(|(at, _)| *at >= from) {
                    return Some(line.clone());
                }
                if s.hung_up {
                    return None;
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// The caller hung up.
    pub fn hang_up(&self) {
        self.lock().hung_up = true;
        self.keyed.notify_waiters();
    }

    /// The call was answered at `at`: slot 0 starts there (the first answer counts).
    pub fn answered(&self, at: Instant) {
        self.lock().epoch.get_or_insert(at);
    }

    /// The answer, once there is one.
    pub fn epoch(&self) -> Option<Instant> {
        self.lock().epoch
    }

    /// Slot `slot`'s frame (slot 0 starts at the answer), deciding every slot up to it.
    pub fn frame(&self, slot: u64) -> [u8; FRAME] {
        let mut s = self.lock();
        advance(&mut s, slot + 1);
        let at = slot as usize * FRAME;
        match s.said.get(at..at + FRAME) {
            Some(f) => f.try_into().unwrap_or(SILENCE),
            None => SILENCE,
        }
    }

    /// Decides the slots due by `now` (the driver's clock: what nobody streams is still
    /// said, for the recording).
    pub fn tick(&self, now: Instant) {
        let mut s = self.lock();
        if let Some(epoch) = s.epoch {
            let due = (now.saturating_duration_since(epoch).as_millis() / 20) as u64;
            advance(&mut s, due);
        }
    }

    /// What the caller said from the answer, slot by slot.
    pub fn said(&self) -> Vec<u8> {
        self.lock().said.clone()
    }

    /// What the caller said in bytes `[a, b)` of its slots (silence where none was decided).
    pub fn said_between(&self, a: u64, b: u64) -> Vec<u8> {
        crate::record::slice(&self.lock().said, (a, b.max(a)))
    }

    /// How the jitter buffer fared.
    pub fn stats(&self) -> JitterStats {
        self.lock().stats
    }

    /// Keys pressed after the `cursor`th (a count of keys ever pressed), moving it past them.
    pub fn keys_after(&self, cursor: &mut usize) -> Vec<char> {
        let s = self.lock();
        let first = (*cursor).saturating_sub(s.keys_dropped);
        let out = s.keys.iter().skip(first).copied().collect();
        *cursor = s.keys_dropped + s.keys.len();
        out
    }

    /// How many keys were ever pressed (a cursor for [`LiveCaller::keys_after`] that skips
    /// what came before).
    pub fn keys_pressed(&self) -> usize {
        let s = self.lock();
        s.keys_dropped + s.keys.len()
    }

    /// The next key after `cursor`, waiting for it until `deadline`; `None` at the deadline
    /// or when the caller hangs up.
    pub async fn next_key(&self, cursor: &mut usize, deadline: Instant) -> Option<char> {
        loop {
            let notified = self.keyed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.lock();
                let first = (*cursor).saturating_sub(s.keys_dropped);
                if let Some(c) = s.keys.get(first) {
                    *cursor = s.keys_dropped + first + 1;
                    return Some(*c);
                }
                if s.hung_up {
                    return None;
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Waits until more than `before` keys were pressed (forever once the caller hung up
    /// without).
    pub async fn pressed_after(&self, before: usize) {
        loop {
            let notified = self.keyed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.keys_pressed() > before {
                return;
            }
            notified.await;
        }
    }

    /// A frame a stream played to the caller (its playout, after marks and `clear`): the
    /// stream's own 20 ms clock paces what the caller hears while it runs.
    pub fn push_heard(&self, frame: [u8; FRAME]) {
        let mut s = self.lock();
        if s.heard.len() == HEARD_QUEUED {
            s.heard.pop_front();
        }
        s.heard.push_back(frame);
        s.heard_pushed = Some(Instant::now());
    }

    /// `<Say>`/`<Play>` audio starts playing (`None`: it stopped).
    pub fn play(&self, frames: Option<Arc<FrameSet>>) {
        self.lock().playing = frames.map(|f| (f, 0));
    }

    /// What the caller hears next, asked every 20 ms: the frames a stream played since the
    /// last ask (none when it is a little late: they come with the next ask, rather than a
    /// silence slipped into the app's audio); with no stream playing, the prompt's next
    /// frame, else silence.
    pub fn take_heard(&self) -> Vec<[u8; FRAME]> {
        let mut s = self.lock();
        if !s.heard.is_empty() {
            return s.heard.drain(..).collect();
        }
        let streaming = s.heard_pushed.is_some_and(|at| at.elapsed() < STREAM_QUIET);
        if streaming {
            return Vec::new();
        }
        let frame = match &mut s.playing {
            Some((frames, i)) if !frames.is_empty() => {
                let f = *frames.frame(*i % frames.len());
                *i += 1;
                f
            }
            _ => SILENCE,
        };
        vec![frame]
    }
}

/// Decides slots until `slots` exist: each takes 20 ms of the jitter buffer, or silence
/// while it refills.
fn advance(s: &mut State, slots: u64) {
    let slots = slots.min(s.max_slots);
    while s.stats.slots < slots {
        if s.filling && s.jitter.len() >= JITTER_TARGET {
            s.filling = false;
        }
        let mut frame = SILENCE;
        if !s.filling {
            if s.jitter.len() >= FRAME {
                for (d, b) in frame.iter_mut().zip(s.jitter.drain(..FRAME)) {
                    *d = b;
                }
            } else {
                s.filling = true;
                if s.started {
                    s.stats.underruns += 1;
                }
            }
        }
        if s.muted {
            frame = SILENCE;
        }
        s.said.extend_from_slice(&frame);
        s.stats.slots += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: u8, n: usize) -> Vec<u8> {
        vec![v; n]
    }

    #[test]
    fn slots_wait_for_the_target_then_play_in_order() {
        let live = LiveCaller::new(Duration::from_secs(10));
        live.answered(Instant::now());
        live.push_audio(&bytes(1, FRAME));
        live.push_audio(&bytes(2, FRAME));
        // 40 ms buffered: below the 60 ms target, slot 0 is silence.
        assert_eq!(live.frame(0), SILENCE);
        live.push_audio(&bytes(3, FRAME));
        assert_eq!(live.frame(1), [1; FRAME]);
        assert_eq!(live.frame(2), [2; FRAME]);
        assert_eq!(live.frame(3), [3; FRAME]);
        // Slot 1 again is the same frame: two streams read one timeline.
        assert_eq!(live.frame(1), [1; FRAME]);
        assert_eq!(live.stats().underruns, 0);
        // Dry: silence, counted, and the buffer refills to the target before playing again.
        assert_eq!(live.frame(4), SILENCE);
        assert_eq!(live.stats().underruns, 1);
    }

    #[test]
    fn a_burst_past_the_maximum_keeps_the_newest_audio() {
        let live = LiveCaller::new(Duration::from_secs(10));
        live.answered(Instant::now());
        for v in 0..20u8 {
            live.push_audio(&bytes(v, FRAME));
        }
        assert!(live.stats().dropped_bytes > 0);
        // What is left is the newest 60 ms or more, in order.
        let first = live.frame(0);
        assert!(first[0] >= 10, "old audio was kept: {}", first[0]);
        assert_eq!(live.frame(1)[0], first[0] + 1);
    }

    #[test]
    fn audio_while_ringing_is_not_kept_nor_counted() {
        let live = LiveCaller::new(Duration::from_secs(10));
        for v in 0..20u8 {
            live.push_audio(&bytes(v, FRAME));
        }
        live.answered(Instant::now());
        // The last 60 ms before the answer start the call; nothing counts as dropped.
        assert_eq!(live.frame(0), [17; FRAME]);
        assert_eq!(live.stats().dropped_bytes, 0);
    }

    #[test]
    fn mute_says_silence_and_the_said_track_is_capped() {
        let live = LiveCaller::new(Duration::from_millis(100));
        live.answered(Instant::now());
        live.push_audio(&bytes(7, 4 * FRAME));
        live.set_muted(true);
        assert_eq!(live.frame(0), SILENCE);
        live.set_muted(false);
        assert_eq!(live.frame(1), [7; FRAME]);
        // 100 ms = 5 slots at most.
        assert_eq!(live.frame(50), SILENCE);
        assert_eq!(live.said().len(), 5 * FRAME);
    }

    #[tokio::test]
    async fn keys_wait_and_cursors_see_each_key_once() {
        let live = LiveCaller::new(Duration::from_secs(10));
        live.key('0');
        // A gather listening from now does not take the key pressed before.
        let mut gather = live.keys_pressed();
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move {
                let a = live
                    .next_key(&mut gather, Instant::now() + Duration::from_secs(5))
                    .await;
                let b = live
                    .next_key(&mut gather, Instant::now() + Duration::from_millis(100))
                    .await;
                (a, b)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        live.key('1');
        assert_eq!(waiter.await.unwrap(), (Some('1'), None));
        let mut stream = 1;
        live.key('#');
        assert_eq!(live.keys_after(&mut stream), vec!['1', '#']);
        assert!(live.keys_after(&mut stream).is_empty());
    }

    #[test]
    fn the_stream_paces_what_is_heard_and_the_prompt_plays_without_one() {
        let live = LiveCaller::new(Duration::from_secs(10));
        live.play(Some(Arc::new(FrameSet::from_mulaw(&bytes(9, 2 * FRAME)))));
        // No stream: the prompt, frame by frame.
        assert_eq!(live.take_heard(), vec![[9; FRAME]]);
        live.push_heard([4; FRAME]);
        live.push_heard([5; FRAME]);
        assert_eq!(live.take_heard(), vec![[4; FRAME], [5; FRAME]]);
        // The stream is a little late: nothing now (no silence in its audio), not the prompt.
        assert!(live.take_heard().is_empty());
        std::thread::sleep(STREAM_QUIET);
        // It stopped: the prompt again, then silence.
        assert_eq!(live.take_heard(), vec![[9; FRAME]]);
        live.play(None);
        assert_eq!(live.take_heard(), vec![SILENCE]);
    }

    #[tokio::test]
    async fn a_line_typed_while_waiting_wakes_the_waiter() {
        let live = LiveCaller::new(Duration::from_secs(60));
        let from = Instant::now();
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move {
                live.next_line(from, Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        live.say("  hello there ");
        let got = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.map(|(_, t)| t), Some("hello there".to_string()));
        assert!(live.typed_since(from));
        // Blank lines are nothing; a pasted book is cut to LINE_CHARS.
        let later = Instant::now();
        live.say("   ");
        assert!(!live.typed_since(later));
        live.say(&"é".repeat(3 * LINE_CHARS));
        let (_, long) = live.next_line(later, later).await.unwrap();
        assert_eq!(long.chars().count(), LINE_CHARS);
    }
}
