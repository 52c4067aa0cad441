// Audio helpers for the phone test and its voice app: WAV files, G.711 μ-law, resampling
// (windowed sinc), and alignment of two recordings by normalized cross-correlation (FFT for
// the search, then an exact masked correlation refined to a fraction of a sample).
'use strict';

// --- WAV ---------------------------------------------------------------------------------

/** Reads a RIFF WAV (PCM 8/16/24/32-bit or IEEE float 32-bit); returns the first channel as
 * floats in [-1, 1] with its sample rate. */
function readWav(buf) {
  if (buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let fmt = null;
  let data = null;
  for (let off = 12; off + 8 <= buf.length; ) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = buf.subarray(off + 8, Math.min(buf.length, off + 8 + size));
    if (id === 'fmt ') {
      let format = body.readUInt16LE(0);
      if (format === 0xfffe && body.length >= 26) format = body.readUInt16LE(24); // EXTENSIBLE
      fmt = { format, channels: body.readUInt16LE(2), rate: body.readUInt32LE(4), bits: body.readUInt16LE(14) };
    } else if (id === 'data') {
      data = body;
    }
    off += 8 + size + (size & 1);
  }
  if (!fmt || !data) throw new Error('WAV without fmt or data chunk');
  const width = fmt.bits / 8;
  const frame = width * fmt.channels;
  const n = Math.floor(data.length / frame);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * frame;
    let v;
    if (fmt.format === 3 && fmt.bits === 32) v = data.readFloatLE(o);
    else if (fmt.format !== 1) throw new Error(`unsupported WAV format ${fmt.format}`);
    else if (fmt.bits === 16) v = data.readInt16LE(o) / 32768;
    else if (fmt.bits === 8) v = (data[o] - 128) / 128;
    else if (fmt.bits === 24) v = data.readIntLE(o, 3) / 8388608;
    else if (fmt.bits === 32) v = data.readInt32LE(o) / 2147483648;
    else throw new Error(`unsupported WAV bit depth ${fmt.bits}`);
    out[i] = v;
  }
  return { rate: fmt.rate, samples: out };
}

/** A mono 16-bit PCM WAV of `samples` (floats in [-1, 1], clipped). */
function writeWav(samples, rate) {
  const n = samples.length;
  const buf = Buffer.alloc(44 + 2 * n);
  buf.write('RIFF', 0, 'latin1');
  buf.writeUInt32LE(36 + 2 * n, 4);
  buf.write('WAVEfmt ', 8, 'latin1');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'latin1');
  buf.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(toInt16(samples[i]), 44 + 2 * i);
  return buf;
}

function toInt16(v) {
  return Math.max(-32768, Math.min(32767, Math.round(v * 32768)));
}

// --- G.711 μ-law -------------------------------------------------------------------------

/** One μ-law byte to a 16-bit linear sample (ITU-T G.711). */
function ulawToLinear(u) {
  u = ~u & 0xff;
  let t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

/** One 16-bit linear sample to a μ-law byte (ITU-T G.711, with the usual 32635 clip). */
function linearToUlaw(s) {
  const sign = s < 0 ? 0x80 : 0;
  let m = Math.min(sign ? -s : s, 32635) + 0x84;
  let exp = 7;
  for (let mask = 0x4000; (m & mask) === 0 && exp > 0; exp--, mask >>= 1);
  const mant = (m >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

/** μ-law bytes to floats in [-1, 1]. */
function decodeUlaw(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = ulawToLinear(bytes[i]) / 32768;
  return out;
}

/** Floats in [-1, 1] to μ-law bytes. */
function encodeUlaw(samples) {
  const out = Buffer.alloc(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = linearToUlaw(toInt16(samples[i]));
  return out;
}

// --- resampling --------------------------------------------------------------------------

const HALF_TAPS = 16; // zero crossings of the sinc on each side, at the lower of the two rates

/** The taps of a Blackman-windowed sinc low-passed at `fc` (a fraction of the input's Nyquist
 * frequency, ≤ 1) for the value at `frac` (0 ≤ frac < 1) past an input sample: taps[j] weighs
 * x[floor(t) − lo + j]. */
function kernel(frac, fc, half) {
  const lo = Math.floor(half) - 1;
  const taps = new Float64Array(2 * lo + 2);
  for (let j = 0; j < taps.length; j++) {
    const d = frac + lo - j; // t − k
    if (Math.abs(d) >= half) continue;
    const a = Math.PI * fc * d;
    const sinc = d === 0 ? 1 : Math.sin(a) / a;
    const w = 0.42 + 0.5 * Math.cos((Math.PI * d) / half) + 0.08 * Math.cos((2 * Math.PI * d) / half);
    taps[j] = fc * sinc * w;
  }
  return { lo, taps };
}

function applyKernel(x, base, { lo, taps }) {
  let acc = 0;
  const start = base - lo;
  const j0 = Math.max(0, -start);
  const j1 = Math.min(taps.length, x.length - start);
  for (let j = j0; j < j1; j++) acc += x[start + j] * taps[j];
  return acc;
}

/** `x` at rate `from` resampled to rate `to` (anti-aliased when going down). */
function resample(x, from, to) {
  if (from === to) return Float32Array.from(x);
  const fc = Math.min(1, to / from);
  const half = HALF_TAPS / fc;
  const n = Math.floor((x.length * to) / from);
  const out = new Float32Array(n);
  const kernels = new Map(); // one per phase: the ratio is rational, so phases repeat
  for (let i = 0; i < n; i++) {
    const pos = i * from;
    const base = Math.floor(pos / to);
    const rem = pos - base * to;
    let k = kernels.get(rem);
    if (!k) kernels.set(rem, (k = kernel(rem / to, fc, half)));
    out[i] = applyKernel(x, base, k);
  }
  return out;
}

/** `x` delayed by −frac samples: out[i] = x(i + frac), band-limited. */
function shift(x, frac) {
  const base0 = Math.floor(frac);
  const k = kernel(frac - base0, 1, 8);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = applyKernel(x, i + base0, k);
  return out;
}

// --- alignment ---------------------------------------------------------------------------

function fft(re, im, inverse) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = ((inverse ? 2 : -2) * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const ar = re[i + k + len / 2];
        const ai = im[i + k + len / 2];
        const tr = ar * cr - ai * ci;
        const ti = ar * ci + ai * cr;
        re[i + k + len / 2] = re[i + k] - tr;
        im[i + k + len / 2] = im[i + k] - ti;
        re[i + k] += tr;
        im[i + k] += ti;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
  if (inverse) for (let i = 0; i < n; i++) (re[i] /= n), (im[i] /= n);
}

/** c[lag + b.length - 1] = Σ_i b[i]·a[i + lag] for lag in (−b.length, a.length). */
function xcorr(a, b) {
  let n = 1;
  while (n < a.length + b.length) n <<= 1;
  const ar = new Float64Array(n);
  const ai = new Float64Array(n);
  const br = new Float64Array(n);
  const bi = new Float64Array(n);
  ar.set(a);
  // b reversed and placed so that the product's index lag + b.length − 1 is the lag.
  for (let i = 0; i < b.length; i++) br[b.length - 1 - i] = b[i];
  fft(ar, ai, false);
  fft(br, bi, false);
  for (let i = 0; i < n; i++) {
    const r = ar[i] * br[i] - ai[i] * bi[i];
    ai[i] = ar[i] * bi[i] + ai[i] * br[i];
    ar[i] = r;
  }
  fft(ar, ai, true);
  return ar.subarray(0, a.length + b.length - 1);
}

/** Per-sample speech activity of `x`: 1 inside 20 ms frames whose RMS is above `dbfs`. */
function activity(x, rate, dbfs = -40) {
  const frame = Math.round(rate * 0.02);
  const thr = 10 ** (dbfs / 20);
  const act = new Float32Array(x.length);
  for (let s = 0; s < x.length; s += frame) {
    let e = 0;
    const end = Math.min(x.length, s + frame);
    for (let i = s; i < end; i++) e += x[i] * x[i];
    if (Math.sqrt(e / (end - s)) > thr) act.fill(1, s, end);
  }
  return act;
}

/**
 * Where `sig` sits in `ref` (both at `rate`): the lag L (fractional) maximizing the normalized
 * correlation Σ w·sig[i]·ref[i+L] / √(Σ w·sig² · Σ w·ref²) over their overlap, `weights`
 * (0/1 per sig sample, default all 1) excluding parts of sig. Only lags whose overlap holds at
 * least `minSpeech` seconds of speech in ref count. Returns {lag (samples), seconds (lag /
 * rate), corr, speechSeconds, overlapSeconds}, or null when no lag qualifies.
 */
function align(ref, sig, rate, { weights = null, minSpeech = 1.0, candidates = 5 } = {}) {
  const w = weights || new Float32Array(sig.length).fill(1);
  const sw = new Float32Array(sig.length);
  const s2w = new Float32Array(sig.length);
  for (let i = 0; i < sig.length; i++) (sw[i] = sig[i] * w[i]), (s2w[i] = sig[i] * sig[i] * w[i]);
  const ref2 = new Float32Array(ref.length);
  for (let i = 0; i < ref.length; i++) ref2[i] = ref[i] * ref[i];
  const act = activity(ref, rate);
  const cross = xcorr(ref, sw);
  const eRef = xcorr(ref2, w);
  const eSig = xcorr(new Float32Array(ref.length).fill(1), s2w);
  const speech = xcorr(act, w);
  const minAct = minSpeech * rate;
  const top = []; // the `candidates` best [score, lag], best first
  for (let k = 0; k < cross.length; k++) {
    if (speech[k] < minAct - 0.5) continue;
    const den = Math.sqrt(eRef[k] * eSig[k]);
    if (!(den > 1e-9)) continue;
    const score = cross[k] / den;
    if (top.length === candidates && score <= top[top.length - 1][0]) continue;
    top.push([score, k - (sig.length - 1)]);
    top.sort((a, b) => b[0] - a[0]);
    if (top.length > candidates) top.pop();
  }
  if (!top.length) return null;
  let best = null;
  for (const [, lag] of top) {
    for (let f = -0.5; f <= 0.5001; f += 0.05) {
      const r = exactCorr(ref, sig, w, lag + f);
      if (!best || r.corr > best.corr) best = { lag: lag + f, ...r };
    }
  }
  let sp = 0;
  let ov = 0;
  const l = Math.round(best.lag);
  for (let i = 0; i < sig.length; i++) {
    const j = i + l;
    if (j < 0 || j >= ref.length || !w[i]) continue;
    ov++;
    sp += act[j];
  }
  return {
    lag: best.lag,
    seconds: best.lag / rate,
    corr: best.corr,
    speechSeconds: sp / rate,
    overlapSeconds: ov / rate,
  };
}

function exactCorr(ref, sig, w, lag) {
  const whole = Math.floor(lag);
  // Only the part of ref that sig overlaps, shifted by the fractional part.
  const from = Math.max(0, whole - 1);
  const to = Math.min(ref.length, whole + sig.length + 2);
  if (to <= from) return { corr: 0 };
  const part = shift(ref.subarray(from, to), lag - whole);
  let sr = 0;
  let ss = 0;
  let rr = 0;
  for (let i = 0; i < sig.length; i++) {
    const j = i + whole - from;
    if (!w[i] || j < 0 || j >= part.length || i + whole >= ref.length) continue;
    const r = part[j];
    sr += sig[i] * r;
    ss += sig[i] * sig[i];
    rr += r * r;
  }
  return { corr: ss > 0 && rr > 0 ? sr / Math.sqrt(ss * rr) : 0 };
}

// --- statistics --------------------------------------------------------------------------

/** The q-quantile (0..1) of numbers, nearest rank. */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** RMS of floats. */
function rms(x) {
  let e = 0;
  for (const v of x) e += v * v;
  return x.length ? Math.sqrt(e / x.length) : 0;
}

module.exports = {
  readWav,
  writeWav,
  ulawToLinear,
  linearToUlaw,
  decodeUlaw,
  encodeUlaw,
  resample,
  shift,
  xcorr,
  activity,
  align,
  quantile,
  rms,
};
