"""ConversationRelay against an app built like Twilio's tutorials (relay_app.py: FastAPI, the
official VoiceResponse, signatures checked with the official RequestValidator): `dialtone call`
shows each turn's first token timed from the caller's true end of speech, and the app's own
thinking time is what dialtone measured after its prompt."""

import json
import os
import subprocess
import sys
import time

BIN = os.environ.get("DIALTONE_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/dialtone"))
HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "relay-app-token-456"
THINK_MS = 150


class RelayApp:
    def __init__(self, tmp_path, handoff_after=0, token_gap_ms=25):
        self.log_path = tmp_path / "relay.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
        env |= {"TWILIO_AUTH_TOKEN": TOKEN, "APP_LOG": str(self.log_path), "THINK_MS": str(THINK_MS),
                "HANDOFF_AFTER": str(handoff_after), "TOKEN_GAP_MS": str(token_gap_ms)}
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


def dialtone(*args, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    return subprocess.run([BIN, *args, "--auth-token", TOKEN], capture_output=True, text=True,
                          timeout=timeout, env=env)


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
            # When the prompt really went out: its due time, plus the timer's wake-up.
            assert 200 <= turn["prompt_ms"] < 210, turn
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


def test_a_caller_talking_over_the_answer_interrupts_it(tmp_path):
    # The `barge_in` caller starts its second turn 800 ms after its first ends. With a quick
    # recognizer (prompt 100 ms after the end of speech), the app's 150 ms of thinking and a
    # synthesizer heard 50 ms after each token, the answer has played 500 ms when the caller
    # cuts in; the app streams a token every 150 ms, so it is still talking and must stop.
    app = RelayApp(tmp_path, token_gap_ms=150)
    try:
        out = dialtone("call", "--webhook", app.url, "--json", "--script", "barge_in",
                       "--recognition-delay", "100ms", "--tts-latency", "50ms")
        assert out.returncode == 0, out.stdout + out.stderr
        relay = json.loads(out.stdout)["relay"][0]
        answer = "Sure, your order ships today."
        # The caller cuts the greeting (turn 1), then each answer (turns 2 and 3). What the
        # app was told, and what dialtone reports, agree: over the first answer, the caller
        # heard its beginning for about half a second.
        told = [r["message"] for r in app.records("interrupt")]
        assert len(told) == 3 and "Hi! Ask me anything.".startswith(told[0]["utteranceUntilInterrupt"]), told
        first = told[1]
        assert set(first) == {"type", "utteranceUntilInterrupt", "durationUntilInterruptMs"}, first
        heard = first["utteranceUntilInterrupt"]
        assert heard and answer.startswith(heard), first
        assert abs(first["durationUntilInterruptMs"] - 500) <= 40, first
        assert [(i["utterance"], i["duration_ms"]) for i in relay["interrupts"]] == [
            (m["utteranceUntilInterrupt"], m["durationUntilInterruptMs"]) for m in told]
        # The app stopped: the first answer's last token never came (nor any token after the
        # interrupt but one already on the wire), and the next prompt was answered in full.
        assert relay["interrupts"][1]["tokens_after"] <= 1, relay["interrupts"]
        turns = relay["turns"]
        assert turns[0]["first_token_ms"] is not None and turns[0]["last_token_ms"] is None, turns
        assert turns[1]["tokens"] == 5 and turns[1]["last_token_ms"] is not None, turns

        # The timeline says it in words.
        out = dialtone("call", "--webhook", app.url, "--script", "barge_in",
                       "--recognition-delay", "100ms", "--tts-latency", "50ms")
        assert out.returncode == 0, out.stdout + out.stderr
        line = [l for l in out.stdout.splitlines() if "relay    interrupt after" in l and f'heard "{heard}"' in l]
        assert len(line) == 1, out.stdout
    finally:
        app.close()


def test_two_hundred_calls_load_with_a_latency_table(tmp_path):
    app = RelayApp(tmp_path)
    try:
        out_dir = tmp_path / "out"
        out = dialtone("load", "--webhook", app.url, "--calls", "200", "--concurrency", "200",
                       "--ramp", "2s", "--out", str(out_dir), timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        summary = json.loads((out_dir / "summary.json").read_text())
        assert summary["calls"]["succeeded"] == 200, summary["outcomes"]
        relay = summary["relay"]
        # `hello` has two turns; each was prompted and answered in full.
        assert relay["sessions"] == 200 and relay["completed"] == 200, relay
        assert relay["prompts"] == relay["answered"] == 400 and relay["unfinished"] == 0, relay
        assert relay["tokens"] == 400 * 5, relay
        m = summary["metrics"]
        # The first token comes the recognizer's 500 ms plus the app's 150 ms of thinking
        # after the true end of speech; under 200 calls at once the app may lag a little.
        first = m["relay_first_token"]
        assert first["count"] == 400 and 650 <= first["p50_ms"] < 900, first
        assert m["relay_last_token"]["p50_ms"] > first["p50_ms"]
        assert abs(m["relay_heard"]["p50_ms"] - first["p50_ms"] - 200) < 10, m["relay_heard"]
        # A count, read to the HDR histogram's precision.
        assert round(m["relay_tokens"]["p50_ms"]) == 5 and round(m["relay_tokens"]["max_ms"]) == 5
        # The table a user reads.
        for row in ("relay_first_token", "relay_last_token", "relay_heard"):
            assert f"  {row}" in out.stdout, out.stdout
        assert "conversation relay  200 sessions" in out.stdout, out.stdout
        assert "relay_tokens" not in out.stdout.split("conversation relay")[0], out.stdout
    finally:
        app.close()


def test_serve_runs_a_hosted_numbers_relay_with_the_caller_legs_words(tmp_path):
    # `dialtone serve` hosts a number whose voice URL is the relay app; a call created with the
    # official client speaks TwiML <Say>s to it: their words are the prompts the app gets.
    from twilio.rest import Client
    from twilio.twiml.voice_response import VoiceResponse

    app = RelayApp(tmp_path)
    ac = "AC" + "5" * 32
    cfg = tmp_path / "dialtone.toml"
    cfg.write_text(f'ring_ms = 100\n[[accounts]]\nsid = "{ac}"\nauth_token = "{TOKEN}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    server = subprocess.Popen([BIN, "serve", "--port", "0", "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = server.stdout.readline()
        assert first.startswith("dialtone serve listening on "), first + server.stderr.read()
        client = Client(ac, TOKEN)
        client.api.base_url = first.split()[-1]
        number = client.incoming_phone_numbers.create(phone_number="+15557650000", voice_url=app.url)
        caller = VoiceResponse()
        caller.say("Where is my order?")
        caller.pause(length=2)
        caller.say("Thank you, goodbye.")
        caller.pause(length=2)
        call = client.calls.create(to=number.phone_number, from_="+15005550006", twiml=str(caller))
        deadline = time.time() + 60
        while time.time() < deadline and client.calls(call.sid).fetch().status not in (
                "completed", "failed", "busy", "no-answer", "canceled"):
            time.sleep(0.2)
        assert client.calls(call.sid).fetch().status == "completed"
        assert [r["valid"] for r in app.records("upgrade")] == [True]
        setup = app.records("setup")[0]["message"]
        legs = {c.sid: c for c in client.calls.list(to=number.phone_number)}
        assert legs[setup["callSid"]].direction == "inbound", setup
        assert [r["prompt"] for r in app.records("first_token")] == ["Where is my order?", "Thank you, goodbye."]
        deadline = time.time() + 10
        while time.time() < deadline and not app.records("action"):
            time.sleep(0.1)
        action = app.records("action")[0]["form"]
        assert action["SessionStatus"] == "completed" and action["CallSid"] == setup["callSid"], action
    finally:
        server.terminate()
        server.wait(timeout=20)
        app.close()
