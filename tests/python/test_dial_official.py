"""<Dial> judged by an app built like Twilio's tutorials (transfer_app.py: FastAPI, the
official VoiceResponse, every request checked with the official RequestValidator) and by the
official REST client: a voice-AI bot streams with the caller, closes its stream and transfers
with <Dial> to an agent's number hosted by `dialtone serve`. The caller hears the agent's
greeting, the agent's app hears the caller, and the bot's action gets DialCallStatus=completed."""

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

from audio_check import best_alignment, mulaw_decode, pearson

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
HERE = os.path.dirname(os.path.abspath(__file__))
AC = "AC" + "6" * 32
TOKEN = "dial-app-token-789"
BOT_NUMBER = "+15557001000"
AGENT_NUMBER = "+15557002000"
TERMINAL = ("completed", "failed", "busy", "no-answer", "canceled")


class App:
    def __init__(self, tmp_path, greeting):
        self.log_path = tmp_path / "app.jsonl"
        self.heard_path = tmp_path / "agent_heard.ulaw"
        greeting_path = tmp_path / "greeting.ulaw"
        greeting_path.write_bytes(greeting)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        env |= {"TWILIO_AUTH_TOKEN": TOKEN, "APP_LOG": str(self.log_path), "AGENT_NUMBER": AGENT_NUMBER,
                "AGENT_GREETING": str(greeting_path), "AGENT_HEARD": str(self.heard_path)}
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "transfer_app.py")], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        assert first.startswith("listening "), first + self.proc.stderr.read()
        self.base = f"http://127.0.0.1:{int(first.split()[1])}"

    def records(self, kind):
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [r for r in map(json.loads, lines) if r["kind"] == kind]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def test_a_voice_ai_bot_transfers_to_a_hosted_agent(tmp_path):
    rng = random.Random(16)
    # The caller's words: 8 s of noise no other party makes, served as a WAV to the caller leg.
    caller_pcm = [rng.randint(-8000, 8000) for _ in range(8000 * 8)]
    with wave.open(str(tmp_path / "caller.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack(f"<{len(caller_pcm)}h", *caller_pcm))
    greeting = bytes(rng.choice([b for b in range(256) if b not in (0x7F, 0xFF)]) for _ in range(8000 * 2))
    app = App(tmp_path, greeting)
    cfg = tmp_path / "dialtone.toml"
    cfg.write_text(f'ring_ms = 100\n[[accounts]]\nsid = "{AC}"\nauth_token = "{TOKEN}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    server = subprocess.Popen([BIN, "serve", "--port", "0", "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    audio_server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                                    cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = server.stdout.readline()
        assert first.startswith("dialtone serve listening on "), first + server.stderr.read()
        audio_port = int(audio_server.stdout.readline().split("port ")[1].split()[0])
        client = Client(AC, TOKEN)
        client.api.base_url = first.split()[-1]
        client.incoming_phone_numbers.create(phone_number=BOT_NUMBER, voice_url=f"{app.base}/bot")
        client.incoming_phone_numbers.create(phone_number=AGENT_NUMBER, voice_url=f"{app.base}/agent")

        caller = VoiceResponse()
        caller.play(f"http://127.0.0.1:{audio_port}/caller.wav")
        call = client.calls.create(to=BOT_NUMBER, from_="+15005550006", twiml=str(caller),
                                   record=True, recording_channels="dual")
        deadline = time.time() + 60
        while time.time() < deadline and client.calls(call.sid).fetch().status not in TERMINAL:
            time.sleep(0.2)
        assert client.calls(call.sid).fetch().status == "completed"

        # Every request the app got was signed for the URL it was reached at.
        kinds = ["bot", "transfer", "agent", "dial-done", "leg-status"]
        assert all(r["valid"] for k in kinds for r in app.records(k)), app.log_path.read_text()
        assert app.records("bot-transfers"), "the bot never decided to transfer"
        bot_sid = app.records("bot")[0]["form"]["CallSid"]

        # The action says the transfer happened.
        done = app.records("dial-done")[0]["form"]
        assert done["DialCallStatus"] == "completed" and done["DialBridged"] == "true", done
        assert done["CallSid"] == bot_sid and int(done["DialCallDuration"]) >= 2, done
        leg_sid = done["DialCallSid"]
        assert [r["form"]["CallStatus"] for r in app.records("leg-status")] == \
            ["initiated", "ringing", "in-progress", "completed"]
        assert all(r["form"]["ParentCallSid"] == bot_sid for r in app.records("leg-status"))

        # The REST API lists the dialed leg as the bot call's child, and the agent's call.
        children = client.calls.list(parent_call_sid=bot_sid)
        assert [c.sid for c in children] == [leg_sid]
        assert children[0].direction == "outbound-dial" and children[0].status == "completed"
        agent = app.records("agent")[0]["form"]
        assert agent["Direction"] == "inbound" and agent["To"] == AGENT_NUMBER
        assert client.calls(agent["CallSid"]).fetch().status == "completed"

        # The agent's app heard the caller: the caller's words from where they had got to.
        heard = [mulaw_decode(b) for b in app.heard_path.read_bytes()]
        assert len(heard) > 8000 * 2, len(heard)
        r, offset = best_alignment(caller_pcm, heard[:8000 * 2], 160)
        # The bot heard the first 50 frames (1 s); the agent hears on from where the caller was
        # when the bot hung up, its 50th frame at the earliest (the one being spoken then).
        assert r >= 0.9 and offset >= 49 * 160, (r, offset)

        # The caller heard the agent's greeting: channel 2 of the call's recording.
        recordings = client.recordings.list(call_sid=call.sid)
        assert len(recordings) == 1
        wav = requests.get(f"{first.split()[-1]}/2010-04-01/Accounts/{AC}/Recordings/{recordings[0].sid}.wav"
                           "?RequestedChannels=2", timeout=10)
        with wave.open(io.BytesIO(wav.content)) as w:
            assert w.getnchannels() == 2 and w.getframerate() == 8000
            frames = w.readframes(w.getnframes())
        samples = struct.unpack(f"<{len(frames) // 2}h", frames)
        caller_heard = list(samples[1::2])
        # Aligned where the greeting's first samples are (the recording holds the μ-law the
        # caller heard, decoded), then correlated over the whole greeting.
        source = [mulaw_decode(b) for b in greeting]
        packed = struct.pack(f"<{len(caller_heard)}h", *caller_heard)
        at = packed.find(struct.pack("<20h", *source[:20]))
        assert at >= 0 and at % 2 == 0, "the greeting's start is not in what the caller heard"
        r = pearson(caller_heard[at // 2:at // 2 + len(source)], source)
        assert r >= 0.9, r
    finally:
        server.terminate()
        server.wait(timeout=20)
        audio_server.terminate()
        app.close()


def test_a_screened_recorded_transfer_rings_the_caller_until_the_bridge(tmp_path):
    """answerOnBridge, a whisper and record-from-answer-dual, each judged by the app's
    RequestValidator and the official REST client."""
    rng = random.Random(17)
    caller_pcm = [rng.randint(-8000, 8000) for _ in range(8000 * 5)]
    supervisor_pcm = [rng.randint(-8000, 8000) for _ in range(8000 * 2)]
    for name, pcm in (("caller.wav", caller_pcm), ("supervisor.wav", supervisor_pcm)):
        with wave.open(str(tmp_path / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(struct.pack(f"<{len(pcm)}h", *pcm))
    app = App(tmp_path, b"\x00" * 800)
    cfg = tmp_path / "dialtone.toml"
    cfg.write_text(f'ring_ms = 100\nfar_end_audio = "{tmp_path / "supervisor.wav"}"\n'
                   f'[[accounts]]\nsid = "{AC}"\nauth_token = "{TOKEN}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    server = subprocess.Popen([BIN, "serve", "--port", "0", "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    audio_server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                                    cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = server.stdout.readline()
        assert first.startswith("dialtone serve listening on "), first + server.stderr.read()
        api = first.split()[-1]
        audio_port = int(audio_server.stdout.readline().split("port ")[1].split()[0])
        client = Client(AC, TOKEN)
        client.api.base_url = api
        client.incoming_phone_numbers.create(phone_number=BOT_NUMBER, voice_url=f"{app.base}/screened")

        caller = VoiceResponse()
        caller.play(f"http://127.0.0.1:{audio_port}/caller.wav")
        call = client.calls.create(to=BOT_NUMBER, from_="+15005550006", twiml=str(caller),
                                   status_callback=f"{app.base}/caller-status",
                                   status_callback_event=["answered", "completed"])
        deadline = time.time() + 60
        while time.time() < deadline and client.calls(call.sid).fetch().status not in TERMINAL:
            time.sleep(0.2)
        assert client.calls(call.sid).fetch().status == "completed"
        kinds = ["screened", "whisper", "screened-done", "rec-status", "caller-status"]
        assert all(r["valid"] for k in kinds for r in app.records(k)), app.log_path.read_text()
        bot_sid = app.records("screened")[0]["form"]["CallSid"]

        # The whisper ran on the supervisor's leg, and only then was the caller answered.
        whisper = app.records("whisper")[0]["form"]
        done = app.records("screened-done")[0]["form"]
        assert whisper["Direction"] == "outbound-dial" and whisper["ParentCallSid"] == bot_sid
        assert whisper["CallSid"] == done["DialCallSid"] and whisper["CallStatus"] == "in-progress"
        order = [r["kind"] for r in map(json.loads, app.log_path.read_text().splitlines())]
        assert order.index("whisper") < order.index("caller-status"), order
        assert app.records("caller-status")[0]["form"]["CallStatus"] == "in-progress"

        # The action carries the recording, which the REST API serves.
        assert done["DialCallStatus"] == "completed" and done["DialBridged"] == "true", done
        rec = client.recordings(done["RecordingSid"]).fetch()
        assert rec.call_sid == bot_sid and rec.source == "DialVerb" and rec.channels == 2
        assert int(done["RecordingDuration"]) == int(rec.duration) >= 2
        statuses = [r["form"]["RecordingStatus"] for r in app.records("rec-status")]
        assert statuses == ["in-progress", "completed"], statuses
        assert app.records("rec-status")[1]["form"]["RecordingUrl"] == done["RecordingUrl"]
        wav = requests.get(done["RecordingUrl"] + ".wav", timeout=10)
        with wave.open(io.BytesIO(wav.content)) as w:
            assert w.getnchannels() == 2 and w.getframerate() == 8000
            frames = w.readframes(w.getnframes())
        samples = struct.unpack(f"<{len(frames) // 2}h", frames)
        # Channel 1 the caller (from the bridge: its words from the start), channel 2 the
        # supervisor, each from the bridge on.
        r_caller, _ = best_alignment(list(samples[0::2]), caller_pcm[:8000], 160)
        r_supervisor = pearson(list(samples[1::2]), supervisor_pcm)
        assert r_caller >= 0.9 and r_supervisor >= 0.9, (r_caller, r_supervisor)
    finally:
        server.terminate()
        server.wait(timeout=20)
        audio_server.terminate()
        app.close()
