"""The app as deployed, unchanged: `prod_app.py` validates signatures against its public
https:// URL, names its stream wss://PUBLIC-HOST/ws, serves TLS on loopback with a
certificate this test's CA issues, paces its replies on the wall clock, and hangs up through
the REST API with the official twilio client. dialtone reaches it with flags only: --tunnel,
--cacert, --rest-listen."""

import json
import os
import subprocess
import sys
import time

import pytest
import trustme
from twilio.rest import Client

from audio_check import free_port

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
HERE = os.path.dirname(os.path.abspath(__file__))
PUBLIC = "https://bot.example.test"
AC = "AC" + "2" * 32
TOKEN = "deployed-app-token-789"


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}


class ProdApp:
    """prod_app.py in its own process, TLS with a certificate for localhost."""

    def __init__(self, tmp_path, api_base):
        ca = trustme.CA()
        cert = ca.issue_cert("localhost")
        self.ca_pem = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_pem))
        cert_pem, key_pem = tmp_path / "server.pem", tmp_path / "server.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_pem))
        cert.private_key_pem.write_to_path(str(key_pem))
        self.log_path = tmp_path / "app.jsonl"
        env = clean_env() | {
            "PUBLIC_URL": PUBLIC, "TWILIO_ACCOUNT_SID": AC, "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_API_BASE": api_base, "TLS_CERT": str(cert_pem), "TLS_KEY": str(key_pem),
            "APP_LOG": str(self.log_path),
        }
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "prod_app.py")], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        assert first.startswith("listening "), first + self.proc.stderr.read()
        self.port = int(first.split()[1])

    def flags(self):
        """What dialtone needs to stand in for Twilio and the tunnel."""
        return ["--tunnel", f"{PUBLIC}=https://localhost:{self.port}", "--cacert", str(self.ca_pem),
                "--account-sid", AC, "--auth-token", TOKEN]

    def records(self, kind):
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["kind"] == kind]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def rest_port():
    return free_port()


@pytest.fixture
def app(tmp_path, rest_port):
    a = ProdApp(tmp_path, f"http://127.0.0.1:{rest_port}")
    yield a
    a.close()


def dialtone(*args, timeout=120):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=clean_env())


def test_call_completes_with_turns_answered_and_the_rest_hangup_on_the_timeline(app, rest_port, tmp_path):
    capture = tmp_path / "call.jsonl"
    out = dialtone("call", "--webhook", f"{PUBLIC}/voice", *app.flags(),
                   "--rest-listen", f"127.0.0.1:{rest_port}", "--tail", "15s",
                   "--capture", str(capture))
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    # The timeline shows both addresses, and the app's own REST hang-up ends the call.
    assert f"POST {PUBLIC}/voice (via localhost:{app.port})" in text, text
    assert f"upgrading wss://bot.example.test/ws (via localhost:{app.port})" in text, text
    assert "hung up through the REST API (Status=completed)" in text, text
    # Every request passed the app's signature checks against its public URLs.
    hooks, upgrades = app.records("webhook"), app.records("upgrade")
    assert hooks and all(h["valid"] and h["host"] == "bot.example.test" for h in hooks), hooks
    assert hooks[0]["url"] == f"{PUBLIC}/voice" and hooks[0]["forwarded_proto"] == "https"
    assert upgrades and all(u["valid"] for u in upgrades), upgrades
    assert [r["ok"] for r in app.records("rest_hangup")] == [True]
    # Every caller turn was answered.
    out = dialtone("call", "--webhook", f"{PUBLIC}/voice", *app.flags(),
                   "--rest-listen", f"127.0.0.1:{rest_port}", "--tail", "15s", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    turns = [t for s in report["streams"] for t in s["turns"]]
    assert len(turns) >= 2 and all(t["reply_ms"] is not None for t in turns), turns
    assert report["end_reason"].startswith("hung up through the REST API"), report["end_reason"]

    # The capture replays against the same deployed app: wss:// through the tunnel.
    out = dialtone("replay", str(capture), "--webhook", f"{PUBLIC}/voice",
                   "--tunnel", f"{PUBLIC}=https://localhost:{app.port}", "--cacert", str(app.ca_pem),
                   "--auth-token", TOKEN)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "REPRODUCED" in out.stdout, out.stdout


def test_a_20_call_load_completes_and_counts_the_rest_hangups(app, rest_port, tmp_path):
    out = dialtone("load", "--webhook", f"{PUBLIC}/voice", *app.flags(), "--rest-listen",
                   f"127.0.0.1:{rest_port}", "--calls", "20", "--concurrency", "20", "--ramp", "2s",
                   "--tail", "15s", "--json", "--progress", "off", timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    s = json.loads(out.stdout)
    assert s["outcomes"] == {"ok": 20}, s["outcomes"]
    assert s["calls"]["rest_hangups"] == 20, s["calls"]
    assert len(app.records("rest_hangup")) == 20


def test_fast_against_a_wall_clock_app_fails_instead_of_passing_hollow(app, rest_port):
    out = dialtone("call", "--webhook", f"{PUBLIC}/voice", *app.flags(), "--rest-listen",
                   f"127.0.0.1:{rest_port}", "--fast", "--quiet")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAILED at virtual_time" in out.stdout and "rerun without --fast" in out.stdout, out.stdout


def test_a_call_through_serve_with_the_official_client_completes(tmp_path):
    port = free_port()
    app = ProdApp(tmp_path, f"http://127.0.0.1:{port}")
    try:
        cfg = tmp_path / "dialtone.toml"
        cfg.write_text(
            f'ring_ms = 100\ncacert = ["{app.ca_pem}"]\n'
            f'[[accounts]]\nsid = "{AC}"\nauth_token = "{TOKEN}"\n'
            f'[[numbers]]\nphone_number = "+15005550001"\nvoice_url = "{PUBLIC}/voice"\n'
            f'tunnels = ["{PUBLIC}=https://localhost:{app.port}"]\n')
        serve = subprocess.Popen([BIN, "serve", "--port", str(port), "--config", str(cfg)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        try:
            first = serve.stdout.readline()
            assert first.startswith("dialtone serve listening on "), first + serve.stderr.read()
            client = Client(AC, TOKEN)
            client.api.base_url = f"http://127.0.0.1:{port}"
            call = client.calls.create(
                to="+15005550001", from_="+15005550006",
                twiml=f"<Response><Play>http://127.0.0.1:{port}/audio/hello.wav</Play>"
                      "<Pause length=\"20\"/></Response>")
            deadline = time.time() + 60
            while time.time() < deadline:
                done = client.calls(call.sid).fetch()
                if done.status in ("completed", "failed", "busy", "no-answer", "canceled"):
                    break
                time.sleep(0.2)
            assert done.status == "completed", done.status
            # The app hung up its own leg through serve's REST API, before the caller's
            # 20 s pause was over.
            hangups = app.records("rest_hangup")
            assert [h["ok"] for h in hangups] == [True], hangups
            assert int(done.duration) < 20, done.duration
            assert all(h["valid"] for h in app.records("webhook") + app.records("upgrade"))
        finally:
            serve.terminate()
            serve.wait(timeout=20)
    finally:
        app.close()
