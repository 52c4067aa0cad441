// A voice app written the way a production one is, for the softphone test: Twilio calls its
// webhook, it answers with a Media Stream, listens to the caller, replies with a clip paced in
// real time, and hangs up through the REST API once it has heard what it waited for.
//
//   POST /voice   X-Twilio-Signature checked (twilio.validateRequest) against the public URL
//                 Twilio requested; 403 when it does not match. Answers
//                 <Response><Connect><Stream url="ws://HOST/media"/></Connect></Response>.
//   WS   /media   the upgrade's signature checked against the stream URL as the TwiML wrote it
//                 (no parameters); refused with 403 when it does not match. Records every
//                 message. After `replyAfterMs` of caller audio it sends `reply` (8 kHz floats)
//                 as μ-law 20 ms `media` messages, one every 20 ms (after a 200 ms lead), then a `mark`. Once the mark
//                 has come back and `expectDigits` digits have arrived (or `hangupAfterMs`
//                 after the stream started), it hangs up: calls(sid).update({status:'completed'}).
//
// Usable as a module (`start(opts)` → {port, url, obs, setApiBaseUrl, done, close}) or alone:
//   DIALTONE_URL=http://127.0.0.1:4000 TWILIO_ACCOUNT_SID=AC… TWILIO_AUTH_TOKEN=… \
//     node tests/node/phone_app.js [port] [reply.wav]
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const twilio = require('twilio');
const { WebSocketServer } = require('ws');
const audio = require('./audio');

const FRAME = 160; // 20 ms of 8 kHz μ-law

/** Milliseconds on a monotonic clock (process.hrtime). */
function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Starts the app on 127.0.0.1 (port 0: any free one).
 * opts: {accountSid, authToken, apiBaseUrl?, reply (Float32Array at 8 kHz), replyAfterMs = 2000,
 *        expectDigits = 3, hangupAfterMs = 20000, leadMs = 200, port = 0, log = () => {}}
 */
async function start(opts) {
  const {
    accountSid,
    authToken,
    reply,
    replyAfterMs = 2000,
    expectDigits = 3,
    hangupAfterMs = 20000,
    leadMs = 200,
    log = () => {},
  } = opts;
  let apiBaseUrl = opts.apiBaseUrl || null;
  const replyBytes = audio.encodeUlaw(reply);

  const obs = {
    webhooks: [], // {url, valid, params}
    upgrades: [], // {url, valid}
    invalid: [], // every refused request: {kind, url}
    connected: null,
    start: null, // the `start` message's `start` object
    streamSid: null,
    callSid: null,
    sequenceNumbers: [], // of every message that had one, in arrival order
    media: [], // {payload: Buffer, timestamp, chunk, sequenceNumber, track, at}
    dtmf: [], // {digit, afterMedia, at}
    marks: [], // {name, at}
    stop: null,
    other: [], // messages of any other event
    reply: null, // {firstAt, lastAt, frames, mark}
    hangup: null, // {at, status} or {at, error}
    errors: [],
  };
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));

  const server = http.createServer((req, res) => {
    handleHttp(req, res).catch((e) => {
      obs.errors.push(String(e));
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port || 0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  const publicHttp = `http://127.0.0.1:${port}`; // what dialtone requests (no proxy in between)
  const streamUrl = `ws://127.0.0.1:${port}/media`;

  async function handleHttp(req, res) {
    const url = publicHttp + req.url;
    if (req.method !== 'POST' || new URL(url).pathname !== '/voice') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const params = Object.fromEntries(new URLSearchParams(body));
    const signature = req.headers['x-twilio-signature'] || '';
    const valid = twilio.validateRequest(authToken, signature, url, params);
    obs.webhooks.push({ url, valid, params });
    log(`webhook ${url} valid=${valid} CallSid=${params.CallSid}`);
    if (!valid) {
      obs.invalid.push({ kind: 'webhook', url });
      res.writeHead(403, { 'content-type': 'text/plain' }).end('invalid X-Twilio-Signature');
      return;
    }
    const twiml = new twilio.twiml.VoiceResponse();
    twiml.connect().stream({ url: streamUrl });
    res.writeHead(200, { 'content-type': 'text/xml' }).end(twiml.toString());
  }

  server.on('upgrade', (req, socket, head) => {
    const url = `ws://127.0.0.1:${port}${req.url}`;
    const signature = req.headers['x-twilio-signature'] || '';
    const valid = new URL(url).pathname === '/media' && twilio.validateRequest(authToken, signature, url, {});
    obs.upgrades.push({ url, valid });
    log(`upgrade ${url} valid=${valid}`);
    if (!valid) {
      obs.invalid.push({ kind: 'upgrade', url });
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 26\r\nConnection: close\r\n\r\ninvalid X-Twilio-Signature');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onStream(ws));
  });

  function onStream(ws) {
    let replying = false;
    let hangupTimer = null;
    let hungUp = false;
    const markName = 'reply-end';

    const maybeHangUp = (why) => {
      if (hungUp || !obs.callSid) return;
      const markBack = obs.marks.some((m) => m.name === markName);
      if (why !== 'timeout' && !(markBack && obs.dtmf.length >= expectDigits)) return;
      hungUp = true;
      clearTimeout(hangupTimer);
      hangUp(why);
    };

    ws.on('message', (data, isBinary) => {
      const at = nowMs();
      if (isBinary) {
        obs.errors.push('binary message');
        return;
      }
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch (e) {
        obs.errors.push(`bad JSON: ${e.message}`);
        return;
      }
      if (msg.sequenceNumber !== undefined) obs.sequenceNumbers.push(Number(msg.sequenceNumber));
      switch (msg.event) {
        case 'connected':
          obs.connected = msg;
          break;
        case 'start':
          obs.start = msg.start;
          obs.streamSid = msg.streamSid || msg.start.streamSid;
          obs.callSid = msg.start.callSid;
          log(`start ${obs.callSid} ${obs.streamSid}`);
          hangupTimer = setTimeout(() => maybeHangUp('timeout'), hangupAfterMs);
          break;
        case 'media': {
          const m = msg.media;
          obs.media.push({
            payload: Buffer.from(m.payload, 'base64'),
            timestamp: Number(m.timestamp),
            chunk: Number(m.chunk),
            sequenceNumber: Number(msg.sequenceNumber),
            track: m.track,
            at,
          });
          if (!replying && obs.media.length * 20 >= replyAfterMs) {
            replying = true;
            sendReply(ws, markName);
          }
          break;
        }
        case 'dtmf':
          obs.dtmf.push({ digit: msg.dtmf.digit, afterMedia: obs.media.length, at });
          log(`dtmf ${msg.dtmf.digit}`);
          maybeHangUp('dtmf');
          break;
        case 'mark':
          obs.marks.push({ name: msg.mark.name, at });
          log(`mark ${msg.mark.name}`);
          maybeHangUp('mark');
          break;
        case 'stop':
          obs.stop = msg;
          log('stop');
          break;
        default:
          obs.other.push(msg);
      }
    });
    ws.on('close', () => {
      clearTimeout(hangupTimer);
      resolveDone(obs);
    });
    ws.on('error', (e) => obs.errors.push(`ws: ${e.message}`));
  }

  // The reply as a real app sends it: a short lead (`leadMs`, so a stall of this process does
  // not leave a hole in what the caller hears), then one 20 ms frame per 20 ms on a drift-free
  // schedule, then a mark so it learns when the caller has heard all of it.
  function sendReply(ws, markName) {
    const frames = Math.ceil(replyBytes.length / FRAME);
    const t0 = nowMs() - leadMs;
    obs.reply = { firstAt: t0, lastAt: null, frames, mark: markName };
    let n = 0;
    const tick = () => {
      if (ws.readyState !== ws.OPEN) return;
      const chunk = Buffer.alloc(FRAME, 0xff); // μ-law silence pads the last frame
      replyBytes.copy(chunk, 0, n * FRAME, Math.min(replyBytes.length, (n + 1) * FRAME));
      ws.send(JSON.stringify({ event: 'media', streamSid: obs.streamSid, media: { payload: chunk.toString('base64') } }));
      n++;
      if (n < frames) {
        setTimeout(tick, Math.max(0, t0 + n * 20 - nowMs()));
      } else {
        obs.reply.lastAt = nowMs();
        ws.send(JSON.stringify({ event: 'mark', streamSid: obs.streamSid, mark: { name: markName } }));
      }
    };
    tick();
  }

  async function hangUp(why) {
    const at = nowMs();
    try {
      if (!apiBaseUrl) throw new Error('no REST base URL set (setApiBaseUrl)');
      const client = twilio(accountSid, authToken);
      client.api.baseUrl = apiBaseUrl;
      const call = await client.calls(obs.callSid).update({ status: 'completed' });
      obs.hangup = { at, why, status: call.status };
      log(`hung up ${obs.callSid} (${why}): ${call.status}`);
    } catch (e) {
      obs.hangup = { at, why, error: String(e) };
      log(`hang-up failed: ${e}`);
    }
  }

  return {
    port,
    url: `${publicHttp}/voice`,
    streamUrl,
    obs,
    done,
    setApiBaseUrl(url) {
      apiBaseUrl = url;
    },
    close() {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** The caller's audio the app received, decoded to 8 kHz floats in arrival order. */
function inboundAudio(obs) {
  return audio.decodeUlaw(Buffer.concat(obs.media.map((m) => m.payload)));
}

/** 0/1 per inbound sample, the parts of the caller's audio worth comparing with what the
 * caller said: 0 for the first `skipMs` (the microphone's start-up, where a browser under load
 * may still drop or repeat a few ms) and within `dtmfMarginMs` of each dtmf event (the keypad's
 * tones may be in the audio there, as on a real line), 1 elsewhere. */
function analysisMask(obs, { skipMs = 1000, dtmfMarginMs = 300 } = {}) {
  const w = new Float32Array(obs.media.length * FRAME).fill(1);
  w.fill(0, 0, Math.min(w.length, Math.round(skipMs / 20) * FRAME));
  const margin = Math.round(dtmfMarginMs / 20);
  for (const d of obs.dtmf) {
    const from = Math.max(0, d.afterMedia - margin) * FRAME;
    const to = Math.min(obs.media.length, d.afterMedia + margin) * FRAME;
    if (to > from) w.fill(0, from, to);
  }
  return w;
}

/** How the inbound media arrived: timestamp steps, chunk and sequence-number continuity, and
 * arrival intervals (ms). */
function cadence(obs) {
  const m = obs.media;
  const stepsTs = [];
  const stepsChunk = [];
  const intervals = [];
  for (let i = 1; i < m.length; i++) {
    stepsTs.push(m[i].timestamp - m[i - 1].timestamp);
    stepsChunk.push(m[i].chunk - m[i - 1].chunk);
    intervals.push(m[i].at - m[i - 1].at);
  }
  const seq = obs.sequenceNumbers;
  const seqGaps = [];
  for (let i = 1; i < seq.length; i++) if (seq[i] !== seq[i - 1] + 1) seqGaps.push([seq[i - 1], seq[i]]);
  return {
    frames: m.length,
    badTimestampSteps: stepsTs.filter((d) => d !== 20),
    badChunkSteps: stepsChunk.filter((d) => d !== 1),
    firstChunk: m.length ? m[0].chunk : null,
    badFrameSizes: m.filter((x) => x.payload.length !== FRAME).map((x) => x.payload.length),
    tracks: [...new Set(m.map((x) => x.track))],
    seqGaps,
    medianMs: intervals.length ? audio.quantile(intervals, 0.5) : null,
    p99Ms: intervals.length ? audio.quantile(intervals, 0.99) : null,
    maxMs: intervals.length ? Math.max(...intervals) : null,
  };
}

module.exports = { start, inboundAudio, analysisMask, cadence };

if (require.main === module) {
  const port = Number(process.argv[2] || 0);
  const wav = process.argv[3] || path.join(__dirname, '../../audio/utterances/request_repeat.wav');
  const { rate, samples } = audio.readWav(fs.readFileSync(wav));
  start({
    port,
    accountSid: process.env.TWILIO_ACCOUNT_SID,
    authToken: process.env.TWILIO_AUTH_TOKEN,
    apiBaseUrl: process.env.DIALTONE_URL,
    reply: audio.resample(samples, rate, 8000),
    log: (s) => console.log(s),
  }).then((app) => console.log(`phone app listening on ${app.url}`));
}
