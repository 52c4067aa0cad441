// The web page's softphone, end to end, in headless Firefox (Debian's firefox-esr, driven by
// puppeteer-core over WebDriver BiDi; it never downloads a browser). Firefox's fake
// microphone is a steady sine (media.navigator.audio.fake_frequency, 1000 Hz by default, set
// here anyway); the page calls a hosted number whose voice app (phone_app.js) streams the
// call, and the test checks that
//   (a) the app heard the tone at a 20 ms cadence (a sine of that frequency correlates ≥ 0.9
//       with what it received, after alignment, over ≥ 1 s),
//   (b) the page played the app's reply,
//   (c) the keypad's digits reached the app as `dtmf`,
//   (d) the call is in the REST API's call list, completed.
// The page's HTTP Basic auth is answered with page.authenticate() (BiDi's authRequired
// intercept).
//
// Firefox needs an audio output to run an AudioContext: without one (no sound card, no sound
// server, as on a CI machine) ctx.resume() never settles and the page stays "connecting".
// Its mock backend (media.cubeb.force_mock_context) runs ~7% slower than real time (it sleeps
// 10 ms after each 10 ms of audio), which would starve dialtone's jitter buffer, so the test
// starts its own PulseAudio with a null sink (clocked in real time, like a sound card) on a
// private socket and points Firefox at it (PULSE_SERVER).
// Needs /usr/bin/firefox-esr and pulseaudio (scripts/test installs both).
// Run with: DIALTONE_BIN=target/debug/dialtone node --test tests/node
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const path = require('node:path');
const audio = require('./audio');
const phoneApp = require('./phone_app');
const h = require('./phone_harness');

const FIREFOX = '/usr/bin/firefox-esr';
const TONE_HZ = 1000; // Firefox's default fake_frequency, pinned below

// A closed network: nothing but 127.0.0.1. Puppeteer's own profile already turns off updates,
// Normandy/Shield, safe-browsing lists, the add-on and blocklist services and health reports;
// these close the rest (telemetry, captive-portal and connectivity probes, region and DoH
// lookups, speculative connections, remote settings, GMP/OpenH264 downloads).
const PREFS = {
  // The fake microphone (a sine, no permission prompt) and playback without a user gesture.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.navigator.audio.fake_frequency': TONE_HZ,
  'media.autoplay.default': 0, // allow audible autoplay
  'media.autoplay.blocking_policy': 0,
  'media.cubeb.backend': 'pulse', // the test's PulseAudio (PULSE_SERVER), nothing else
  // Loopback only.
  'network.proxy.type': 0,
  'network.dns.disableIPv6': true,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'network.http.speculative-parallel-limit': 0,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.trr.mode': 5, // no DNS over HTTPS
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'browser.search.geoSpecificDefaults': false,
  'browser.safebrowsing.update.enabled': false,
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.google.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'app.update.enabled': false,
  'app.update.auto': false,
  'app.normandy.enabled': false,
  'app.shield.optoutstudies.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.server': '',
  'toolkit.coverage.opt-out': true,
  'browser.ping-centre.telemetry': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.newtabpage.activity-stream.telemetry': false,
  'browser.discovery.enabled': false,
  'extensions.blocklist.enabled': false,
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-widevinecdm.enabled': false,
  'media.gmp-manager.url': '',
  'messaging-system.rsexperimentloader.enabled': false,
  'services.settings.server': 'http://127.0.0.1:9/',
  'security.OCSP.enabled': 0,
  'security.remote_settings.crlite_filters.enabled': false,
  'security.remote_settings.intermediates.enabled': false,
};

let env; // phone_harness.start(): the app and dialtone serve
let pulse; // the test's PulseAudio
let browser;
const pageLog = [];

before(async () => {
  env = await h.start({ prefix: 'dialtone-phone-ff-', log: (s) => pageLog.push(s), replyAfterMs: 3000 });
});

after(async () => {
  await browser?.close().catch(() => {});
  if (pulse && pulse.exitCode === null) {
    pulse.kill('SIGTERM');
    await h.within(new Promise((r) => pulse.once('exit', r)), 3000, 'pulseaudio to exit').catch(() => pulse.kill('SIGKILL'));
  }
  await env?.close();
});

/** PulseAudio with only a null sink, on a socket in `dir` (its home and runtime dir too, so
 * nothing outside it is read or written); resolves with PULSE_SERVER's value once it
 * answers. */
async function startPulse(dir, log) {
  const bin = spawnSync('sh', ['-c', 'command -v pulseaudio'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(bin, 'pulseaudio is missing: install it (apt-get install pulseaudio; scripts/test does it)');
  const run = path.join(dir, 'pulse');
  fs.mkdirSync(run, { mode: 0o700 });
  const socket = path.join(run, 'native');
  const penv = { ...process.env, HOME: run, XDG_RUNTIME_DIR: run, PULSE_RUNTIME_PATH: run, PULSE_STATE_PATH: run };
  delete penv.PULSE_SERVER;
  delete penv.DBUS_SESSION_BUS_ADDRESS;
  pulse = spawn(
    bin,
    [
      '--daemonize=no',
      '-n', // no default.pa: no hardware detection, no other modules
      '--exit-idle-time=-1',
      '--use-pid-file=no',
      '--log-target=stderr',
      '--log-level=error',
      '--load=module-null-sink sink_name=dialtone_test rate=48000',
      `--load=module-native-protocol-unix socket=${socket} auth-anonymous=1`,
    ],
    { env: penv, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  readlineLines(pulse.stderr, (l) => log(`pulseaudio: ${l}`));
  const exited = new Promise((_, reject) => pulse.once('exit', (c) => reject(new Error(`pulseaudio exited with ${c}`))));
  const ready = (async () => {
    while (!fs.existsSync(socket)) await h.wait(50);
  })();
  await h.within(Promise.race([ready, exited]), 5000, `pulseaudio's socket ${socket}`);
  return `unix:${socket}`;
}

function readlineLines(stream, f) {
  require('node:readline').createInterface({ input: stream }).on('line', f);
}

test('the softphone calls a voice app from headless Firefox', { timeout: 60_000 }, async (t) => {
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
    fs.existsSync(FIREFOX),
    `${FIREFOX} is missing: install Debian's firefox-esr (apt-get install firefox-esr; scripts/test does it)`,
  );
  const { app, baseUrl, dir } = env;
  const pulseServer = await startPulse(dir, (l) => pageLog.push(l));
  const puppeteer = require('puppeteer-core');
  browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: PREFS,
    env: { ...process.env, PULSE_SERVER: pulseServer },
    timeout: 20_000,
  });
  t.diagnostic(`browser: ${await browser.version()}`);
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (m) => pageLog.push(`page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`page error: ${e.message}`));
  await page.authenticate({ username: h.AC, password: h.TOKEN }); // web auth is on by default
  await page.setViewport({ width: 1280, height: 900 });

  const res = await page.goto(`${baseUrl}/`);
  assert.equal(res?.status(), 200, `GET ${baseUrl}/ (with the account's credentials)`);
  await page
    .waitForSelector('section#phone', { timeout: 5000 })
    .catch(() => assert.fail(`the page at ${baseUrl}/ has no section#phone (the softphone)`));
  assert.match(await page.$eval('section#phone', (s) => s.getAttribute('data-ws')), /^\/phone\/ws\?/);
  await page.select('select#phone-number', h.NUMBER);
  await page.$eval('input#phone-url', (i) => (i.value = '')).catch(() => {});

  // How long this process (the app's) went without running: a stall of 200 ms or more delays
  // the app's reply past its lead and leaves a hole in what the page plays.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  await page.click('button#phone-call');
  await page.waitForFunction(() => window.dialtonePhone?.status === 'in-progress', { timeout: 15_000 });
  await h.wait(1000);
  for (const [i, d] of h.DIGITS.entries()) {
    if (i) await h.wait(300);
    await page.click(`button.phone-key[data-digit="${d}"]`);
  }
  // The app hangs up through REST once its reply's mark came back and the digits arrived.
  await h.within(app.done, 25_000, 'the media stream to the app to close');
  await page.waitForFunction(() => window.dialtonePhone?.status === 'completed', { timeout: 10_000 });
  // After the call, not during it: a screenshot's transfer and decoding stalls this process
  // (the app's) for 100 ms and more in Firefox, which the arrival-interval checks would see.
  const shot = process.env.PHONE_SCREENSHOT || path.join(dir, 'phone-call-firefox.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.diagnostic(`screenshot of the page after the call: ${shot}`);


  loopDelay.disable();
  const ui = await page.evaluate(h.readPage);
  const obs = app.obs;
  t.diagnostic(`observed: ${JSON.stringify(h.report(ui, obs))}`);
  h.checkCall(ui, obs);

  // (a) The fake microphone's tone reached the app, framed 20 ms apart, consecutive.
  h.checkCadence(t, obs, loopDelay);
  const inbound = phoneApp.inboundAudio(obs);
  const outDir = path.dirname(shot);
  const inboundWav = path.join(outDir, 'phone-inbound-firefox.wav');
  fs.writeFileSync(inboundWav, audio.writeWav(inbound, 8000));
  const mask = phoneApp.analysisMask(obs);
  const hz = dominantHz(inbound, mask, 8000);
  t.diagnostic(`caller audio the app received (${inboundWav}): ${hz.toFixed(1)} Hz, rms ${audio.rms(inbound).toFixed(3)}`);
  assert.ok(Math.abs(hz - TONE_HZ) < 5, `the caller audio's frequency is ${hz} Hz, not the fake microphone's ${TONE_HZ}`);
  // Aligned with a sine of the tone's frequency (its phase fitted) over all of the call the
  // mask keeps: a dropped, repeated or silent slot anywhere shifts the phase after it and
  // lowers the figure; so does each 1 s window's, the worst of which is reported.
  const heard = toneCorr(inbound, mask, TONE_HZ, 8000);
  const windows = [];
  for (let at = 0; at + 8000 <= inbound.length; at += 4000) {
    const win = mask.map((v, i) => (i >= at && i < at + 8000 ? v : 0));
    const r = toneCorr(inbound, win, TONE_HZ, 8000);
    if (r.seconds >= 0.9) windows.push(r.corr);
  }
  t.diagnostic(`tone at the app: ${JSON.stringify({ ...heard, worst1s: Math.min(...windows), windows: windows.length })}`);
  assert.ok(heard.seconds >= 1.0, `only ${heard.seconds} s of the tone compared`);
  assert.ok(heard.corr >= 0.9, `tone correlation ${heard.corr} over ${heard.seconds} s`);

  // (b) The page played the app's reply, all of it (the mark came back).
  h.checkReply(t, ui, obs, path.join(outDir, 'phone-played-firefox.wav'));

  // (c) The keypad.
  h.checkDigits(obs);

  // (d) The REST API knows the call, through the official client.
  await h.checkRest(baseUrl, ui.callSid);
}

/** The normalized correlation of `x` (where `w` is 1) with a sine of `hz` at the phase that
 * fits it best: √(c² + s²) / √(Σx² · Σ(a·cos + b·sin)²/…), i.e. the cosine of the angle between
 * x and the plane of that frequency's sines. Also how many seconds were compared. */
function toneCorr(x, w, hz, rate) {
  let cc = 0;
  let ss = 0;
  let cs = 0;
  let xc = 0;
  let xs = 0;
  let xx = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    if (!w[i]) continue;
    const a = (2 * Math.PI * hz * i) / rate;
    const c = Math.cos(a);
    const s = Math.sin(a);
    cc += c * c;
    ss += s * s;
    cs += c * s;
    xc += x[i] * c;
    xs += x[i] * s;
    xx += x[i] * x[i];
    n++;
  }
  // Least squares x ≈ p·cos + q·sin; the correlation is |fit|/|x|.
  const det = cc * ss - cs * cs;
  if (!(det > 0) || !(xx > 0)) return { corr: 0, seconds: n / rate };
  const p = (xc * ss - xs * cs) / det;
  const q = (xs * cc - xc * cs) / det;
  const fit2 = p * xc + q * xs; // |projection|² = <x, fit>
  return { corr: Math.sqrt(Math.max(0, fit2) / xx), seconds: n / rate, amplitude: Math.hypot(p, q) };
}

/** The frequency (Hz, to 0.5 Hz) whose sine and cosine project most on `x` where `w` is 1. */
function dominantHz(x, w, rate) {
  const power = (f) => {
    let c = 0;
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      if (!w[i]) continue;
      const a = (2 * Math.PI * f * i) / rate;
      c += x[i] * Math.cos(a);
      s += x[i] * Math.sin(a);
    }
    return c * c + s * s;
  };
  let best = [0, -1];
  const search = (from, to, step) => {
    for (let f = from; f <= to; f += step) {
      const p = power(f);
      if (p > best[1]) best = [f, p];
    }
  };
  search(100, rate / 2 - 100, 10);
  search(best[0] - 10, best[0] + 10, 0.5);
  return best[0];
}
