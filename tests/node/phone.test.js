// The web page's softphone, end to end, in headless Chromium: the browser's fake microphone
// plays a speech recording, the page calls a hosted number whose voice app (phone_app.js)
// streams the call, and the test checks that
//   (a) the app heard the recording (correlation ≥ 0.9 after alignment) at a 20 ms cadence,
//   (b) the page played the app's reply,
//   (c) the keypad's digits reached the app as `dtmf`,
//   (d) the call is in the REST API's call list, completed.
// A screenshot of the page mid-call is written to $PHONE_SCREENSHOT (default: a temp file).
// Needs Debian's chromium at /usr/bin/chromium (scripts/test installs it); playwright-core
// only drives it, it never downloads a browser.
// Run with: DIALTONE_BIN=target/debug/dialtone node --test tests/node
'use strict';

const { test, before, after } = require('node:test');
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
const CHROMIUM = '/usr/bin/chromium';
const AC = 'AC' + '7'.repeat(32);
const TOKEN = 'node-phone-token-456';
const NUMBER = '+15005550042'; // hosted by dialtone serve, routed to phone_app.js
const AUDIO = path.join(__dirname, '../../audio/utterances');
// The caller: 19.5 s of continuous speech, so whatever moment the page opens the microphone,
// speech is flowing during the call. %noloop: Chromium plays it once, then silence.
const CALLER_WAV = path.join(AUDIO, 'rambling.wav');
// The app's reply: another voice, "Sorry, could you repeat that?" (2.3 s).
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

let dir;
let app;
let server;
let baseUrl;
let browser;
const pageLog = [];

function wav8k(file) {
  const { rate, samples } = audio.readWav(fs.readFileSync(file));
  return audio.resample(samples, rate, 8000);
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialtone-phone-'));
  app = await phoneApp.start({
    accountSid: AC,
    authToken: TOKEN,
    reply: wav8k(REPLY_WAV),
    replyAfterMs: 3000, // 3 s of the caller first: enough steady speech after the keypad
    expectDigits: DIGITS.length,
    hangupAfterMs: 20_000,
    log: (s) => pageLog.push(`app: ${s}`),
  });
  const cfg = path.join(dir, 'dialtone.toml');
  fs.writeFileSync(
    cfg,
    `ring_ms = 200\n[[accounts]]\nsid = "${AC}"\nauth_token = "${TOKEN}"\n` +
      `[[numbers]]\nphone_number = "${NUMBER}"\nfriendly_name = "Phone test app"\nvoice_url = "${app.url}"\n`,
  );
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TWILIO_') && !k.startsWith('DIALTONE_')),
  );
  server = spawn(BIN, ['serve', '--port', '0', '--config', cfg], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise((resolve, reject) => {
    readline.createInterface({ input: server.stdout }).once('line', resolve);
    server.once('exit', (code) => reject(new Error(`dialtone serve exited with ${code}`)));
  });
  assert.match(first, /^dialtone serve listening on http:\/\/127\.0\.0\.1:\d+$/);
  baseUrl = first.split(' ').pop();
  app.setApiBaseUrl(baseUrl);
});

after(async () => {
  await browser?.close().catch(() => {});
  server?.kill('SIGTERM');
  await app?.close();
});

test('the softphone calls a voice app from headless Chromium', { timeout: 60_000 }, async (t) => {
  try {
    await callFromThePage(t);
  } catch (e) {
    // What the page and the app said, to tell a page bug from a server or app one.
    for (const l of pageLog) t.diagnostic(l);
    throw e;
  }
  if (process.env.PHONE_VERBOSE) for (const l of pageLog) t.diagnostic(l);
});

async function callFromThePage(t) {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; scripts/test does it)`,
  );
  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${CALLER_WAV}%noloop`,
    ],
  });
  const context = await browser.newContext({
    httpCredentials: { username: AC, password: TOKEN }, // web auth is on by default
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.on('console', (m) => pageLog.push(`page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`page error: ${e.message}`));

  await page.goto(`${baseUrl}/`);
  await page
    .locator('section#phone')
    .waitFor({ timeout: 5000 })
    .catch(() => assert.fail(`the page at ${baseUrl}/ has no section#phone (the softphone)`));
  assert.match(await page.locator('section#phone').getAttribute('data-ws'), /^\/phone\/ws\?/);
  await page.selectOption('select#phone-number', NUMBER);
  if (await page.locator('input#phone-url').count()) await page.fill('input#phone-url', '');

  await page.click('button#phone-call');
  await page.waitForFunction(() => window.dialtonePhone?.status === 'in-progress', null, { timeout: 15_000 });
  await wait(1000);
  for (const [i, d] of DIGITS.entries()) {
    if (i) await wait(300);
    await page.click(`button.phone-key[data-digit="${d}"]`);
  }
  const shot = process.env.PHONE_SCREENSHOT || path.join(dir, 'phone-call.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.diagnostic(`screenshot of the page during the call: ${shot}`);
  console.log(`phone test screenshot: ${shot}`);

  // The app hangs up through REST once its reply's mark came back and the digits arrived.
  await within(app.done, 25_000, 'the media stream to the app to close');
  await page.waitForFunction(() => window.dialtonePhone?.status === 'completed', null, { timeout: 10_000 });

  const ui = await page.evaluate(() => {
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
  });
  const obs = app.obs;
  const report = {
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
  t.diagnostic(`observed: ${JSON.stringify(report)}`);

  // Every request dialtone made to the app was signed for its public URL.
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

  // (a) The caller's speech reached the app: aligned with the WAV (its first second and the
  // keypad's moments left out, see analysisMask), and framed the way Twilio frames it: 20 ms apart, consecutive.
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
  assert.ok(cad.p99Ms < 40, `p99 interval between frames ${cad.p99Ms} ms`);
  const inbound = phoneApp.inboundAudio(obs);
  const shotDir = path.dirname(shot);
  fs.writeFileSync(path.join(shotDir, 'phone-inbound.wav'), audio.writeWav(inbound, 8000));
  t.diagnostic(`the caller audio the app received: ${path.join(shotDir, 'phone-inbound.wav')}`);
  const heard = audio.align(wav8k(CALLER_WAV), inbound, 8000, {
    weights: phoneApp.analysisMask(obs),
    minSpeech: 1.5,
  });
  t.diagnostic(`caller audio at the app: ${JSON.stringify(heard)}`);
  assert.ok(heard, 'no alignment with 1.5 s of speech in the caller audio the app received');
  assert.ok(heard.corr >= 0.9, `caller audio correlation ${heard.corr}`);
  assert.ok(heard.speechSeconds >= 1.5, `only ${heard.speechSeconds} s of speech compared`);

  // (b) The page played the app's reply, all of it (the mark came back).
  assert.ok(obs.marks.some((m) => m.name === obs.reply?.mark), 'the reply mark came back');
  assert.ok(ui.playedSamples > 0, 'playedSamples');
  const pb = Buffer.from(ui.played, 'base64');
  const played = new Float32Array(pb.length / 2);
  for (let i = 0; i < played.length; i++) played[i] = pb.readInt16LE(2 * i) / 32768;
  fs.writeFileSync(path.join(shotDir, 'phone-played.wav'), audio.writeWav(played, 8000));
  const reply = audio.align(played, wav8k(REPLY_WAV), 8000, { minSpeech: 1.0 });
  t.diagnostic(`reply in the page's playback: ${JSON.stringify(reply)}`);
  assert.ok(reply, "the app's reply is not in the page's playback");
  assert.ok(reply.corr >= 0.9, `reply correlation ${reply.corr}`);

  // (c) The keypad.
  assert.deepEqual(
    obs.dtmf.map((d) => d.digit),
    DIGITS,
  );

  // (d) The REST API knows the call, through the official client.
  const client = twilio(AC, TOKEN);
  client.api.baseUrl = baseUrl;
  const calls = await client.calls.list({ limit: 50 });
  const call = calls.find((c) => c.sid === ui.callSid);
  assert.ok(call, `${ui.callSid} not in the call list (${calls.map((c) => c.sid)})`);
  assert.equal(call.status, 'completed');
  assert.equal(call.to, NUMBER);
}
