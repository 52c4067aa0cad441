// The softphone's Say box, in headless Chromium: the page calls an IVR by its URL (typed in
// the page), the IVR asks with a speech <Gather> (built with the official VoiceResponse, every
// request checked with twilio.validateRequest), the user types what they say while the
// prompt plays, and the IVR's action gets it as SpeechResult.
// Run with: DIALTONE_BIN=target/debug/dialtone node --test tests/node
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const twilio = require('twilio');
const h = require('./phone_harness');

const CHROMIUM = '/usr/bin/chromium';
const LINE = 'I want to pay my bill';

let env; // phone_harness.start(): dialtone serve (and the harness's own app, unused here)
let browser;
let ivr;

after(async () => {
  await browser?.close().catch(() => {});
  await env?.close();
  ivr?.close();
});

/** An IVR on a loopback port: /ivr asks, /heard takes the answer and hangs up. */
async function startIvr() {
  const seen = { invalid: [], heard: null };
  let resolveHeard;
  seen.done = new Promise((r) => (resolveHeard = r));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = `http://127.0.0.1:${server.address().port}${req.url}`;
      const params = Object.fromEntries(new URLSearchParams(body));
      if (!twilio.validateRequest(h.TOKEN, req.headers['x-twilio-signature'] || '', url, params)) {
        seen.invalid.push(req.url);
      }
      const twiml = new twilio.twiml.VoiceResponse();
      if (req.url === '/ivr') {
        const gather = twiml.gather({ input: 'speech', action: '/heard', timeout: 8, speechTimeout: '1' });
        gather.say({ loop: 4 }, 'Tell me in a few words what you need.');
      } else {
        seen.heard = params;
        resolveHeard();
        twiml.hangup();
      }
      res.writeHead(200, { 'content-type': 'text/xml' }).end(twiml.toString());
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/ivr`, seen, close: () => server.close() };
}

test('a line typed in the Say box is what a speech <Gather> hears', { timeout: 60_000 }, async () => {
  const log = [];
  env = await h.start({ prefix: 'dialtone-phone-say-', log: (s) => log.push(s) });
  ivr = await startIvr();
  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  const context = await browser.newContext({ httpCredentials: { username: h.AC, password: h.TOKEN } });
  const page = await context.newPage();
  page.on('pageerror', (e) => log.push(`page error: ${e.message}`));
  await page.goto(`${env.baseUrl}/`);
  await page.fill('input#phone-url', ivr.url);
  await page.click('button#phone-call');
  await page.waitForFunction(() => window.dialtonePhone?.status === 'in-progress', null, { timeout: 15_000 });
  // Over the prompt (bargeIn is Twilio's default): it stops the prompt and is heard.
  await h.wait(1000);
  await page.fill('input#phone-say-text', LINE);
  await page.click('button#phone-say-send');
  assert.equal(await page.inputValue('input#phone-say-text'), '', 'the box clears once sent');
  await h.within(ivr.seen.done, 20_000, `the IVR's action (log: ${log.join(' | ')})`);
  await page.waitForFunction(() => window.dialtonePhone?.status === 'completed', null, { timeout: 10_000 });

  assert.deepEqual(ivr.seen.invalid, [], 'requests with an invalid X-Twilio-Signature');
  assert.equal(ivr.seen.heard.SpeechResult, LINE);
  assert.ok(Number(ivr.seen.heard.Confidence) > 0);
  assert.equal(ivr.seen.heard.CallSid, await page.evaluate(() => window.dialtonePhone.callSid));
});
