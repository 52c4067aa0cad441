"""`dialtone serve` judged by the official twilio helper library from PyPI: a script changes
only the base URL and creates, fetches, lists, updates and deletes calls, manages numbers and
reads recordings; errors arrive as TwilioRestException with Twilio's status and code; status
callbacks pass the library's RequestValidator."""

import os
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
AC = "AC" + "1" * 32
TOKEN = "py-serve-token-456"
KEY = "SK" + "3" * 32
KEY_SECRET = "py-key-secret"
APP_NUMBER = "+15005550001"  # hosted by `dialtone serve`, routed to the reference voice app


class Server:
    """`dialtone serve --port 0` with a fast ring, reading its address from the first line."""

    def __init__(self, tmp_path):
        cfg = tmp_path / "dialtone.toml"
        cfg.write_text(f'ring_ms = 100\n[[accounts]]\nsid = "{AC}"\nauth_token = "{TOKEN}"\n'
                       f'api_keys = [{{ sid = "{KEY}", secret = "{KEY_SECRET}" }}]\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        self.proc = subprocess.Popen([BIN, "serve", "--port", "0", "--config", str(cfg)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = self.proc.stdout.readline()
        assert first.startswith("dialtone serve listening on "), first + self.proc.stderr.read()
        self.url = first.split()[-1]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


class Callbacks:
    """Receives status callbacks and checks each with the official RequestValidator."""

    def __init__(self):
        self.hits = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
                url = f"http://127.0.0.1:{outer.port}{self.path}"
                ok = RequestValidator(TOKEN).validate(url, params, self.headers.get("X-Twilio-Signature", ""))
                outer.hits.append((self.path, params, ok))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.close()


@pytest.fixture
def client(server):
    c = Client(AC, TOKEN)
    c.api.base_url = server.url  # the one line that points the official client at dialtone
    return c


@pytest.fixture
def callbacks():
    c = Callbacks()
    yield c
    c.close()


def wait_for(client, sid, statuses, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        call = client.calls(sid).fetch()
        if call.status in statuses:
            return call
        time.sleep(0.2)
    raise AssertionError(f"call {sid} never reached {statuses}: {call.status}")


def test_call_to_the_reference_app_completes_with_callbacks_and_recording(client, callbacks, server):
    twiml = VoiceResponse()
    twiml.play(f"{server.url}/audio/hello.wav")
    twiml.pause(length=2)
    call = client.calls.create(
        to=APP_NUMBER, from_="+15005550006", twiml=str(twiml), record=True,
        status_callback=f"http://127.0.0.1:{callbacks.port}/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    assert call.direction == "outbound-api"
    assert call.account_sid == AC and call.to == APP_NUMBER and call._from == "+15005550006"  # the library keeps "from" as _from
    assert call.to_formatted == "(500) 555-0001" and call.api_version == "2010-04-01"
    assert call.date_created is not None and call.date_created.tzinfo is not None
    assert call.uri.endswith(f"/Calls/{call.sid}.json")
    assert call.subresource_uris["recordings"].endswith(f"/Calls/{call.sid}/Recordings.json")

    done = wait_for(client, call.sid, {"completed", "failed", "busy", "no-answer", "canceled"})
    assert done.status == "completed"
    assert done.start_time is not None and done.end_time is not None
    assert int(done.duration) >= 5
    deadline = time.time() + 10
    while time.time() < deadline and not any(p.get("CallStatus") == "completed" for _, p, _ in callbacks.hits):
        time.sleep(0.1)
    assert [p["CallStatus"] for _, p, _ in callbacks.hits] == ["initiated", "ringing", "in-progress", "completed"]
    assert all(ok for _, _, ok in callbacks.hits), "a status callback failed the official RequestValidator"
    final = callbacks.hits[-1][1]
    assert final["CallSid"] == call.sid and final["CallbackSource"] == "call-progress-events"
    assert final["SequenceNumber"] == "3" and final["SipResponseCode"] == "200"

    recordings = client.recordings.list(call_sid=call.sid)
    assert len(recordings) == 1
    rec = recordings[0]
    assert rec.sid.startswith("RE") and rec.call_sid == call.sid and int(rec.duration) >= 5
    assert final["RecordingSid"] == rec.sid
    wav = requests.get(rec.media_url + ".wav", timeout=10)
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF" and len(wav.content) > 8000 * 2 * 5

    # The app's own leg is an inbound call to the number.
    inbound = client.calls.list(to=APP_NUMBER, status="completed")
    assert {c.direction for c in inbound} == {"inbound", "outbound-api"}


def test_list_pages_through_next_page_uri(client):
    for _ in range(3):
        client.calls.create(to="+15551110000", from_="+15005550006", twiml="<Response><Hangup/></Response>")
    page = client.calls.page(page_size=2)
    assert len(list(page)) == 2 and page.next_page_url is not None
    assert len(list(page.next_page())) >= 1
    assert len(client.calls.list(page_size=1, limit=3)) == 3


def test_start_time_filters_take_the_clients_datetimes(client):
    import datetime
    call = client.calls.create(to="+15551110000", from_="+15005550006",
                               twiml="<Response><Pause length=\"30\"/></Response>")
    wait_for(client, call.sid, {"in-progress"})
    now = datetime.datetime.now(datetime.timezone.utc)
    # twilio-python sends these as full ISO 8601 timestamps; Twilio filters by UTC day.
    today = [c.sid for c in client.calls.list(start_time=now)]
    assert call.sid in today
    later = [c.sid for c in client.calls.list(start_time_after=now - datetime.timedelta(days=1))]
    assert call.sid in later
    before = [c.sid for c in client.calls.list(start_time_before=now - datetime.timedelta(days=1))]
    assert call.sid not in before
    client.calls(call.sid).update(status="completed")


def test_update_hangs_up_a_live_call_then_21220(client):
    call = client.calls.create(to="+15551110000", from_="+15005550006",
                               twiml="<Response><Pause length=\"30\"/></Response>")
    wait_for(client, call.sid, {"in-progress"})
    ended = client.calls(call.sid).update(status="completed")
    assert ended.status == "completed"
    with pytest.raises(TwilioRestException) as e:
        client.calls(call.sid).update(twiml="<Response><Hangup/></Response>")
    assert e.value.status == 400 and e.value.code == 21220
    assert client.calls(call.sid).delete() is True


def test_wrong_token_is_401_20003(server):
    bad = Client(AC, "wrong-token")
    bad.api.base_url = server.url
    with pytest.raises(TwilioRestException) as e:
        bad.calls.create(to=APP_NUMBER, from_="+15005550006", url="http://127.0.0.1:9/voice")
    assert e.value.status == 401 and e.value.code == 20003
    with pytest.raises(TwilioRestException) as e:
        bad.calls("CA" + "0" * 32).fetch()
    assert e.value.status == 401 and e.value.code == 20003
    # Lists raise the library's plain TwilioException for any non-200 page, as against Twilio.
    with pytest.raises(TwilioException) as e:
        bad.calls.list(limit=1)
    assert e.value.args[1].status_code == 401


def test_errors_arrive_as_twilio_rest_exceptions(client):
    with pytest.raises(TwilioRestException) as e:
        client.calls("CA" + "0" * 32).fetch()
    assert e.value.status == 404 and e.value.code == 20404
    with pytest.raises(TwilioRestException) as e:
        client.calls.create(to="not-a-number", from_="+15005550006", url="http://127.0.0.1:9/voice")
    assert e.value.status == 400 and e.value.code == 21211


def test_incoming_phone_numbers_create_update_list(client):
    n = client.incoming_phone_numbers.create(phone_number="+15557654321", voice_url="http://127.0.0.1:9/voice")
    assert n.sid.startswith("PN") and n.voice_method == "POST" and n.capabilities["voice"] is True
    n = client.incoming_phone_numbers(n.sid).update(voice_url="http://127.0.0.1:9/other", voice_method="GET")
    assert n.voice_url == "http://127.0.0.1:9/other" and n.voice_method == "GET"
    numbers = {x.phone_number for x in client.incoming_phone_numbers.list()}
    assert numbers == {APP_NUMBER, "+15557654321"}


def test_api_key_never_reaches_the_account_resource(server):
    keyed = Client(KEY, KEY_SECRET, AC)
    keyed.api.base_url = server.url
    assert isinstance(keyed.calls.list(limit=1), list)
    with pytest.raises(TwilioRestException) as e:
        keyed.api.v2010.accounts(AC).fetch()
    assert e.value.status == 401 and e.value.code == 20003
    owner = Client(AC, TOKEN)
    owner.api.base_url = server.url
    assert owner.api.v2010.accounts(AC).fetch().auth_token == TOKEN


def test_twiml_limit_and_client_names_as_twilio(client):
    with pytest.raises(TwilioRestException) as e:
        client.calls.create(to=APP_NUMBER, from_="+15005550006",
                            twiml="<Response><Say>" + "a" * 4000 + "</Say></Response>")
    assert e.value.status == 400 and e.value.code == 32018
    with pytest.raises(TwilioRestException) as e:
        client.calls.create(to="client:al\r\nice<b>", from_="+15005550006", twiml="<Response/>")
    assert e.value.status == 400 and e.value.code == 21211


def test_web_page_asks_for_credentials(server):
    anon = requests.get(server.url + "/", timeout=10)
    assert anon.status_code == 401 and anon.headers["WWW-Authenticate"].startswith("Basic ")
    assert anon.json()["code"] == 20003
    page = requests.get(server.url + "/", auth=(AC, TOKEN), timeout=10)
    assert page.status_code == 200 and "dialtone serve" in page.text
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
