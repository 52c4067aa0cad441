"""What every test app here shares, written as Twilio's tutorials write it: the official
RequestValidator checks each request against the URL the app is reached at, each request is
logged as a JSON line (APP_LOG: kind, valid, form, query), TwiML goes out as XML, and the app
serves on an ephemeral 127.0.0.1 port it prints as `listening PORT`."""

import asyncio
import json
import os
import socket

import uvicorn
from fastapi import Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])


def log(**record):
    with open(os.environ["APP_LOG"], "a") as f:
        f.write(json.dumps(record) + "\n")


async def checked(request: Request, kind: str):
    """The request's form when its signature is valid for its URL, else None (logged either way)."""
    form = dict(await request.form())
    valid = validator.validate(str(request.url), form, request.headers.get("x-twilio-signature", ""))
    log(kind=kind, valid=valid, form=form, query=dict(request.query_params))
    return form if valid else None


def xml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")


def serve(app):
    """Serves `app` on 127.0.0.1 at a free port, printing `listening PORT` once it accepts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))

    async def run():
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"listening {sock.getsockname()[1]}", flush=True)
        await task

    asyncio.run(run())
