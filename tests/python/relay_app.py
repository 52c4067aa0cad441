"""A ConversationRelay app written the way Twilio's tutorials write it (FastAPI, the official
library's VoiceResponse for the TwiML): it validates the signature of its webhook and of the
WebSocket upgrade against its own URLs, streams its answer to each final prompt as tokens
after "thinking" (THINK_MS) with TOKEN_GAP_MS between tokens, ends each answer with an empty
last token, stops the answer being streamed on `interrupt` (the tutorials cancel the LLM's
stream), and logs as JSON lines (APP_LOG) when it received each prompt and sent each first
token, on its own clock, and each interrupt with the tokens it had sent by then.

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
TOKEN_GAP_MS = int(os.environ.get("TOKEN_GAP_MS", "25"))
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
    talking = None  # the answer being streamed
    sent = []  # its tokens so far

    async def answer(prompt, received, handoff):
        await asyncio.sleep(THINK_MS / 1000)  # the LLM
        for i, token in enumerate(["Sure, ", "your order ", "ships ", "today."]):
            await websocket.send_text(json.dumps({"type": "text", "token": token, "last": False}))
            sent.append(token)
            if i == 0:
                log(kind="first_token", prompt=prompt, think_ms=(time.monotonic() - received) * 1000)
            await asyncio.sleep(TOKEN_GAP_MS / 1000)
        await websocket.send_text(json.dumps({"type": "text", "token": "", "last": True}))
        if handoff:
            await websocket.send_text(json.dumps({"type": "end", "handoffData": json.dumps({"reason": "agent"})}))

    try:
        while True:
            message = json.loads(await websocket.receive_text())
            if message["type"] == "setup":
                log(kind="setup", message=message)
            elif message["type"] == "prompt" and message["last"]:
                answered += 1
                if talking:
                    talking.cancel()
                sent.clear()
                talking = asyncio.create_task(answer(message["voicePrompt"], time.monotonic(),
                                                     answered == HANDOFF_AFTER))
            elif message["type"] == "interrupt":
                if talking:
                    talking.cancel()
                log(kind="interrupt", message=message, tokens_sent=list(sent))
    except Exception:  # the socket closed
        if talking:
            talking.cancel()


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
