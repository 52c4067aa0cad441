"""A support line that puts every caller into one conference, written the way Twilio's
tutorials write one (FastAPI, the official library's VoiceResponse and RequestValidator):
`<Dial action><Conference statusCallback …>support</Conference></Dial>`, hanging up after
the conference. Every request is checked against the URL the app is reached at and logged
as a JSON line (APP_LOG): the voice webhook, the conference's status callbacks, the dial's
action and a REST-added participant's call progress.

Prints `listening PORT` once it accepts connections on 127.0.0.1."""

from fastapi import FastAPI, Request, Response
from twilio.twiml.voice_response import Dial, VoiceResponse

from tutorial_app import checked, serve, xml

app = FastAPI()


@app.post("/support")
async def support(request: Request):
    if await checked(request, "support") is None:
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
    if await checked(request, "conference-done") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.hangup()
    return xml(response)


@app.post("/conference-events")
async def conference_events(request: Request):
    return Response(status_code=204 if await checked(request, "conference-events") is not None else 403)


@app.post("/participant-status")
async def participant_status(request: Request):
    return Response(status_code=204 if await checked(request, "participant-status") is not None else 403)


if __name__ == "__main__":
    serve(app)
