"""A voice-AI app that hands the caller to a human, written the way Twilio's tutorials write
one (FastAPI, the official library's VoiceResponse and RequestValidator): its bot streams
with the caller, then closes the stream to transfer, and the <Connect> action answers
<Dial> to the agent's number. The agent's number is served by the same process: its app
streams a greeting (AGENT_GREETING, μ-law bytes), paced as speech, and keeps what it hears
from the caller (AGENT_HEARD). Every webhook and upgrade is checked against the URL the app
is reached at; each request is logged as a JSON line (APP_LOG).

Prints `listening PORT` once it accepts connections on 127.0.0.1."""

import asyncio
import base64
import json
import os

from fastapi import FastAPI, Request, Response, WebSocket
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from tutorial_app import checked, log, serve, validator, xml

AGENT_NUMBER = os.environ["AGENT_NUMBER"]
# A supervisor's phone: a number dialtone does not host (it plays its far-end audio).
SUPERVISOR_NUMBER = os.environ.get("SUPERVISOR_NUMBER", "+15557003000")
BOT_LISTENS_FRAMES = int(os.environ.get("BOT_LISTENS_FRAMES", "50"))
app = FastAPI()


@app.post("/bot")
async def bot(request: Request):
    if await checked(request, "bot") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    connect = Connect(action=f"http://{request.url.netloc}/transfer")
    connect.stream(url=f"ws://{request.url.netloc}/bot-ws")
    response.append(connect)
    return xml(response)


@app.post("/transfer")
async def transfer(request: Request):
    if await checked(request, "transfer") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    dial = Dial(action=f"http://{request.url.netloc}/dial-done", timeout=20)
    dial.number(AGENT_NUMBER, status_callback=f"http://{request.url.netloc}/leg-status",
                status_callback_event="initiated ringing answered completed")
    response.append(dial)
    return xml(response)


@app.post("/dial-done")
async def dial_done(request: Request):
    if await checked(request, "dial-done") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.hangup()
    return xml(response)


@app.post("/screened")
async def screened(request: Request):
    """A second number: the caller rings on (answerOnBridge) while the supervisor is dialed,
    screened by a whisper, and the bridge is recorded in two channels."""
    if await checked(request, "screened") is None:
        return Response(status_code=403)
    base = f"http://{request.url.netloc}"
    response = VoiceResponse()
    dial = Dial(action=f"{base}/screened-done", answer_on_bridge=True, ring_tone="uk",
                record="record-from-answer-dual", recording_status_callback=f"{base}/rec-status",
                recording_status_callback_event="in-progress completed")
    dial.number(SUPERVISOR_NUMBER, url=f"{base}/whisper")
    response.append(dial)
    return xml(response)


@app.post("/whisper")
async def whisper(request: Request):
    if await checked(request, "whisper") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.say("A customer is waiting")
    return xml(response)


@app.post("/screened-done")
async def screened_done(request: Request):
    if await checked(request, "screened-done") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.hangup()
    return xml(response)


@app.post("/rec-status")
async def rec_status(request: Request):
    await checked(request, "rec-status")
    return Response(status_code=204)


@app.post("/caller-status")
async def caller_status(request: Request):
    await checked(request, "caller-status")
    return Response(status_code=204)


@app.post("/leg-status")
async def leg_status(request: Request):
    await checked(request, "leg-status")
    return Response(status_code=204)


@app.post("/agent")
async def agent(request: Request):
    if await checked(request, "agent") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    connect = Connect()
    connect.stream(url=f"ws://{request.url.netloc}/agent-ws")
    response.append(connect)
    return xml(response)


def upgrade_valid(ws: WebSocket) -> bool:
    url = f"ws://{ws.headers['host']}{ws.url.path}"
    return validator.validate(url, {}, ws.headers.get("x-twilio-signature", ""))


@app.websocket("/bot-ws")
async def bot_ws(ws: WebSocket):
    if not upgrade_valid(ws):
        await ws.close(code=1008)
        return
    await ws.accept()
    frames = 0
    while frames < BOT_LISTENS_FRAMES:
        msg = json.loads(await ws.receive_text())
        if msg["event"] == "media":
            frames += 1
        elif msg["event"] == "stop":
            return
    # The bot decides a human should take over: it closes its stream, and the <Connect>
    # action transfers.
    log(kind="bot-transfers", frames=frames)
    await ws.close()


@app.websocket("/agent-ws")
async def agent_ws(ws: WebSocket):
    if not upgrade_valid(ws):
        await ws.close(code=1008)
        return
    await ws.accept()
    heard = bytearray()
    sid = None
    while sid is None:
        msg = json.loads(await ws.receive_text())
        if msg["event"] == "start":
            sid = msg["streamSid"]

    async def greet():
        greeting = open(os.environ["AGENT_GREETING"], "rb").read()
        for i in range(0, len(greeting), 800):  # 100 ms a message, sent as it would be spoken
            chunk = base64.b64encode(greeting[i:i + 800]).decode()
            await ws.send_text(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": chunk}}))
            await asyncio.sleep(0.09)
        await ws.send_text(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "greeted"}}))

    task = asyncio.create_task(greet())
    try:
        while True:
            msg = json.loads(await ws.receive_text())
            if msg["event"] == "media":
                heard.extend(base64.b64decode(msg["media"]["payload"]))
            elif msg["event"] == "stop":
                break
    except Exception:
        pass
    task.cancel()
    with open(os.environ["AGENT_HEARD"], "wb") as f:
        f.write(heard)
    log(kind="agent-heard", bytes=len(heard))


if __name__ == "__main__":
    serve(app)
