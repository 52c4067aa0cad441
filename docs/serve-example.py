"""Place a call through `dialtone serve` with the official twilio library, exactly as against
Twilio: only `client.api.base_url` changes. The call goes to +15005550001, which dialtone
routes to its reference voice app; status callbacks come back to a small local receiver; the
recording is downloaded and inspected.

Run with: dialtone serve   (in another terminal), then: python docs/serve-example.py
"""

import io
import threading
import time
import urllib.parse
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

ACCOUNT_SID = "AC00000000000000000000000000000000"  # dialtone serve's printed defaults
AUTH_TOKEN = "dialtone-local-auth-token"
DIALTONE = "http://127.0.0.1:2010"

done = threading.Event()


class StatusCallbacks(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        p = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
        valid = RequestValidator(AUTH_TOKEN).validate(url, p, self.headers["X-Twilio-Signature"])
        extra = (f"  CallDuration={p['CallDuration']} RecordingUrl={p['RecordingUrl']}"
                 if p["CallStatus"] == "completed" else "")
        # One write per line: callbacks arrive on other threads while the script prints.
        print(f"  callback #{p['SequenceNumber']}: CallStatus={p['CallStatus']:<12} "
              f"signature valid={valid}{extra}\n", end="", flush=True)
        self.send_response(204)
        self.end_headers()
        if p["CallStatus"] == "completed":
            done.set()

    def log_message(self, *args):
        pass


receiver = ThreadingHTTPServer(("127.0.0.1", 0), StatusCallbacks)
threading.Thread(target=receiver.serve_forever, daemon=True).start()

client = Client(ACCOUNT_SID, AUTH_TOKEN)
client.api.base_url = DIALTONE  # the only change from a script that talks to Twilio

caller = VoiceResponse()
caller.play(f"{DIALTONE}/audio/hello.wav")  # what the caller says to the app
caller.pause(length=2)

call = client.calls.create(
    to="+15005550001", from_="+15005550006", twiml=str(caller), record=True,
    status_callback=f"http://127.0.0.1:{receiver.server_address[1]}/status",
    status_callback_event=["initiated", "ringing", "answered", "completed"],
)
print(f"created {call.sid}: status={call.status} direction={call.direction} to={call.to}\n",
      end="", flush=True)
done.wait(120)

call = client.calls(call.sid).fetch()
print(f"fetched {call.sid}: status={call.status} duration={call.duration}s "
      f"start={call.start_time:%H:%M:%S} end={call.end_time:%H:%M:%S}")
for leg in client.calls.list(to="+15005550001", limit=2):
    print(f"  leg {leg.sid} {leg.direction:<12} {leg.status}")

recording = client.recordings.list(call_sid=call.sid)[0]
audio = requests.get(recording.media_url + ".wav", timeout=10)
with wave.open(io.BytesIO(audio.content)) as w:
    frames = w.readframes(w.getnframes())
    samples = [int.from_bytes(frames[i:i + 2], "little", signed=True) for i in range(0, len(frames), 2)]
    loud = [round((sum(s * s for s in samples[k:k + 8000]) / 8000) ** 0.5)
            for k in range(0, len(samples), 8000)]
    print(f"recording {recording.sid}: {audio.headers['Content-Type']}, {w.getnchannels()} channel, "
          f"{w.getframerate()} Hz, {w.getnframes() / w.getframerate():.1f} s")
    print(f"  loudness per second (RMS): {loud}")
