"""Call queues judged by an app built like Twilio's tutorials (queue_app.py: FastAPI, the
official VoiceResponse, every request checked with the official RequestValidator) and by the
official REST client against `dialtone serve`: a caller to the support number waits in a
queue, the REST API lists the queue and its member, an agent's call answers with
<Dial><Queue> and the two are bridged (each call's recording holds the other caller); and a
caller dequeued through the REST API runs the dequeue's TwiML."""

import io
import json
import os
import random
import struct
import subprocess
import sys
import time
import wave

import requests
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from audio_check import best_alignment

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
HERE = os.path.dirname(os.path.abspath(__file__))
AC = "AC" + "7" * 32
TOKEN = "queue-app-token-456"
SUPPORT = "+15557003000"
AGENT = "+15557004000"
TERMINAL = ("completed", "failed", "busy", "no-answer", "canceled")


def noise_wav(path, seed, seconds):
    rng = random.Random(seed)
    pcm = [rng.randint(-8000, 8000) for _ in range(8000 * seconds)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack(f"<{len(pcm)}h", *pcm))
    return pcm


class Env:
    """`dialtone serve`, the queue app, and a static server for the callers' audio."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "app.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        self.procs = []
        self.app = self.spawn([sys.executable, os.path.join(HERE, "queue_app.py")],
                              env | {"TWILIO_AUTH_TOKEN": TOKEN, "APP_LOG": str(self.log_path)})
        first = self.app.stdout.readline()
        assert first.startswith("listening "), first + self.app.stderr.read()
        self.base = f"http://127.0.0.1:{int(first.split()[1])}"
        cfg = tmp_path / "dialtone.toml"
        cfg.write_text(f'ring_ms = 100\n[[accounts]]\nsid = "{AC}"\nauth_token = "{TOKEN}"\n')
        self.server = self.spawn([BIN, "serve", "--port", "0", "--config", str(cfg)], env)
        first = self.server.stdout.readline()
        assert first.startswith("dialtone serve listening on "), first + self.server.stderr.read()
        self.api = first.split()[-1]
        audio = self.spawn([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"], env, cwd=tmp_path,
                           stderr=subprocess.STDOUT)
        self.audio_base = f"http://127.0.0.1:{int(audio.stdout.readline().split('port ')[1].split()[0])}"
        self.client = Client(AC, TOKEN)
        self.client.api.base_url = self.api
        self.client.incoming_phone_numbers.create(phone_number=SUPPORT, voice_url=f"{self.base}/caller")
        self.client.incoming_phone_numbers.create(phone_number=AGENT, voice_url=f"{self.base}/agent")

    def spawn(self, args, env, cwd=None, stderr=subprocess.PIPE):
        p = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.procs.append(p)
        return p

    def records(self, kind):
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [r for r in map(json.loads, lines) if r["kind"] == kind]

    def call(self, to, wav, record=False):
        """A call to `to` whose caller plays `wav` (in tmp_path)."""
        caller = VoiceResponse()
        caller.play(f"{self.audio_base}/{wav}")
        kwargs = {"record": True, "recording_channels": "dual"} if record else {}
        return self.client.calls.create(to=to, from_="+15005550006", twiml=str(caller), **kwargs)

    def wait_until(self, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = what()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def ended(self, sid):
        return self.client.calls(sid).fetch().status in TERMINAL

    def heard(self, call_sid):
        """What the created call's party heard: channel 2 of its recording, as samples."""
        recordings = self.client.recordings.list(call_sid=call_sid)
        assert len(recordings) == 1
        wav = requests.get(f"{self.api}/2010-04-01/Accounts/{AC}/Recordings/{recordings[0].sid}.wav"
                           "?RequestedChannels=2", timeout=10)
        with wave.open(io.BytesIO(wav.content)) as w:
            assert w.getnchannels() == 2 and w.getframerate() == 8000
            frames = w.readframes(w.getnframes())
        return list(struct.unpack(f"<{len(frames) // 2}h", frames)[1::2])

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=20)


def bridged_audio(heard, source):
    """(correlation, offset in `source`) of what `heard` holds once the bridge starts: the
    first sound in it (only silence is played before: the wait document pauses)."""
    start = next(i for i, s in enumerate(heard) if s != 0)
    return best_alignment(source, heard[start:start + 8000 * 2], 160)


def test_an_agent_dials_the_queue_and_talks_to_the_waiting_caller(tmp_path):
    caller_pcm = noise_wav(tmp_path / "caller.wav", 31, 8)
    agent_pcm = noise_wav(tmp_path / "agent.wav", 32, 4)
    env = Env(tmp_path)
    try:
        client = env.client
        call = env.call(SUPPORT, "caller.wav", record=True)
        queue = env.wait_until(lambda: [q for q in client.queues.list() if q.current_size == 1])[0]
        assert queue.friendly_name == "support" and queue.max_size == 1000 and queue.sid.startswith("QU")
        member_sid = env.records("caller")[0]["form"]["CallSid"]
        # The member waits a moment, then the REST API shows it at the front.
        time.sleep(1.2)
        members = client.queues(queue.sid).members.list()
        assert [m.call_sid for m in members] == [member_sid]
        assert members[0].position == 1 and members[0].wait_time >= 1, members[0].wait_time
        front = client.queues(queue.sid).members("Front").fetch()
        assert front.call_sid == member_sid and front.queue_sid == queue.sid
        assert client.queues(queue.sid).fetch().average_wait_time >= 1

        agent_call = env.call(AGENT, "agent.wav", record=True)
        env.wait_until(lambda: env.ended(call.sid) and env.ended(agent_call.sid), timeout=30)
        assert client.calls(call.sid).fetch().status == "completed"

        kinds = ["caller", "wait", "caller-done", "agent", "agent-done"]
        assert all(r["valid"] for k in kinds for r in env.records(k)), env.log_path.read_text()
        waits = [int(r["form"]["QueueTime"]) for r in env.records("wait")]
        assert len(waits) >= 2 and waits == sorted(waits), waits
        assert all(r["form"]["QueuePosition"] == "1" and r["form"]["QueueSid"] == queue.sid
                   for r in env.records("wait"))

        # The waiting caller's action: bridged; the agent's: the dial completed, to the member.
        done = env.records("caller-done")[0]["form"]
        assert done["QueueResult"] == "bridged" and done["QueueSid"] == queue.sid, done
        assert int(done["QueueTime"]) >= 1, done
        agent_done = env.records("agent-done")[0]["form"]
        assert agent_done["DialCallStatus"] == "completed", agent_done
        assert agent_done["DialCallSid"] == member_sid and agent_done["QueueSid"] == queue.sid, agent_done
        assert int(agent_done["DialCallDuration"]) >= 2, agent_done
        assert client.queues(queue.sid).fetch().current_size == 0

        # The audio crossed: the waiting caller heard the agent from its first words, the
        # agent heard the caller from where the caller had got to (a few seconds in).
        r, offset = bridged_audio(env.heard(call.sid), agent_pcm)
        assert r >= 0.9 and offset <= 8000, (r, offset)
        # The caller talks from its answer, which is when it joined the queue: where it had
        # got to is how long it had waited (QueueTime, in whole seconds).
        r, offset = bridged_audio(env.heard(agent_call.sid), caller_pcm)
        assert r >= 0.9 and offset >= 8000 and abs(offset / 8000 - int(done["QueueTime"])) <= 1, \
            (r, offset, done["QueueTime"])
    finally:
        env.close()


def test_a_rest_dequeue_redirects_the_waiting_caller(tmp_path):
    noise_wav(tmp_path / "caller.wav", 33, 10)
    env = Env(tmp_path)
    try:
        client = env.client
        call = env.call(SUPPORT, "caller.wav")
        queue = env.wait_until(lambda: [q for q in client.queues.list() if q.current_size == 1])[0]
        member_sid = env.records("caller")[0]["form"]["CallSid"]
        member = client.queues(queue.sid).members("Front").update(url=f"{env.base}/dequeued", method="POST")
        assert member.call_sid == member_sid and member.position == 1
        env.wait_until(lambda: env.ended(call.sid))
        assert client.calls(call.sid).fetch().status == "completed"

        kinds = ["caller", "wait", "caller-done", "dequeued"]
        assert all(r["valid"] for k in kinds for r in env.records(k)), env.log_path.read_text()
        done = env.records("caller-done")[0]["form"]
        assert done["QueueResult"] == "redirected" and done["QueueSid"] == queue.sid, done
        dequeued = env.records("dequeued")
        assert [r["form"]["CallSid"] for r in dequeued] == [member_sid]
        assert client.queues(queue.sid).members.list() == []
        # An empty queue can be deleted.
        assert client.queues(queue.sid).delete()
        assert all(q.sid != queue.sid for q in client.queues.list())
    finally:
        env.close()
