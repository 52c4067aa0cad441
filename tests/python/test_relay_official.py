"""ConversationRelay against an app built like Twilio's tutorials (relay_app.py: FastAPI, the
official VoiceResponse, signatures checked with the official RequestValidator): `dialtone call`
shows each turn's first token timed from the caller's true end of speech, and the app's own
thinking time is what dialtone measured after its prompt."""

import json
import os
import subprocess
import sys

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "relay-app-token-456"
THINK_MS = 150


class RelayApp:
    def __init__(self, tmp_path, handoff_after=0):
        self.log_path = tmp_path / "relay.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        env |= {"TWILIO_AUTH_TOKEN": TOKEN, "APP_LOG": str(self.log_path), "THINK_MS": str(THINK_MS),
                "HANDOFF_AFTER": str(handoff_after)}
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "relay_app.py")], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        assert first.startswith("listening "), first + self.proc.stderr.read()
        self.url = f"http://127.0.0.1:{int(first.split()[1])}/twiml"

    def records(self, kind):
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [r for r in map(json.loads, lines) if r["kind"] == kind]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def dialtone(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    return subprocess.run([BIN, *args, "--auth-token", TOKEN], capture_output=True, text=True,
                          timeout=120, env=env)


def test_first_tokens_are_timed_from_the_true_end_of_speech(tmp_path):
    app = RelayApp(tmp_path, handoff_after=2)
    try:
        out = dialtone("call", "--webhook", app.url, "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        relay = report["relay"][0]
        assert relay["end"]["status"] == "ended", relay["end"]
        assert relay["end"]["handoff_data"] == json.dumps({"reason": "agent"})
        # The app judged every request genuine.
        assert [r["valid"] for r in app.records("webhook")] == [True]
        assert [r["valid"] for r in app.records("upgrade")] == [True]
        setup = app.records("setup")[0]["message"]
        assert setup["callSid"] == report["call_sid"] and setup["customParameters"] == {"customer": "42"}
        # What dialtone measured after each prompt is the app's own thinking, give or take
        # the loopback and the event loops.
        own = [r["think_ms"] for r in app.records("first_token")]
        assert len(own) == len(relay["turns"]) == 2, (own, relay["turns"])
        for turn, think in zip(relay["turns"], own):
            measured = turn["first_token_ms"] - turn["prompt_ms"]
            assert abs(measured - think) < 25, (turn, think)
            assert turn["tokens"] == 5
        action = app.records("action")[0]["form"]
        assert action["SessionStatus"] == "ended" and action["SessionId"].startswith("VX")
        assert action["HandoffData"] == json.dumps({"reason": "agent"})

        # The simulated recognizer and synthesizer are the user's to set.
        out = dialtone("call", "--webhook", app.url, "--json", "--recognition-delay", "200ms",
                       "--tts-latency", "50ms")
        assert out.returncode == 0, out.stdout + out.stderr
        for turn in json.loads(out.stdout)["relay"][0]["turns"]:
            assert turn["prompt_ms"] == 200, turn
            assert abs(turn["speech_ms"] - turn["first_token_ms"] - 50) < 1, turn

        # The timeline a user reads.
        out = dialtone("call", "--webhook", app.url)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "ConversationRelay session ended" in out.stdout, out.stdout
        assert "relay    prompt turn 1:" in out.stdout, out.stdout
        assert "relay    first token for turn 1:" in out.stdout, out.stdout
        assert "relay    session ended, handoff" in out.stdout, out.stdout
    finally:
        app.close()
