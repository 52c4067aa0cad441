"""The REST API of `dialtone call` judged by the official twilio helper library from PyPI: an
app's client, pointed at `--rest-listen`, lists the live call, hangs it up with
`calls(sid).update(status="completed")` (a clean end: exit 0) or redirects it with
`update(twiml=...)` / `update(url=...)`, and the timeline shows it."""

import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from audio_check import free_port

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
AC = "AC" + "2" * 32
TOKEN = "py-call-rest-token"


class App:
    """A voice app that keeps the caller waiting (`/voice`) until its own REST request steers
    the call; `/bye` is TwiML to redirect to."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                twiml = VoiceResponse()
                if self.path == "/bye":
                    twiml.say("Redirected. Goodbye.")
                    twiml.hangup()
                else:
                    twiml.pause(length=30)
                body = str(twiml).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class Call:
    """`dialtone call --rest-listen 127.0.0.1:PORT` against the app, with the official client
    pointed at it."""

    def __init__(self, app, *extra):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        self.proc = subprocess.Popen(
            [BIN, "call", "--webhook", f"{app.url}/voice", "--rest-listen", f"127.0.0.1:{port}",
             "--account-sid", AC, "--auth-token", TOKEN, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.client = Client(AC, TOKEN)
        self.client.api.base_url = f"http://127.0.0.1:{port}"  # the one line, as for `dialtone serve`

    def live_call(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                calls = self.client.calls.list(status="in-progress")
                if calls:
                    return calls[0]
            except Exception:  # not listening yet
                pass
            time.sleep(0.1)
        raise AssertionError("no live call listed: " + self.proc.stderr.read())

    def finish(self, timeout=30):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture
def app():
    a = App()
    yield a
    a.close()


@pytest.fixture
def call(app):
    c = Call(app)
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
        c.proc.wait()


def test_hang_up_through_the_official_client_is_a_clean_end(call):
    live = call.live_call()
    assert live.sid.startswith("CA") and live.direction == "inbound"
    assert live.account_sid == AC and live.start_time is not None
    assert call.client.calls(live.sid).fetch().status == "in-progress"
    done = call.client.calls(live.sid).update(status="completed")
    assert done.status == "completed"
    code, out, err = call.finish()
    assert code == 0, out + err
    assert "REST API: http://127.0.0.1:" in out
    assert "completed: hung up through the REST API (Status=completed)" in out, out
    assert out.rstrip().endswith("OK"), out


def test_redirect_with_twiml_and_url_shows_on_the_timeline(call, app):
    live = call.live_call()
    twiml = VoiceResponse()
    twiml.pause(length=1)
    twiml.redirect(f"{app.url}/bye")
    call.client.calls(live.sid).update(twiml=str(twiml))
    code, out, err = call.finish()
    assert code == 0, out + err
    assert "redirected through the REST API: new TwiML <?xml" in out, out
    assert f"POST {app.url}/bye (redirect)" in out, out
    assert "completed: <Hangup>" in out, out


def test_redirect_with_url_names_it_and_an_ended_call_refuses_updates(app):
    # The REST API stays up until dialtone exits, after the milestone grace.
    call = Call(app, "--milestone-grace", "3s")
    try:
        live = call.live_call()
        call.client.calls(live.sid).update(url=f"{app.url}/bye")
        # Once the call has ended, updates get 21220 ("Call is not in-progress").
        deadline = time.time() + 20
        while call.client.calls(live.sid).fetch().status == "in-progress" and time.time() < deadline:
            time.sleep(0.1)
        with pytest.raises(TwilioRestException) as e:
            call.client.calls(live.sid).update(status="completed")
        assert e.value.code == 21220
        code, out, err = call.finish()
        assert code == 0, out + err
        assert f"redirected through the REST API: new TwiML from POST {app.url}/bye" in out, out
    finally:
        if call.proc.poll() is None:
            call.proc.kill()
            call.proc.wait()
