"""A ConversationRelay app written the way Twilio's tutorials write it (FastAPI, the official
library's VoiceResponse for the TwiML): it validates the signature of its webhook and of the
WebSocket upgrade against its own URLs, streams its answer to each final prompt as tokens
after "thinking" (THINK_MS), ends each answer with an empty last token, and logs as JSON lines
(APP_LOG) when it received each prompt and sent each first token, on its own clock.

Prints `listening PORT` once it accepts connections on 127.0.0.1."""

import asyncio
import json
import os
import socket
import sys
import time

import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

TOKEN = os.environ["TWILIO_AUTH_TOKEN"]
THINK_MS = int(os.environ.get("THINK_MS", "150"))
TOKEN_GAP_MS = 25
HANDOFF_AFTER = int(os.environ.get("HANDOFF_AFTER", "0"))  # 0: never send `end`
validator = RequestValidator(TOKEN)
app = FastAPI()
state = {"base": None}


def log(**record):
    with open(os.environ["APP_LOG"], "a") as f:
        f.write(json.dumps(record) + "\n")


@app.post("/twiml")
async def twiml(request: Request):
    form = dict(await request.form())
    valid = validator.validate(str(request.url), form, request.headers.get("x-twilio-signature", ""))
    log(kind="webhook", valid=valid)
    if not valid:
        return Response(status_code=403)
    response = VoiceResponse()
    connect = Connect(action=f"{state['base']}/action")
    relay = connect.conversation_relay(url=f"ws://{request.url.netloc}/ws",
                                       welcome_greeting="Hi! Ask me anything.",
                                       interruptible="speech", dtmf_detection=True)
    relay.parameter(name="customer", value="42")
    response.append(connect)
    return Response(content=str(response), media_type="application/xml")


@app.post("/action")
async def action(request: Request):
    form = dict(await request.form())
    log(kind="action", form=form)
    response = VoiceResponse()
    response.hangup()
    return Response(content=str(response), media_type="application/xml")


@app.websocket("/ws")
async def ws(websocket: WebSocket):
    url = f"ws://{websocket.url.netloc}/ws"
    valid = validator.validate(url, {}, websocket.headers.get("x-twilio-signature", ""))
    log(kind="upgrade", valid=valid)
    if not valid:
        await websocket.close()
        return
    await websocket.accept()
    answered = 0
    try:
        while True:
            message = json.loads(await websocket.receive_text())
            if message["type"] == "setup":
                log(kind="setup", message=message)
            elif message["type"] == "prompt" and message["last"]:
                received = time.monotonic()
                answered += 1
                await asyncio.sleep(THINK_MS / 1000)  # the LLM
                first = True
                for token in ["Sure, ", "your order ", "ships ", "today."]:
                    await websocket.send_text(json.dumps({"type": "text", "token": token, "last": False}))
                    if first:
                        log(kind="first_token", prompt=message["voicePrompt"],
                            think_ms=(time.monotonic() - received) * 1000)
                        first = False
                    await asyncio.sleep(TOKEN_GAP_MS / 1000)
                await websocket.send_text(json.dumps({"type": "text", "token": "", "last": True}))
                if answered == HANDOFF_AFTER:
                    await websocket.send_text(json.dumps({"type": "end", "handoffData": json.dumps({"reason": "agent"})}))
            elif message["type"] == "interrupt":
                log(kind="interrupt", message=message)
    except Exception:  # the socket closed
        pass


def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    state["base"] = f"http://127.0.0.1:{port}"
    print(f"listening {port}", flush=True)
    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
