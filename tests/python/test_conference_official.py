"""A three-party conference through `dialtone serve`, judged by the official twilio client
and an app built like Twilio's tutorials (conference_app.py: the official VoiceResponse,
every request checked with the official RequestValidator). Two callers dial a hosted
support number whose TwiML puts them in conference "support"; a supervisor is added with
the REST API (participants.create); the test then mutes, holds and kicks through the API
and ends the conference. Each caller hears the other byte for byte (from its recording),
the conference's status callbacks tell the story in order, and each caller's action gets
DialCallStatus=answered."""

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

from audio_check import mulaw_decode

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
HERE = os.path.dirname(os.path.abspath(__file__))
AC = "AC" + "7" * 32
TOKEN = "conference-app-token-321"
SUPPORT = "+15557003000"
SUPERVISOR = "+15557009999"
TERMINAL = ("completed", "failed", "busy", "no-answer", "canceled")


def voice(tmp_path, name, seconds, seed):
    """Noise no other party makes, as μ-law-exact samples in a WAV (so what dialtone sends
    is these samples' codes); returns the samples."""
    rng = random.Random(seed)
    codes = [rng.choice([b for b in range(256) if b not in (0x7F, 0xFF)]) for _ in range(8000 * seconds)]
    pcm = [mulaw_decode(c) for c in codes]
    with wave.open(str(tmp_path / name), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack(f"<{len(pcm)}h", *pcm))
    return pcm


def heard_channel(base, sid):
    """Channel 2 (what the caller heard) of the call's one recording."""
    client_recordings = requests.get(f"{base}/2010-04-01/Accounts/{AC}/Recordings.json?CallSid={sid}",
                                     auth=(AC, TOKEN), timeout=10).json()["recordings"]
    assert len(client_recordings) == 1, client_recordings
    wav = requests.get(f"{base}/2010-04-01/Accounts/{AC}/Recordings/{client_recordings[0]['sid']}.wav"
                       "?RequestedChannels=2", timeout=10)
    with wave.open(io.BytesIO(wav.content)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000
        frames = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(frames) // 2}h", frames)[1::2])


def exact_windows(heard, source):
    """How many 20-sample windows of `heard` (one every 50 ms) occur exactly in `source`."""
    packed = struct.pack(f"<{len(source)}h", *source)
    hits = 0
    for at in range(0, len(heard) - 20, 400):
        window = heard[at:at + 20]
        if any(window) and packed.find(struct.pack("<20h", *window)) % 2 == 0:
            hits += 1
    return hits


class App:
    def __init__(self, tmp_path):
        self.log_path = tmp_path / "app.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        env |= {"TWILIO_AUTH_TOKEN": TOKEN, "APP_LOG": str(self.log_path)}
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "conference_app.py")], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        assert first.startswith("listening "), first + self.proc.stderr.read()
        self.base = f"http://127.0.0.1:{int(first.split()[1])}"

    def records(self, kind):
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [r for r in map(json.loads, lines) if r["kind"] == kind]

    def events(self):
        return [r["form"]["StatusCallbackEvent"] for r in self.records("conference-events")]

    def wait_for_event(self, event, count=1, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and self.events().count(event) < count:
            time.sleep(0.05)
        assert self.events().count(event) >= count, (event, self.events())

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def until(predicate, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_three_party_conference_through_twiml_and_the_rest_api(tmp_path):
    first_voice = voice(tmp_path, "first.wav", 14, 1)
    second_voice = voice(tmp_path, "second.wav", 14, 2)
    voice(tmp_path, "supervisor.wav", 20, 3)
    app = App(tmp_path)
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
        base = first.split()[-1]
        audio_port = int(audio_server.stdout.readline().split("port ")[1].split()[0])
        client = Client(AC, TOKEN)
        client.api.base_url = base
        client.incoming_phone_numbers.create(phone_number=SUPPORT, voice_url=f"{app.base}/support")

        # Two callers dial the support line; its TwiML seats them in "support".
        calls = []
        for name, caller_id in (("first.wav", "+15005550006"), ("second.wav", "+15005550007")):
            caller = VoiceResponse()
            caller.play(f"http://127.0.0.1:{audio_port}/{name}")
            calls.append(client.calls.create(to=SUPPORT, from_=caller_id, twiml=str(caller),
                                             record=True, recording_channels="dual"))
        conference = until(lambda: client.conferences.list(friendly_name="support", status="in-progress"))
        assert len(conference) == 1
        conference = conference[0]
        assert conference.sid.startswith("CF") and conference.friendly_name == "support"
        app.wait_for_event("conference-start")

        # A supervisor joins through the REST API: dialtone dials a number it does not host
        # (a simulated party saying serve's far-end audio) and seats it when it answers.
        supervisor = client.conferences(conference.sid).participants.create(
            from_="+15005550006", to=SUPERVISOR, label="supervisor", beep="false",
            status_callback=f"{app.base}/participant-status",
            status_callback_event=["initiated", "ringing", "answered", "completed"])
        assert supervisor.call_sid.startswith("CA") and supervisor.label == "supervisor"
        app.wait_for_event("participant-join", 3)
        participants = client.conferences(conference.sid).participants.list()
        assert len(participants) == 3
        app_legs = [p.call_sid for p in participants if p.call_sid != supervisor.call_sid]
        assert len(app_legs) == 2
        assert client.conferences(conference.sid).participants("supervisor").fetch().call_sid == supervisor.call_sid

        # The supervisor listens only: muted through the API.
        muted = client.conferences(conference.sid).participants("supervisor").update(muted=True)
        assert muted.muted is True
        app.wait_for_event("participant-mute")
        assert [p.call_sid for p in client.conferences(conference.sid).participants.list(muted=True)] == \
            [supervisor.call_sid]
        time.sleep(2.5)  # The two callers talk; each hears only the other.

        # One caller on hold and back, then the supervisor is kicked and the call ended.
        client.conferences(conference.sid).participants(app_legs[1]).update(hold=True)
        app.wait_for_event("participant-hold")
        time.sleep(0.5)
        client.conferences(conference.sid).participants(app_legs[1]).update(hold=False)
        app.wait_for_event("participant-unhold")
        client.conferences(conference.sid).participants("supervisor").delete()
        app.wait_for_event("participant-leave")
        ended = client.conferences(conference.sid).update(status="completed")
        assert ended.status == "completed"
        app.wait_for_event("conference-end")
        for c in calls:
            until(lambda c=c: client.calls(c.sid).fetch().status in TERMINAL)

        # Every request the app got was signed for the URL it was reached at.
        assert all(r["valid"] for r in map(json.loads, app.log_path.read_text().splitlines()))

        # The conference's callbacks, in order, for one conference.
        events = app.records("conference-events")
        assert [e["form"]["StatusCallbackEvent"] for e in events] == [
            "participant-join", "participant-join", "conference-start", "participant-join",
            "participant-mute", "participant-hold", "participant-unhold", "participant-leave",
            "participant-leave", "participant-leave", "conference-end"], [e["form"] for e in events]
        assert {e["form"]["ConferenceSid"] for e in events} == {conference.sid}
        assert [int(e["form"]["SequenceNumber"]) for e in events] == list(range(1, len(events) + 1))
        kicked = events[7]["form"]
        assert kicked["CallSid"] == supervisor.call_sid and kicked["ParticipantLabel"] == "supervisor"
        assert kicked["ReasonParticipantLeft"] == "participant_updated_via_api"
        assert {e["form"]["ReasonParticipantLeft"] for e in events[8:10]} == {"conference_ended_via_api"}
        assert events[10]["form"]["ReasonConferenceEnded"] == "conference-ended-via-api"

        # The supervisor's call: created by the API, its progress called back, completed.
        assert [r["form"]["CallStatus"] for r in app.records("participant-status")] == \
            ["initiated", "ringing", "in-progress", "completed"]
        supervisor_call = client.calls(supervisor.call_sid).fetch()
        assert supervisor_call.direction == "outbound-api" and supervisor_call.status == "completed"

        # Each caller's action: connected to a conference.
        done = app.records("conference-done")
        assert len(done) == 2
        assert all(d["form"]["DialCallStatus"] == "answered" and "DialCallSid" not in d["form"] for d in done)
        assert client.conferences(conference.sid).fetch().reason_conference_ended == "conference-ended-via-api"

        # Each caller heard the other, exactly (the mixer passes a lone voice through), for
        # at least the 2.5 s both talked with the supervisor muted.
        first_heard = heard_channel(base, calls[0].sid)
        second_heard = heard_channel(base, calls[1].sid)
        assert exact_windows(first_heard, second_voice) >= 40, exact_windows(first_heard, second_voice)
        assert exact_windows(second_heard, first_voice) >= 40, exact_windows(second_heard, first_voice)
    finally:
        server.terminate()
        server.wait(timeout=20)
        audio_server.terminate()
        app.close()
