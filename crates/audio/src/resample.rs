//! Band-limited sample-rate conversion to 8 kHz (Kaiser-windowed sinc,
//! polyphase), so prompts recorded at 44.1/48 kHz do not alias on the phone line.
//!
//! This is deliberately not dasp's `Sinc` interpolator: the only published
//! release (dasp 0.11.0) swaps the left/right taps (fixed upstream in
//! RustAudio/dasp#143, never released), which leaves ~50 % error at fractional
//! positions, and it never low-passes when downsampling, so at integer ratios
//! (48k → 8k) it degenerates into plain sample dropping. It is also ~20× slower
//! because it evaluates sin/cos for every tap of every output sample.

use crate::frames::SAMPLE_RATE;

/// Fraction of the lower Nyquist frequency kept as passband: the -6 dB point
/// is at 0.92 × 4 kHz = 3.68 kHz, so the telephone band (300-3400 Hz) is flat
/// and the stopband starts just below 4 kHz.
const ROLLOFF: f64 = 0.92;
/// Sinc zero crossings on each side of the centre. With the Kaiser window
/// below this gives a ~580 Hz transition band (at 8 kHz) and ~80 dB rejection.
const ZERO_CROSSINGS: f64 = 32.0;
/// Kaiser window shape: β = 8 ≈ 0.1102 × (80 dB − 8.7), i.e. ~80 dB stopband.
const KAISER_BETA: f64 = 8.0;
/// Rates whose phase pattern repeats within this many output samples get an
/// exact coefficient row per phase; odder rates share this many rows and
/// interpolate linearly between neighbours (sub-1e-5 coefficient error).
const MAX_PHASES: u64 = 512;

/// Band-limited resampling of mono f32 samples in [-1, 1] from `from_rate` to
/// 8000 Hz. Identity when `from_rate == 8000`; empty output when `from_rate == 0`.
///
/// Output length is `round(len × 8000 / from_rate)` and output sample `j` is
/// aligned with input time `j × from_rate / 8000` (no delay). Content above
/// ~3.7 kHz (or above the input's own Nyquist when upsampling) is removed
/// rather than folded back; the signal is treated as zero outside its ends.
pub fn to_8k(samples: &[f32], from_rate: u32) -> Vec<f32> {
    if from_rate == SAMPLE_RATE {
        return samples.to_vec();
    }
    if from_rate == 0 || samples.is_empty() {
        return Vec::new();
    }
    let from = u64::from(from_rate);
    let to = u64::from(SAMPLE_RATE);
    let out_len = ((samples.len() as u64 * to + from / 2) / from) as usize;
    if out_len == 0 {
        return Vec::new();
    }
    resample(samples, from, out_len, &mut Kernel::new(from_rate))
}

/// The polyphase loop of [`to_8k`]: `out_len` outputs from `samples` at `from` Hz.
fn resample(samples: &[f32], from: u64, out_len: usize, kernel: &mut Kernel) -> Vec<f32> {
    let to = u64::from(SAMPLE_RATE);
    let taps = kernel.taps;

    // Zero padding lets every output be one contiguous dot product with no
    // bounds special-casing at the ends. Tap k of output j reads input index
    // i - half + 1 + k, i.e. padded index i + k.
    let lead = kernel.half - 1;
    let mut padded = vec![0.0f32; lead + samples.len() + taps + 2];
    padded[lead..lead + samples.len()].copy_from_slice(samples);

    let mut blended = vec![0.0f32; taps];
    (0..out_len as u64)
        .map(|j| {
            let i = (j * from / to) as usize;
            sample_at(kernel, &padded[i..i + taps], j, from, &mut blended)
        })
        .collect()
}

/// Output `j` from `window`, the `taps` padded input samples it reads (padded index
/// `floor(j × from / 8000)` on).
fn sample_at(kernel: &mut Kernel, window: &[f32], j: u64, from: u64, blended: &mut [f32]) -> f32 {
    let to = u64::from(SAMPLE_RATE);
    // Exact rational position: i + rem / to input samples.
    let scaled = (j * from % to) * kernel.phases;
    let (row, frac) = (scaled / to, scaled % to);
    kernel.compute(row as usize);
    if frac == 0 {
        return dot(kernel.row(row as usize), window);
    }
    kernel.compute(row as usize + 1);
    let alpha = frac as f32 / to as f32;
    let (a, b) = (kernel.row(row as usize), kernel.row(row as usize + 1));
    for ((c, &x), &y) in blended.iter_mut().zip(a).zip(b) {
        *c = x + alpha * (y - x);
    }
    dot(blended, window)
}

/// [`to_8k`] for audio that arrives in pieces (a microphone): every output as soon as the
/// input it reads has come, the same samples `to_8k` gives for the whole input. The
/// polyphase filter needs the input around each output, so a streaming one keeps only
/// that window (hand-rolled for the same reason as `to_8k`; tested equal to it).
pub struct Streaming8k {
    from: u64,
    kernel: Option<Kernel>,
    /// Padded input from padded index `base` on (the padding is `half - 1` leading zeros).
    buf: Vec<f32>,
    base: u64,
    /// Input samples pushed so far, and outputs given.
    pushed: u64,
    next: u64,
    blended: Vec<f32>,
}

impl Streaming8k {
    /// A resampler from `from_rate` Hz (8000: identity; 0: no output).
    pub fn new(from_rate: u32) -> Self {
        let kernel = (from_rate != SAMPLE_RATE && from_rate != 0).then(|| Kernel::new(from_rate));
        let lead = kernel.as_ref().map_or(0, |k| k.half - 1);
        let taps = kernel.as_ref().map_or(0, |k| k.taps);
        Self {
            from: u64::from(from_rate),
            kernel,
            buf: vec![0.0; lead],
            base: 0,
            pushed: 0,
            next: 0,
            blended: vec![0.0; taps],
        }
    }

    /// The outputs that `samples` (the next input) completes, appended to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) {
        self.pushed += samples.len() as u64;
        if self.from == u64::from(SAMPLE_RATE) {
            out.extend_from_slice(samples);
            return;
        }
        if self.kernel.is_none() {
            return;
        }
        self.buf.extend_from_slice(samples);
        self.drain(u64::MAX, out);
    }

    /// The outputs left once the input is over (it is zero past its end, as for `to_8k`).
    pub fn finish(mut self, out: &mut Vec<f32>) {
        let Some(taps) = self.kernel.as_ref().map(|k| k.taps) else {
            return;
        };
        let to = u64::from(SAMPLE_RATE);
        let total = (self.pushed * to + self.from / 2) / self.from;
        self.buf.extend(std::iter::repeat_n(0.0, taps + 2));
        self.drain(total, out);
    }

    /// Gives outputs below `limit` while their window is in `buf`, then forgets the input
    /// no later output reads.
    fn drain(&mut self, limit: u64, out: &mut Vec<f32>) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let to = u64::from(SAMPLE_RATE);
        let taps = kernel.taps as u64;
        let end = self.base + self.buf.len() as u64;
        while self.next < limit {
            let i = self.next * self.from / to;
            if i + taps > end {
                break;
            }
            let at = (i - self.base) as usize;
            let window = &self.buf[at..at + kernel.taps];
            out.push(sample_at(
                kernel,
                window,
                self.next,
                self.from,
                &mut self.blended,
            ));
            self.next += 1;
        }
        let needed = (self.next * self.from / to).min(end);
        let gone = (needed - self.base) as usize;
        self.buf.drain(..gone);
        self.base = needed;
    }
}

/// Polyphase coefficient table: row `r` holds the taps for an output that
/// falls `r / phases` of the way between two input samples. Row `phases`
/// (a whole sample) exists so interpolation between rows never wraps.
///
/// Rows are computed on first use: an odd rate (767,999 Hz) has 513 rows of
/// ~6,700 taps, each tap a Bessel series, and building them all up front cost
/// ~0.1 s and 14 MB even for a file of a few samples (96 % of the `wav` fuzz
/// target's time). Lazily, the work follows the output length and never
/// exceeds the full table; the coefficients are the same.
struct Kernel {
    /// Taps per side; each row has `2 * half` taps.
    half: usize,
    taps: usize,
    phases: u64,
    /// Cutoff (cycles per input sample) and half-length (input samples).
    cutoff: f64,
    reach: f64,
    /// Row `r`, or empty until [`Kernel::compute`] fills it.
    rows: Vec<Vec<f32>>,
}

impl Kernel {
    fn new(from_rate: u32) -> Kernel {
        let from = u64::from(from_rate);
        let to = u64::from(SAMPLE_RATE);
        // Cutoff in cycles per input sample: below the lower of the two
        // Nyquist frequencies (anti-aliasing down, anti-imaging up).
        let cutoff = 0.5 * ROLLOFF * (to.min(from) as f64 / from as f64);
        let reach = ZERO_CROSSINGS / (2.0 * cutoff); // kernel half-length, input samples
        let half = reach.ceil() as usize + 1;
        let taps = 2 * half;
        let exact_phases = to / gcd(from, to);
        let phases = exact_phases.min(MAX_PHASES);
        Kernel {
            half,
            taps,
            phases,
            cutoff,
            reach,
            rows: vec![Vec::new(); phases as usize + 1],
        }
    }

    /// Fills row `r` if it is not yet.
    fn compute(&mut self, r: usize) {
        if !self.rows[r].is_empty() {
            return;
        }
        let i0_beta = bessel_i0(KAISER_BETA);
        let phase = r as f64 / self.phases as f64;
        let row: Vec<f64> = (0..self.taps)
            .map(|k| {
                // Distance from the output instant back to tap k's input sample.
                let d = phase + (self.half - 1) as f64 - k as f64;
                windowed_sinc(d, self.cutoff, self.reach, i0_beta)
            })
            .collect();
        // Unit DC gain per row; otherwise tiny per-phase gain differences
        // would modulate loud signals at the phase-pattern rate.
        let sum: f64 = row.iter().sum();
        self.rows[r] = row.iter().map(|c| (c / sum) as f32).collect();
    }

    /// Row `r`, once [`Kernel::compute`] has filled it.
    fn row(&self, r: usize) -> &[f32] {
        &self.rows[r]
    }
}

/// Ideal low-pass impulse response at `cutoff` (cycles/sample) shaped by a
/// Kaiser window that reaches zero at ±`reach` samples.
fn windowed_sinc(d: f64, cutoff: f64, reach: f64, i0_beta: f64) -> f64 {
    let x = d / reach;
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let arg = 2.0 * cutoff * d;
    let sinc = if arg == 0.0 {
        1.0
    } else {
        (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
    };
    let window = bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / i0_beta;
    2.0 * cutoff * sinc * window
}

/// Modified Bessel function of the first kind, order 0 (power series; it
/// converges fast for the β used here).
fn bessel_i0(x: f64) -> f64 {
    let quarter_sq = x * x / 4.0;
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-12 {
        term *= quarter_sq / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Dot product with eight independent accumulators: float addition is not
/// associative, so the compiler will not vectorise a single running sum.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for lane in 0..8 {
            acc[lane] += x[lane] * y[lane];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole input → [`to_8k`]; the same input in uneven pieces → [`Streaming8k`].
    fn streamed(x: &[f32], rate: u32, pieces: &[usize]) -> Vec<f32> {
        let mut r = Streaming8k::new(rate);
        let mut out = Vec::new();
        let mut at = 0;
        for &n in pieces.iter().cycle() {
            if at >= x.len() {
                break;
            }
            let n = n.min(x.len() - at);
            r.push(&x[at..at + n], &mut out);
            at += n;
        }
        r.finish(&mut out);
        out
    }

    #[test]
    fn streaming_gives_exactly_what_the_whole_buffer_gives() {
        // A chirp plus noise-like content, at the rates browsers capture at.
        let x: Vec<f32> = (0..24_001)
            .map(|n| {
                let t = n as f32;
                0.5 * (t * t * 1e-6).sin() + 0.3 * ((n * 7919 % 1000) as f32 / 1000.0 - 0.5)
            })
            .collect();
        for rate in [48_000, 44_100, 16_000, 22_050, 8_000, 96_000, 11_025] {
            let whole = to_8k(&x, rate);
            // An AudioWorklet's 128-sample quanta, a 20 ms batch, odd sizes, one sample.
            for pieces in [&[128][..], &[960], &[1, 2, 3, 500, 7], &[1], &[24_001]] {
                let got = streamed(&x, rate, pieces);
                assert_eq!(got.len(), whole.len(), "{rate} Hz, pieces {pieces:?}");
                assert!(
                    got.iter()
                        .zip(&whole)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{rate} Hz, pieces {pieces:?}: samples differ"
                );
            }
        }
        assert!(streamed(&x, 0, &[100]).is_empty());
    }

    #[test]
    fn streaming_keeps_only_the_filter_window() {
        let mut r = Streaming8k::new(48_000);
        let mut out = Vec::new();
        for _ in 0..1000 {
            r.push(&[0.25; 960], &mut out);
        }
        // 20 s in, the kept input is about one filter length, not the whole stream.
        assert!(
            r.buf.len() < 2 * r.kernel.as_ref().unwrap().taps + 960,
            "{}",
            r.buf.len()
        );
        assert!(out.len() >= 160_000 - 200);
    }

    #[test]
    fn identity_and_degenerate_inputs() {
        let x = [0.1f32, -0.5, 0.25];
        assert_eq!(to_8k(&x, 8000), x);
        assert!(to_8k(&x, 0).is_empty());
        assert!(to_8k(&[], 44100).is_empty());
    }

    #[test]
    fn rows_have_unit_gain_and_are_symmetric() {
        for rate in [11025, 16000, 44100, 48000, 6000, 7999] {
            let mut k = Kernel::new(rate);
            for r in 0..=k.phases as usize {
                k.compute(r);
                let sum: f32 = k.row(r).iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "rate {rate} row {r} sum {sum}");
            }
            // Phase 0 is centred on tap half-1: h(d) = h(-d).
            let row = k.row(0);
            for m in 1..k.half - 1 {
                let (l, r) = (row[k.half - 1 - m], row[k.half - 1 + m]);
                assert!((l - r).abs() < 1e-6, "rate {rate} tap {m}");
            }
        }
    }

    #[test]
    fn rows_are_built_only_when_used() {
        // Regression (issue 12): the whole table was built for every input, so a few samples
        // declaring an odd, high rate cost 513 rows of ~6,700 Bessel-windowed taps.
        let k = Kernel::new(767_999);
        assert_eq!((k.phases, k.taps), (512, 6682));
        assert!(
            k.rows.iter().all(Vec::is_empty),
            "nothing is built up front"
        );
        // Fewer input samples than one output: nothing to compute at all.
        assert!(to_8k(&[0.5; 40], 767_999).is_empty());
        // 21 outputs use at most two rows each, not all 513.
        let x: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut k = Kernel::new(767_999);
        let out = resample(&x, 767_999, 21, &mut k);
        assert_eq!(out, to_8k(&x, 767_999));
        let built = k.rows.iter().filter(|r| !r.is_empty()).count();
        assert!((1..=42).contains(&built), "{built} rows built");
    }

    #[test]
    fn bessel_matches_reference() {
        // I0(1) and I0(8) from Abramowitz & Stegun tables.
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008).abs() < 1e-12);
        assert!((bessel_i0(8.0) - 427.564_115_721_804_7).abs() < 1e-8);
    }
}
