"""dialtone's X-Twilio-Signature, judged by the official twilio helper library from PyPI:
webhooks (POST and GET) and the Media Streams upgrade are accepted with the right auth token
and rejected with a wrong one, and dialtone names the failing step."""

import json
import os
import subprocess

import pytest

from voice_app import VoiceApp

TOKEN = "py-validator-token-123"
BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))


def dialtone(*args):
    return subprocess.run([BIN, "call", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def app():
    a = VoiceApp(TOKEN)
    yield a
    a.close()


def test_post_webhook_and_stream_upgrade_pass_the_official_validator(app):
    r = dialtone("--webhook", f"http://127.0.0.1:{app.http_port}/voice?tenant=a%20b",
                 "--auth-token", TOKEN, "--tail", "0.5s", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["status"] == "completed"
    assert [ok for _, ok, _ in app.webhook_checks] == [True]
    _, _, params = app.webhook_checks[0]
    assert params["CallStatus"] == "ringing" and params["Direction"] == "inbound"
    assert [ok for _, ok in app.ws_checks] == [True]
    assert app.ws_events[:2] == ["connected", "start"] and app.ws_events[-1] == "stop"
    marks = report["streams"][0]["marks"]
    assert marks[0]["name"] == "greeting-done" and marks[0]["round_trip_ms"] is not None
    # The echo waited for the 150 ms of audio queued before the mark to play out.
    at = {e["event"]: e["at"] for e in reversed(report["timeline"])}
    assert at["mark_echoed"] - at["first_audio_back"] >= 149


def test_get_webhook_passes_the_official_validator(app):
    r = dialtone("--webhook", f"http://127.0.0.1:{app.http_port}/voice", "--method", "GET",
                 "--auth-token", TOKEN, "--tail", "0.3s", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [ok for _, ok, _ in app.webhook_checks] == [True]
    assert "?" in app.webhook_checks[0][0]


def test_wrong_token_is_rejected_and_reported_as_a_signature_failure(app):
    r = dialtone("--webhook", f"http://127.0.0.1:{app.http_port}/voice",
                 "--auth-token", "not-the-token", "--quiet")
    assert r.returncode == 1
    assert [ok for _, ok, _ in app.webhook_checks] == [False]
    assert "FAILED at webhook [11200]" in r.stdout
    assert "HTTP 403" in r.stdout and "signature" in r.stdout
