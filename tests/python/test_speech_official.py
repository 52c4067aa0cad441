"""Twilio's speech features judged by an app built like Twilio's tutorials (ivr_app.py: the
official VoiceResponse builds its TwiML, the official RequestValidator checks every request
and callback) and by the official REST client. The caller is a call created through the
REST API whose TwiML says its words: `dialtone serve` knows them exactly, so the IVR's
speech <Gather> gets them back as SpeechResult, its <Record> holds them and its
transcription carries them; a live <Transcription> reports them as they are said."""

import json
import os
import subprocess
import sys
import time

from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
HERE = os.path.dirname(os.path.abspath(__file__))
AC = "AC" + "7" * 32
TOKEN = "speech-app-token-123"
IVR_NUMBER = "+15558001000"
LIVE_NUMBER = "+15558002000"
TERMINAL = ("completed", "failed", "busy", "no-answer", "canceled")
ASK = "I want to leave a message"
VOICEMAIL = "Hi, this is Sam, please call me back"


class Setup:
    """The app, `dialtone serve` with the app's numbers, and an official REST client."""

    def __init__(self, tmp_path):
        self.log_path = tmp_path / "app.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        self.app = subprocess.Popen([sys.executable, os.path.join(HERE, "ivr_app.py")],
                                    env=env | {"TWILIO_AUTH_TOKEN": TOKEN, "APP_LOG": str(self.log_path)},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.app.stdout.readline()
        assert first.startswith("listening "), first + self.app.stderr.read()
        self.base = f"http://127.0.0.1:{int(first.split()[1])}"
        cfg = tmp_path / "dialtone.toml"
        cfg.write_text(f'ring_ms = 100\ncaller_tail_ms = 500\n[[accounts]]\nsid = "{AC}"\nauth_token = "{TOKEN}"\n')
        self.server = subprocess.Popen([BIN, "serve", "--port", "0", "--config", str(cfg)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = self.server.stdout.readline()
        assert first.startswith("dialtone serve listening on "), first + self.server.stderr.read()
        self.client = Client(AC, TOKEN)
        self.client.api.base_url = first.split()[-1]

    def records(self, kind=None):
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [r for r in map(json.loads, lines) if kind is None or r["kind"] == kind]

    def call(self, to, caller):
        call = self.client.calls.create(to=to, from_="+15005550006", twiml=str(caller))
        deadline = time.time() + 60
        while time.time() < deadline and self.client.calls(call.sid).fetch().status not in TERMINAL:
            time.sleep(0.2)
        assert self.client.calls(call.sid).fetch().status == "completed"
        return call

    def close(self):
        self.server.terminate()
        self.server.wait(timeout=20)
        self.app.terminate()
        self.app.wait(timeout=10)


def test_an_ivr_hears_the_caller_branches_and_takes_a_voicemail(tmp_path):
    s = Setup(tmp_path)
    try:
        s.client.incoming_phone_numbers.create(phone_number=IVR_NUMBER, voice_url=f"{s.base}/ivr")
        # The caller: waits for the question, asks, waits for the beep, leaves its message.
        caller = VoiceResponse()
        caller.pause(length=2)
        caller.say(ASK)
        caller.pause(length=5)
        caller.say(VOICEMAIL)
        s.call(IVR_NUMBER, caller)

        assert all(r["valid"] for r in s.records()), s.log_path.read_text()
        ivr_sid = s.records("ivr")[0]["form"]["CallSid"]
        # The speech <Gather>: the caller's exact words, and partials growing toward them.
        route = s.records("route")[0]["form"]
        assert route["SpeechResult"] == ASK and route["CallSid"] == ivr_sid, route
        assert 0 < float(route["Confidence"]) <= 1
        partials = [r["form"]["UnstableSpeechResult"] for r in s.records("partial")]
        assert partials and all(ASK.startswith(p) for p in partials), partials

        # The voicemail: the action carries the recording, which the REST API serves.
        done = s.records("voicemail-done")[0]["form"]
        assert done["RecordingSid"].startswith("RE") and int(done["RecordingDuration"]) >= 2, done
        rec = s.client.recordings(done["RecordingSid"]).fetch()
        assert rec.call_sid == ivr_sid and rec.source == "RecordVerb", rec
        assert [r.sid for r in s.client.recordings.list(call_sid=ivr_sid)] == [rec.sid]
        # Its transcription: the words the caller said after the beep.
        text = s.records("transcribed")[0]["form"]
        assert text["TranscriptionText"] == VOICEMAIL and text["TranscriptionStatus"] == "completed", text
        assert text["RecordingSid"] == rec.sid
        statuses = [r["form"]["RecordingStatus"] for r in s.records("recording-status")]
        assert statuses == ["completed"], statuses
    finally:
        s.close()


def test_a_live_transcription_reports_the_callers_words(tmp_path):
    s = Setup(tmp_path)
    try:
        s.client.incoming_phone_numbers.create(phone_number=LIVE_NUMBER, voice_url=f"{s.base}/live")
        caller = VoiceResponse()
        caller.pause(length=1)
        caller.say(ASK)
        caller.pause(length=1)
        caller.say(VOICEMAIL)
        s.call(LIVE_NUMBER, caller)

        assert all(r["valid"] for r in s.records()), s.log_path.read_text()
        events = [r["form"] for r in s.records("transcription")]
        kinds = [e["TranscriptionEvent"] for e in events]
        assert kinds[0] == "transcription-started" and kinds[-1] == "transcription-stopped", kinds
        finals = [json.loads(e["TranscriptionData"])["transcript"] for e in events
                  if e["TranscriptionEvent"] == "transcription-content" and e["Final"] == "true"]
        assert finals == [ASK, VOICEMAIL], finals
        partials = [e for e in events if e["TranscriptionEvent"] == "transcription-content" and e["Final"] == "false"]
        assert partials, "partialResults=true sends interim results"
        assert all(e["Track"] == "inbound_track" for e in events if "Track" in e)
    finally:
        s.close()
