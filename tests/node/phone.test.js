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
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const audio = require('./audio');
const phoneApp = require('./phone_app');
const h = require('./phone_harness');

const CHROMIUM = '/usr/bin/chromium';
// The caller: 19.5 s of continuous speech, so whatever moment the page opens the microphone,
// speech is flowing during the call. %noloop: Chromium plays it once, then silence.
const CALLER_WAV = path.join(__dirname, '../../audio/utterances/rambling.wav');

let env; // phone_harness.start(): the app and dialtone serve
let browser;
const pageLog = [];

before(async () => {
  // 3 s of the caller before the reply: enough steady speech after the keypad.
  env = await h.start({ prefix: 'dialtone-phone-', log: (s) => pageLog.push(s), replyAfterMs: 3000 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await env?.close();
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
    httpCredentials: { username: h.AC, password: h.TOKEN }, // web auth is on by default
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.on('console', (m) => pageLog.push(`page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`page error: ${e.message}`));

  const { app, baseUrl, dir } = env;
  await page.goto(`${baseUrl}/`);
  await page
    .locator('section#phone')
    .waitFor({ timeout: 5000 })
    .catch(() => assert.fail(`the page at ${baseUrl}/ has no section#phone (the softphone)`));
  assert.match(await page.locator('section#phone').getAttribute('data-ws'), /^\/phone\/ws\?/);
  await page.selectOption('select#phone-number', h.NUMBER);
  if (await page.locator('input#phone-url').count()) await page.fill('input#phone-url', '');

  // How long this process (the app's) went without running: see checkCadence.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  await page.click('button#phone-call');
  await page.waitForFunction(() => window.dialtonePhone?.status === 'in-progress', null, { timeout: 15_000 });
  await h.wait(1000);
  for (const [i, d] of h.DIGITS.entries()) {
    if (i) await h.wait(300);
    await page.click(`button.phone-key[data-digit="${d}"]`);
  }
  const shot = process.env.PHONE_SCREENSHOT || path.join(dir, 'phone-call.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.diagnostic(`screenshot of the page during the call: ${shot}`);
  console.log(`phone test screenshot: ${shot}`);

  // The app hangs up through REST once its reply's mark came back and the digits arrived.
  await h.within(app.done, 25_000, 'the media stream to the app to close');
  await page.waitForFunction(() => window.dialtonePhone?.status === 'completed', null, { timeout: 10_000 });
  loopDelay.disable();

  const ui = await page.evaluate(h.readPage);
  const obs = app.obs;
  t.diagnostic(`observed: ${JSON.stringify(h.report(ui, obs))}`);
  h.checkCall(ui, obs);

  // (a) The caller's speech reached the app: aligned with the WAV (its first second and the
  // keypad's moments left out, see analysisMask), and framed the way Twilio frames it: 20 ms apart, consecutive.
  h.checkCadence(t, obs, loopDelay);
  const inbound = phoneApp.inboundAudio(obs);
  const shotDir = path.dirname(shot);
  fs.writeFileSync(path.join(shotDir, 'phone-inbound.wav'), audio.writeWav(inbound, 8000));
  t.diagnostic(`the caller audio the app received: ${path.join(shotDir, 'phone-inbound.wav')}`);
  const heard = audio.align(h.wav8k(CALLER_WAV), inbound, 8000, {
    weights: phoneApp.analysisMask(obs),
    minSpeech: 1.5,
  });
  t.diagnostic(`caller audio at the app: ${JSON.stringify(heard)}`);
  assert.ok(heard, 'no alignment with 1.5 s of speech in the caller audio the app received');
  assert.ok(heard.corr >= 0.9, `caller audio correlation ${heard.corr}`);
  assert.ok(heard.speechSeconds >= 1.5, `only ${heard.speechSeconds} s of speech compared`);

  // (b) The page played the app's reply, all of it (the mark came back).
  h.checkReply(t, ui, obs, path.join(shotDir, 'phone-played.wav'));

  // (c) The keypad.
  h.checkDigits(obs);

  // (d) The REST API knows the call, through the official client.
  await h.checkRest(baseUrl, ui.callSid);
}
