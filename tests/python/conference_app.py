"""A support line that puts every caller into one conference, written the way Twilio's
tutorials write one (FastAPI, the official library's VoiceResponse and RequestValidator):
`<Dial action><Conference statusCallback …>support</Conference></Dial>`, hanging up after
the conference. Every request is checked against the URL the app is reached at and logged
as a JSON line (APP_LOG): the voice webhook, the conference's status callbacks, the dial's
action and a REST-added participant's call progress.

Prints `listening PORT` once it accepts connections on 127.0.0.1."""

import asyncio
import json
import os
import socket

import uvicorn
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, VoiceResponse

validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
app = FastAPI()


async def checked(request: Request, kind: str) -> bool:
    form = dict(await request.form())
    valid = validator.validate(str(request.url), form, request.headers.get("x-twilio-signature", ""))
    with open(os.environ["APP_LOG"], "a") as f:
        f.write(json.dumps({"kind": kind, "valid": valid, "form": form}) + "\n")
    return valid


def xml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")


@app.post("/support")
async def support(request: Request):
    if not await checked(request, "support"):
        return Response(status_code=403)
    base = f"http://{request.url.netloc}"
    response = VoiceResponse()
    dial = Dial(action=f"{base}/conference-done")
    dial.conference("support", beep=False, status_callback=f"{base}/conference-events",
                    status_callback_event="start end join leave mute hold")
    response.append(dial)
    return xml(response)


@app.post("/conference-done")
async def conference_done(request: Request):
    if not await checked(request, "conference-done"):
        return Response(status_code=403)
    response = VoiceResponse()
    response.hangup()
    return xml(response)


@app.post("/conference-events")
async def conference_events(request: Request):
    return Response(status_code=204 if await checked(request, "conference-events") else 403)


@app.post("/participant-status")
async def participant_status(request: Request):
    return Response(status_code=204 if await checked(request, "participant-status") else 403)


def main():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))

    async def serve():
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"listening {sock.getsockname()[1]}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
