"""A voice app shaped like a production voice-AI bot, as it is deployed behind a tunnel.

FastAPI on uvicorn, serving TLS itself; everything about it is written for its *public* URL:
- the webhook and the Media Streams upgrade are validated with the official twilio
  RequestValidator against the public https:// / wss:// URL (as apps behind ngrok or a
  Tailscale funnel do), and refused with 403 otherwise;
- its TwiML names its stream as wss://PUBLIC-HOST/ws;
- an energy VAD with hangover finds the caller's turns; each reply comes after a short
  "LLM" delay and is paced on the wall clock, 20 ms per frame, then marked;
- at the end of the session (the caller idle after the last reply played) it hangs up its
  call through Twilio's REST API with the official client, as frameworks' serializers do.

Configured by the environment: PUBLIC_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
TWILIO_API_BASE (the REST base; Twilio's when unset), TLS_CERT, TLS_KEY, APP_LOG (a JSON-lines
file of what it judged). Prints `listening PORT` once it serves on 127.0.0.1.
"""

import asyncio
import base64
import json
import math
import os
import socket
import sys
import urllib.parse

import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket
from twilio.request_validator import RequestValidator
from twilio.rest import Client

PUBLIC_URL = os.environ["PUBLIC_URL"].rstrip("/")
PUBLIC_HOST = urllib.parse.urlsplit(PUBLIC_URL).netloc
TOKEN = os.environ["TWILIO_AUTH_TOKEN"]
ACCOUNT_SID = os.environ["TWILIO_ACCOUNT_SID"]
API_BASE = os.environ.get("TWILIO_API_BASE")
LOG = os.environ.get("APP_LOG")
IDLE_HANGUP_S = float(os.environ.get("IDLE_HANGUP_S", "1.5"))

validator = RequestValidator(TOKEN)
app = FastAPI()


def log(**record):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")


def mulaw_decode(b: int) -> int:
    b = ~b & 0xFF
    sign, exponent, mantissa = b & 0x80, (b >> 4) & 0x07, b & 0x0F
    sample = ((mantissa << 3) + 0x84) << exponent
    sample -= 0x84
    return -sample if sign else sample


def mulaw_encode(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent = 7
    for e in range(7, -1, -1):
        if sample & (0x4000 >> (7 - e)):
            exponent = e
            break
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


DECODE = [mulaw_decode(b) for b in range(256)]
# The reply: 1 s of a 330 Hz tone, as 20 ms frames (160 bytes each).
REPLY = bytes(mulaw_encode(int(6000 * math.sin(2 * math.pi * 330 * i / 8000))) for i in range(8000))
REPLY_FRAMES = [base64.b64encode(REPLY[i:i + 160]).decode() for i in range(0, len(REPLY), 160)]


@app.post("/voice")
async def voice(request: Request):
    form = dict(await request.form())
    url = PUBLIC_URL + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    valid = validator.validate(url, form, request.headers.get("x-twilio-signature", ""))
    log(kind="webhook", url=url, valid=valid, host=request.headers.get("host"),
        forwarded_proto=request.headers.get("x-forwarded-proto"), call_sid=form.get("CallSid"))
    if not valid:
        return Response("invalid signature", status_code=403)
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Connect><Stream url="wss://{PUBLIC_HOST}/ws"><Parameter name="bot" value="prod"/>'
        "</Stream></Connect></Response>"
    )
    return Response(twiml, media_type="application/xml")


def hang_up(call_sid: str):
    """The framework's end of session: the call is hung up through the REST API."""
    client = Client(ACCOUNT_SID, TOKEN)
    if API_BASE:
        client.api.base_url = API_BASE
    try:
        call = client.calls(call_sid).update(status="completed")
        log(kind="rest_hangup", call_sid=call_sid, ok=True, status=call.status)
    except Exception as e:  # the session ends either way, as frameworks do
        log(kind="rest_hangup", call_sid=call_sid, ok=False, error=str(e))


@app.websocket("/ws")
async def media(ws: WebSocket):
    url = f"wss://{PUBLIC_HOST}/ws"
    valid = validator.validate(url, {}, ws.headers.get("x-twilio-signature", ""))
    log(kind="upgrade", url=url, valid=valid, host=ws.headers.get("host"))
    if not valid:
        await ws.close()  # before accept: the upgrade is refused with 403
        return
    await ws.accept()
    state = {"sid": None, "call": None, "speech": 0, "silence": 0, "in_turn": False,
             "turns": 0, "replying": None, "pending_marks": set(), "idle_since": None,
             "hung_up": False}

    async def reply(n: int):
        await asyncio.sleep(0.15)  # the LLM and TTS
        for frame in REPLY_FRAMES:  # paced on the wall clock, as TTS output streams
            await ws.send_text(json.dumps({"event": "media", "streamSid": state["sid"],
                                           "media": {"payload": frame}}))
            await asyncio.sleep(0.02)
        name = f"reply-{n}"
        state["pending_marks"].add(name)
        await ws.send_text(json.dumps({"event": "mark", "streamSid": state["sid"],
                                       "mark": {"name": name}}))

    try:
        while True:
            msg = json.loads(await ws.receive_text())
            event = msg.get("event")
            if event == "start":
                state["sid"] = msg["start"]["streamSid"]
                state["call"] = msg["start"]["callSid"]
                log(kind="start", call_sid=state["call"],
                    parameters=msg["start"].get("customParameters", {}))
            elif event == "media":
                pcm = base64.b64decode(msg["media"]["payload"])
                level = sum(abs(DECODE[b]) for b in pcm) / max(len(pcm), 1)
                if level > 500:
                    state["speech"] += 1
                    state["silence"] = 0
                    state["idle_since"] = None
                    if state["speech"] >= 5:
                        state["in_turn"] = True
                else:
                    state["silence"] += 1
                    if state["silence"] >= 8:
                        state["speech"] = 0
                    # 400 ms of hangover ends the turn.
                    if state["in_turn"] and state["silence"] >= 20:
                        state["in_turn"] = False
                        state["turns"] += 1
                        state["replying"] = asyncio.create_task(reply(state["turns"]))
                    idle = (state["turns"] > 0 and not state["in_turn"]
                            and not state["pending_marks"]
                            and (state["replying"] is None or state["replying"].done()))
                    if idle and state["idle_since"] is None:
                        state["idle_since"] = asyncio.get_running_loop().time()
                    if (idle and not state["hung_up"] and
                            asyncio.get_running_loop().time() - state["idle_since"] >= IDLE_HANGUP_S):
                        state["hung_up"] = True
                        await asyncio.to_thread(hang_up, state["call"])
            elif event == "mark":
                state["pending_marks"].discard(msg["mark"]["name"])
            elif event == "stop":
                break
    except Exception:  # the socket closed
        pass
    log(kind="session_end", call_sid=state["call"], turns=state["turns"])


def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before saying so: a connection between bind and uvicorn's own listen() would
    # be refused (a first call failing at its webhook on a busy machine).
    sock.listen(128)
    print(f"listening {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, ssl_certfile=os.environ["TLS_CERT"], ssl_keyfile=os.environ["TLS_KEY"],
                            log_level="warning", ws="websockets-sansio")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
