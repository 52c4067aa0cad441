// What the browser softphone tests (phone.test.js in Chromium, phone_firefox.test.js in
// Firefox) share: `dialtone serve` with a hosted number routed to the voice app (phone_app.js),
// the page's state read back from window.dialtonePhone, and the checks that do not depend on
// what the microphone played: the app's observations, the 20 ms cadence of what it received,
// the page's playback of its reply, the keypad's digits and the call in the REST API.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const twilio = require('twilio');
const audio = require('./audio');
const phoneApp = require('./phone_app');

const BIN = process.env.DIALTONE_BIN || path.join(__dirname, '../../target/debug/dialtone');
const AC = 'AC' + '7'.repeat(32);
const TOKEN = 'node-phone-token-456';
const NUMBER = '+15005550042'; // hosted by dialtone serve, routed to phone_app.js
const AUDIO = path.join(__dirname, '../../audio/utterances');
// The app's reply: a voice saying "Sorry, could you repeat that?" (2.3 s).
const REPLY_WAV = path.join(AUDIO, 'request_repeat.wav');
const DIGITS = ['1', '2', '#'];

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a failure saying `what` after `ms` (the timer does not outlive it). */
async function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A WAV file as 8 kHz floats. */
function wav8k(file) {
  const { rate, samples } = audio.readWav(fs.readFileSync(file));
  return audio.resample(samples, rate, 8000);
}

/**
 * Starts the voice app (phone_app.js, replying with REPLY_WAV after `replyAfterMs` of caller
 * audio, hanging up once DIGITS arrived and the reply's mark came back) and `dialtone serve`
 * (port 0, web auth on) hosting NUMBER for it. Returns {dir, app, baseUrl, close()}; every
 * line `log` gets is worth printing when the test fails.
 */
async function start({ prefix, log, replyAfterMs = 3000, hangupAfterMs = 20_000 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const h = { dir, app: null, server: null, baseUrl: null };
  h.close = async () => {
    h.server?.kill('SIGTERM');
    await h.app?.close();
  };
  try {
    h.app = await phoneApp.start({
      accountSid: AC,
      authToken: TOKEN,
      reply: wav8k(REPLY_WAV),
      replyAfterMs,
      expectDigits: DIGITS.length,
      hangupAfterMs,
      log: (s) => log(`app: ${s}`),
    });
    const cfg = path.join(dir, 'dialtone.toml');
    fs.writeFileSync(
      cfg,
      `ring_ms = 200\n[[accounts]]\nsid = "${AC}"\nauth_token = "${TOKEN}"\n` +
        `[[numbers]]\nphone_number = "${NUMBER}"\nfriendly_name = "Phone test app"\nvoice_url = "${h.app.url}"\n`,
    );
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('TWILIO_') && !k.startsWith('DIALTONE_')),
    );
    h.server = spawn(BIN, ['serve', '--port', '0', '--config', cfg], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const first = await new Promise((resolve, reject) => {
      readline.createInterface({ input: h.server.stdout }).once('line', resolve);
      h.server.once('error', reject);
      h.server.once('exit', (code) => reject(new Error(`dialtone serve exited with ${code}`)));
    });
    assert.match(first, /^dialtone serve listening on http:\/\/127\.0\.0\.1:\d+$/);
    h.baseUrl = first.split(' ').pop();
    h.app.setApiBaseUrl(h.baseUrl);
    return h;
  } catch (e) {
    await h.close();
    throw e;
  }
}

/** Runs in the page (page.evaluate, Playwright's or Puppeteer's): the softphone's state and
 * what it played, base64 Int16LE at 8 kHz. */
function readPage() {
  const p = window.dialtonePhone;
  const pcm = p.played();
  const bytes = new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return {
    status: p.status,
    callSid: p.callSid,
    steps: p.steps,
    sentSamples: p.sentSamples,
    playedSamples: p.playedSamples,
    played: btoa(bin),
    statusText: document.querySelector('#phone-status')?.textContent.trim(),
    sidText: document.querySelector('#phone-sid')?.textContent.trim(),
    timelineItems: document.querySelectorAll('ol#phone-timeline li').length,
  };
}

/** A summary of what the page and the app saw, for the test's diagnostics. */
function report(ui, obs) {
  return {
    page: { ...ui, played: `${Buffer.from(ui.played, 'base64').length / 2} samples`, steps: ui.steps?.length },
    app: {
      callSid: obs.callSid,
      webhooks: obs.webhooks.length,
      upgrades: obs.upgrades.length,
      invalid: obs.invalid,
      media: obs.media.length,
      dtmf: obs.dtmf.map((d) => d.digit),
      marks: obs.marks.map((m) => m.name),
      hangup: obs.hangup,
      stop: !!obs.stop,
      errors: obs.errors,
    },
  };
}

/** The call went through: signed requests, the page's call is the app's stream, the app hung
 * up through REST, the page shows the end and its timeline, the microphone was sent. */
function checkCall(ui, obs) {
  assert.deepEqual(obs.invalid, [], 'requests with an invalid X-Twilio-Signature');
  assert.ok(obs.webhooks.length >= 1 && obs.upgrades.length >= 1, 'the webhook and the stream upgrade');
  assert.deepEqual(obs.errors, []);
  assert.match(ui.callSid, /^CA[0-9a-f]{32}$/);
  assert.equal(obs.callSid, ui.callSid, "the app streams the page's call");
  assert.equal(obs.hangup?.status, 'completed', `the app's REST hang-up: ${JSON.stringify(obs.hangup)}`);
  assert.notEqual(obs.hangup.why, 'timeout', 'the app hung up only because it waited too long');
  assert.equal(ui.statusText, 'completed');
  assert.equal(ui.sidText, ui.callSid);
  assert.ok(ui.timelineItems >= 1 && ui.steps.length >= 1, 'the call timeline');
  assert.ok(ui.sentSamples > 0, 'the page sent microphone audio');
}

/** The caller's audio reached the app framed the way Twilio frames it: 160 μ-law bytes every
 * 20 ms, timestamps 20 ms apart, consecutive chunks and sequence numbers. Arrival times are
 * taken in this process (the app's), so its own event-loop delay during the call
 * (`loopDelay`, a monitorEventLoopDelay histogram) is measurement error, not dialtone's: the
 * p99 bound allows for it. */
function checkCadence(t, obs, loopDelay) {
  const cad = phoneApp.cadence(obs);
  t.diagnostic(`inbound cadence: ${JSON.stringify(cad)}`);
  assert.ok(cad.frames >= 100, `only ${cad.frames} inbound media frames`);
  assert.deepEqual(cad.tracks, ['inbound']);
  assert.deepEqual(cad.badFrameSizes, [], 'every frame is 160 μ-law bytes');
  assert.deepEqual(cad.badTimestampSteps, [], 'media timestamps step by 20 ms');
  assert.deepEqual(cad.badChunkSteps, [], 'media chunks are consecutive');
  assert.equal(cad.firstChunk, 1);
  assert.deepEqual(cad.seqGaps, [], 'sequence numbers are consecutive');
  assert.ok(Math.abs(cad.medianMs - 20) <= 2, `median interval between frames ${cad.medianMs} ms`);
  const ownDelayMs = loopDelay.percentile(99) / 1e6;
  t.diagnostic(`this process's event-loop delay during the call: max ${(loopDelay.max / 1e6).toFixed(1)} ms, p99 ${ownDelayMs.toFixed(1)} ms`);
  assert.ok(
    cad.p99Ms < 40 + ownDelayMs,
    `p99 interval between frames ${cad.p99Ms} ms (this process's own p99 delay ${ownDelayMs.toFixed(1)} ms)`,
  );
}

/** The page played the app's reply, all of it (the mark came back); its playback is written
 * to `wavPath`. */
function checkReply(t, ui, obs, wavPath) {
  assert.ok(obs.marks.some((m) => m.name === obs.reply?.mark), 'the reply mark came back');
  assert.ok(ui.playedSamples > 0, 'playedSamples');
  const pb = Buffer.from(ui.played, 'base64');
  const played = new Float32Array(pb.length / 2);
  for (let i = 0; i < played.length; i++) played[i] = pb.readInt16LE(2 * i) / 32768;
  fs.writeFileSync(wavPath, audio.writeWav(played, 8000));
  const reply = audio.align(played, wav8k(REPLY_WAV), 8000, { minSpeech: 1.0 });
  t.diagnostic(`reply in the page's playback (${wavPath}): ${JSON.stringify(reply)}`);
  assert.ok(reply, "the app's reply is not in the page's playback");
  if (reply.corr < 0.9) {
    // Where each half of the reply sits: two lags 160 samples apart are a 20 ms slot of
    // silence dialtone inserted (or a frame it dropped) between what the app sent and the page.
    const ref = wav8k(REPLY_WAV);
    const half = Math.floor(ref.length / 2);
    const parts = [ref.subarray(0, half), ref.subarray(half)].map((seg, i) => {
      const r = audio.align(played, seg, 8000, { minSpeech: 0.3 });
      return r && { lag: r.lag - i * half, corr: Number(r.corr.toFixed(4)) };
    });
    assert.fail(`reply correlation ${reply.corr}; the reply's halves: ${JSON.stringify(parts)}`);
  }
}

/** The keypad's digits reached the app as `dtmf`, in order. */
function checkDigits(obs) {
  assert.deepEqual(
    obs.dtmf.map((d) => d.digit),
    DIGITS,
  );
}

/** The REST API knows the call, completed, through the official client. */
async function checkRest(baseUrl, callSid) {
  const client = twilio(AC, TOKEN);
  client.api.baseUrl = baseUrl;
  const calls = await client.calls.list({ limit: 50 });
  const call = calls.find((c) => c.sid === callSid);
  assert.ok(call, `${callSid} not in the call list (${calls.map((c) => c.sid)})`);
  assert.equal(call.status, 'completed');
  assert.equal(call.to, NUMBER);
}

module.exports = {
  AC,
  TOKEN,
  NUMBER,
  DIGITS,
  REPLY_WAV,
  wait,
  within,
  wav8k,
  start,
  readPage,
  report,
  checkCall,
  checkCadence,
  checkReply,
  checkDigits,
  checkRest,
};
