// dialtone serve's softphone (section#phone). One WebSocket per call to the section's
// data-ws path (the contract: docs/softphone.md): the microphone goes out as Int16LE PCM
// at the AudioContext's rate, what the caller hears comes back as Int16LE PCM at 8 kHz and is
// scheduled back to back with a small playout lead. No build step: this file is the script.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const root = $('phone');
  const PLAYED_MAX = 120 * 8000; // samples of played PCM kept for played()
  const LEAD = 0.08; // s of playout lead, restored whenever the schedule fell behind
  const AHEAD_MAX = 0.5; // s: a block that would play later than this is dropped
  // The AudioWorklet: posts each input block (mono, Float32) to the main thread.
  const TAP = `class DialtoneTap extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch && ch.length) { const b = ch.slice(0); this.port.postMessage(b, [b.buffer]); }
    return true;
  }
}
registerProcessor('dialtone-tap', DialtoneTap);`;

  let chunks = []; // played PCM, Int16Array blocks (at most PLAYED_MAX samples)
  let kept = 0;
  const phone = {
    status: 'idle',
    callSid: null,
    steps: [],
    sentSamples: 0,
    playedSamples: 0,
    played() {
      const out = new Int16Array(kept);
      let at = 0;
      for (const c of chunks) { out.set(c, at); at += c.length; }
      return out;
    },
  };
  window.dialtonePhone = phone;
  if (!root || !root.dataset.ws) { phone.status = 'unavailable'; return; }

  const ui = {
    number: $('phone-number'), url: $('phone-url'), call: $('phone-call'),
    hangup: $('phone-hangup'), mute: $('phone-mute'), status: $('phone-status'),
    sid: $('phone-sid'), reason: $('phone-reason'), timeline: $('phone-timeline'),
    mic: $('phone-level-mic'), app: $('phone-level-app'),
    keys: [...root.querySelectorAll('button.phone-key')],
    say: $('phone-say'), sayText: $('phone-say-text'), saySend: $('phone-say-send'),
  };

  let ctx = null; // one AudioContext for the page, made on the first call (a user gesture)
  let tapLoaded = null; // the worklet module's promise, per context
  let call = null; // the live call's state, or null

  function setStatus(text, reason) {
    phone.status = text;
    ui.status.textContent = text;
    ui.status.className = 'status ' + (/^[a-z-]+$/.test(text) ? text : 'error');
    ui.reason.textContent = reason || '';
  }

  function setLive(live) {
    ui.call.disabled = !!call;
    ui.hangup.disabled = !call;
    ui.mute.disabled = !call;
    for (const k of ui.keys) k.disabled = !live;
    if (ui.say) ui.sayText.disabled = ui.saySend.disabled = !live;
  }

  async function audio() {
    if (!ctx || ctx.state === 'closed') {
      const AC = window.AudioContext || window.webkitAudioContext;
      ctx = new AC();
      const src = URL.createObjectURL(new Blob([TAP], { type: 'text/javascript' }));
      tapLoaded = ctx.audioWorklet.addModule(src).finally(() => URL.revokeObjectURL(src));
    }
    if (ctx.state === 'suspended') await ctx.resume();
    await tapLoaded;
    return ctx;
  }

  function target() {
    const url = ui.url.value.trim();
    if (url) return { url };
    const to = ui.number.value;
    return to ? { to } : null;
  }

  async function start() {
    if (call) return;
    const dest = target();
    if (!dest) { setStatus('error: choose a hosted number or enter a voice URL'); return; }
    chunks = []; kept = 0;
    phone.callSid = null; phone.steps = []; phone.sentSamples = 0; phone.playedSamples = 0;
    ui.sid.textContent = ''; ui.timeline.textContent = '';
    const c = { ws: null, stream: null, nodes: [], live: false, ended: false, muted: false,
      playHead: 0, out: null, outAt: 0, frame: 0, mic: [0, 0], app: [0, 0], meter: 0,
      closeTimer: 0 };
    call = c;
    setLive(false);
    setStatus('connecting');
    try {
      await audio();
    } catch (e) {
      return fail(c, 'error: audio: ' + msg(e));
    }
    if (call !== c) return stop(c); // hung up meanwhile
    try {
      c.stream = await navigator.mediaDevices.getUserMedia({ audio: {
        echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1,
      } });
    } catch (e) {
      return fail(c, 'microphone refused: ' + msg(e));
    }
    if (call !== c) return stop(c); // hung up meanwhile
    const rate = ctx.sampleRate;
    c.frame = Math.round(rate / 50); // 20 ms
    const source = ctx.createMediaStreamSource(c.stream);
    const tap = new AudioWorkletNode(ctx, 'dialtone-tap', {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      channelCount: 1, channelCountMode: 'explicit', channelInterpretation: 'speakers',
    });
    tap.port.onmessage = (m) => capture(c, m.data);
    source.connect(tap);
    tap.connect(ctx.destination); // silent (the processor writes nothing); keeps it pulled
    c.nodes.push(source, tap);
    c.meter = setInterval(() => meters(c), 100);

    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://')
      + location.host + root.dataset.ws);
    ws.binaryType = 'arraybuffer';
    c.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify(Object.assign({ event: 'call' }, dest, { rate })));
      c.live = true;
      if (call === c) setLive(true);
      if (c.muted) ws.send(JSON.stringify({ event: 'mute', muted: true }));
    };
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') event(c, m.data);
      else play(c, m.data);
    };
    ws.onerror = () => {}; // onclose follows with the code
    ws.onclose = (e) => {
      if (!c.ended) {
        c.ended = true;
        setStatus('error: connection closed' + (e.code && e.code !== 1000 ? ` (${e.code})` : ''),
          e.reason || '');
      }
      stop(c);
    };
  }

  function msg(e) { return (e && (e.message || e.name)) || String(e); }

  function fail(c, text) {
    c.ended = true;
    setStatus(text);
    stop(c);
  }

  // Releases the call's microphone, nodes, socket and timers; the phone is idle again.
  function stop(c) {
    c.live = false;
    clearInterval(c.meter);
    clearTimeout(c.closeTimer);
    if (c.stream) for (const t of c.stream.getTracks()) t.stop();
    for (const n of c.nodes) { try { n.disconnect(); } catch (_) { /* already */ } }
    if (c.nodes[1]) c.nodes[1].port.onmessage = null;
    c.nodes = [];
    if (c.ws && c.ws.readyState <= 1) c.ws.close();
    if (call === c) {
      call = null;
      ui.mic.value = 0; ui.app.value = 0;
      ui.mute.setAttribute('aria-pressed', 'false');
      ui.mute.textContent = 'Mute';
      setLive(false);
    }
  }

  function send(c, obj) {
    if (c.live && c.ws.readyState === 1) c.ws.send(JSON.stringify(obj));
  }

  function event(c, text) {
    let ev;
    try { ev = JSON.parse(text); } catch (_) { return; }
    switch (ev.event) {
      case 'call':
        phone.callSid = ev.callSid || null;
        ui.sid.textContent = ev.callSid || '';
        break;
      case 'status':
        if (!c.ended) setStatus(String(ev.status));
        break;
      case 'step': {
        const line = `${Number(ev.at || 0).toFixed(3).padStart(7)}s  ${ev.kind}  ${ev.text}`;
        phone.steps.push(line);
        const li = document.createElement('li');
        li.textContent = line;
        if (ev.kind) li.className = 'k-' + String(ev.kind).replace(/[^\w-]/g, '');
        const follow = ui.timeline.scrollTop + ui.timeline.clientHeight
          >= ui.timeline.scrollHeight - 4;
        ui.timeline.appendChild(li);
        if (follow) ui.timeline.scrollTop = ui.timeline.scrollHeight;
        break;
      }
      case 'end':
        c.ended = true;
        setStatus(String(ev.status || 'completed'), ev.reason || '');
        c.live = false;
        for (const k of ui.keys) k.disabled = true;
        c.closeTimer = setTimeout(() => stop(c), 2000); // the server closes; in case it doesn't
        break;
      case 'error':
        c.ended = true;
        setStatus('error: ' + (ev.message || 'unknown'));
        break;
    }
  }

  // Microphone: Float32 blocks → Int16LE, sent every 20 ms once the call message is out.
  function capture(c, f32) {
    let sq = 0;
    for (let i = 0; i < f32.length; i++) sq += f32[i] * f32[i];
    c.mic[0] += sq; c.mic[1] += f32.length;
    if (!c.live) return;
    for (let i = 0; i < f32.length; i++) {
      if (!c.out) { c.out = new DataView(new ArrayBuffer(c.frame * 2)); c.outAt = 0; }
      const s = Math.max(-1, Math.min(1, f32[i]));
      c.out.setInt16(c.outAt, Math.round(s < 0 ? s * 32768 : s * 32767), true);
      c.outAt += 2;
      if (c.outAt === c.out.byteLength) {
        if (c.ws.readyState === 1) { c.ws.send(c.out.buffer); phone.sentSamples += c.frame; }
        c.out = null;
      }
    }
  }

  // What the caller hears: Int16LE at 8 kHz, scheduled back to back on the same context.
  function play(c, buf) {
    const n = buf.byteLength >> 1;
    if (!n || !ctx) return;
    const dv = new DataView(buf);
    const pcm = new Int16Array(n);
    const ab = ctx.createBuffer(1, n, 8000);
    const ch = ab.getChannelData(0);
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const v = dv.getInt16(i * 2, true);
      pcm[i] = v;
      ch[i] = v / 32768;
      sq += ch[i] * ch[i];
    }
    c.app[0] += sq; c.app[1] += n;
    const now = ctx.currentTime;
    if (c.playHead < now + 0.005) c.playHead = now + LEAD; // fell behind: restart the lead
    if (c.playHead > now + AHEAD_MAX) return; // a burst: drop rather than grow the latency
    const src = ctx.createBufferSource();
    src.buffer = ab;
    src.connect(ctx.destination);
    src.start(c.playHead);
    c.playHead += n / 8000;
    phone.playedSamples += n;
    if (kept < PLAYED_MAX) {
      const take = Math.min(n, PLAYED_MAX - kept);
      chunks.push(take === n ? pcm : pcm.slice(0, take));
      kept += take;
    }
  }

  // Levels ~10×/s: the RMS of the last 100 ms, doubled (a full-scale sine reads 1), at most 1.
  function meters(c) {
    const level = (a) => (a[1] ? Math.min(1, 2 * Math.sqrt(a[0] / a[1])) : 0);
    ui.mic.value = level(c.mic);
    ui.app.value = level(c.app);
    c.mic = [0, 0]; c.app = [0, 0];
  }

  function hangup() {
    const c = call;
    if (!c) return;
    if (c.live && c.ws.readyState === 1) {
      send(c, { event: 'hangup' });
      c.closeTimer = setTimeout(() => stop(c), 3000); // the server's end and close come first
    } else {
      c.ended = true;
      setStatus('canceled');
      stop(c);
    }
  }

  function toggleMute() {
    const c = call;
    if (!c) return;
    c.muted = !c.muted;
    ui.mute.setAttribute('aria-pressed', String(c.muted));
    ui.mute.textContent = c.muted ? 'Unmute' : 'Mute';
    send(c, { event: 'mute', muted: c.muted });
  }

  function dtmf(digit) {
    const c = call;
    if (!c || !c.live) return false;
    send(c, { event: 'dtmf', digit });
    const key = ui.keys.find((k) => k.dataset.digit === digit);
    if (key) { key.classList.add('down'); setTimeout(() => key.classList.remove('down'), 150); }
    return true;
  }

  // What the caller says, typed: no recognizer runs on the microphone, so a speech <Gather>
  // hears these words, as if spoken from the moment they are sent.
  function say(text) {
    const c = call;
    text = String(text || '').trim();
    if (!c || !c.live || !text) return false;
    send(c, { event: 'say', text });
    return true;
  }
  phone.say = say;
  if (ui.say) {
    ui.say.addEventListener('submit', (e) => {
      e.preventDefault();
      if (say(ui.sayText.value)) ui.sayText.value = '';
    });
  }

  ui.call.addEventListener('click', () => { start(); });
  ui.hangup.addEventListener('click', hangup);
  ui.mute.addEventListener('click', toggleMute);
  for (const k of ui.keys) k.addEventListener('click', () => dtmf(k.dataset.digit));
  document.addEventListener('keydown', (e) => {
    if (!call || !call.live || e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))) return;
    if (/^[0-9*#]$/.test(e.key) && dtmf(e.key)) e.preventDefault();
  });
  setLive(false);
})();
