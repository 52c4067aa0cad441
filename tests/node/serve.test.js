// `dialtone serve` judged by the official twilio package from npm: a script changes only the
// base URL, then creates, fetches, lists and hangs up calls; errors arrive as RestException
// with Twilio's status and code.
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

const BIN = process.env.DIALTONE_BIN || path.join(__dirname, '../../target/debug/dialtone');
const AC = 'AC' + '2'.repeat(32);
const TOKEN = 'node-serve-token-789';
const KEY = 'SK' + '3'.repeat(32);
const KEY_SECRET = 'node-key-secret';
const APP_NUMBER = '+15005550001'; // hosted by dialtone serve, routed to the reference voice app

let server;
let baseUrl;
let client;

before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialtone-node-'));
  const cfg = path.join(dir, 'dialtone.toml');
  fs.writeFileSync(
    cfg,
    `ring_ms = 100\n[[accounts]]\nsid = "${AC}"\nauth_token = "${TOKEN}"\n` +
      `api_keys = [{ sid = "${KEY}", secret = "${KEY_SECRET}" }]\n`,
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
  client = twilio(AC, TOKEN);
  client.api.baseUrl = baseUrl; // the one line that points the official client at dialtone
});

after(() => {
  server.kill('SIGTERM');
});

async function waitFor(sid, statuses) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const call = await client.calls(sid).fetch();
    if (statuses.includes(call.status)) return call;
    if (Date.now() > deadline) throw new Error(`call ${sid} stuck in ${call.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('create, fetch and list a call to the reference app', async () => {
  const call = await client.calls.create({
    to: APP_NUMBER,
    from: '+15005550006',
    twiml: '<Response><Say>hello there how are you today</Say><Pause length="1"/></Response>',
  });
  assert.match(call.sid, /^CA[0-9a-f]{32}$/);
  assert.equal(call.status, 'queued');
  assert.equal(call.direction, 'outbound-api');
  assert.equal(call.accountSid, AC);
  assert.equal(call.from, '+15005550006');
  assert.equal(call.toFormatted, '(500) 555-0001');
  assert.ok(call.dateCreated instanceof Date && !Number.isNaN(call.dateCreated.getTime()));
  assert.equal(call.priceUnit, 'USD');
  assert.ok(call.subresourceUris.recordings.endsWith(`/Calls/${call.sid}/Recordings.json`));

  const done = await waitFor(call.sid, ['completed', 'failed', 'busy', 'no-answer', 'canceled']);
  assert.equal(done.status, 'completed');
  assert.ok(done.startTime instanceof Date && done.endTime instanceof Date);
  assert.ok(Number(done.duration) >= 3);

  const calls = await client.calls.list({ to: APP_NUMBER, pageSize: 1, limit: 2 });
  assert.equal(calls.length, 2);
  assert.deepEqual(new Set(calls.map((c) => c.direction)), new Set(['inbound', 'outbound-api']));
});

test('update hangs up a live call; a second update is 400/21220', async () => {
  const call = await client.calls.create({
    to: '+15551110000',
    from: '+15005550006',
    twiml: '<Response><Pause length="30"/></Response>',
  });
  await waitFor(call.sid, ['in-progress']);
  const ended = await client.calls(call.sid).update({ status: 'completed' });
  assert.equal(ended.status, 'completed');
  await assert.rejects(client.calls(call.sid).update({ url: 'http://127.0.0.1:9/voice' }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 21220);
    return true;
  });
});

test('a wrong token is RestException 401/20003', async () => {
  const bad = twilio(AC, 'wrong-token');
  bad.api.baseUrl = baseUrl;
  await assert.rejects(bad.calls(`CA${'0'.repeat(32)}`).fetch(), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 20003);
    assert.equal(e.moreInfo, 'https://www.twilio.com/docs/errors/20003');
    return true;
  });
  await assert.rejects(bad.calls.create({ to: APP_NUMBER, from: '+15005550006', url: 'http://127.0.0.1:9/' }), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 20003);
    return true;
  });
});

test('an unknown call is RestException 404/20404', async () => {
  await assert.rejects(client.calls(`CA${'0'.repeat(32)}`).fetch(), (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.code, 20404);
    return true;
  });
});

test('an API key works on calls but never reaches the Account resource (its auth token)', async () => {
  const keyed = twilio(KEY, KEY_SECRET, { accountSid: AC });
  keyed.api.baseUrl = baseUrl;
  assert.ok(Array.isArray(await keyed.calls.list({ limit: 1 })));
  await assert.rejects(keyed.api.v2010.accounts(AC).fetch(), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 20003);
    return true;
  });
  const account = await client.api.v2010.accounts(AC).fetch();
  assert.equal(account.authToken, TOKEN);
});

test('Twiml over 4000 characters is RestException 400/32018; a client name with CR/LF is 21211', async () => {
  const twiml = `<Response><Say>${'a'.repeat(4000)}</Say></Response>`;
  await assert.rejects(client.calls.create({ to: APP_NUMBER, from: '+15005550006', twiml }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 32018);
    return true;
  });
  const to = 'client:al\r\nice<b>';
  await assert.rejects(client.calls.create({ to, from: '+15005550006', twiml: '<Response/>' }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 21211);
    return true;
  });
});

test('the web page asks for credentials and shows the account with them', async () => {
  const anon = await fetch(`${baseUrl}/`);
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate'), /^Basic /);
  assert.equal((await anon.json()).code, 20003);
  const basic = `Basic ${Buffer.from(`${AC}:${TOKEN}`).toString('base64')}`;
  const page = await fetch(`${baseUrl}/`, { headers: { authorization: basic } });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /dialtone serve/);
  assert.equal((await fetch(`${baseUrl}/health`)).status, 200);
});
