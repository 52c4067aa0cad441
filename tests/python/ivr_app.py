"""An IVR written the way Twilio's tutorials write one (FastAPI, the official library's
VoiceResponse and RequestValidator): it asks how it can help with a speech <Gather>,
branches on SpeechResult, and takes a voicemail with <Record transcribe>; or, on /live, it
starts real-time <Transcription> and keeps the caller's words. Every request and callback
is checked against the URL the app is reached at and logged as a JSON line (APP_LOG).

Prints `listening PORT` once it accepts connections on 127.0.0.1."""

from fastapi import FastAPI, Request, Response
from twilio.twiml.voice_response import Gather, Start, VoiceResponse

from tutorial_app import checked, serve, xml

app = FastAPI()


def base(request: Request) -> str:
    return f"http://{request.url.netloc}"


@app.post("/ivr")
async def ivr(request: Request):
    if await checked(request, "ivr") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    gather = Gather(input="speech", speech_timeout="auto", action=f"{base(request)}/route",
                    partial_result_callback=f"{base(request)}/partial", hints="message, billing")
    gather.say("How can I help?")
    response.append(gather)
    response.say("Sorry, I did not hear you. Goodbye.")
    return xml(response)


@app.post("/partial")
async def partial(request: Request):
    await checked(request, "partial")
    return Response(status_code=204)


@app.post("/route")
async def route(request: Request):
    form = await checked(request, "route")
    if form is None:
        return Response(status_code=403)
    said = form.get("SpeechResult", "").lower()
    response = VoiceResponse()
    if "message" in said:
        response.say("Leave a message after the beep.")
        response.record(action=f"{base(request)}/voicemail-done", timeout=2, max_length=30,
                        transcribe=True, transcribe_callback=f"{base(request)}/transcribed",
                        recording_status_callback=f"{base(request)}/recording-status")
    elif "bill" in said:
        response.say("Connecting you to billing.")
    else:
        response.say("Sorry, I can only take messages. Goodbye.")
    return xml(response)


@app.post("/voicemail-done")
async def voicemail_done(request: Request):
    if await checked(request, "voicemail-done") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.say("Thank you. Goodbye.")
    response.hangup()
    return xml(response)


@app.post("/transcribed")
async def transcribed(request: Request):
    await checked(request, "transcribed")
    return Response(status_code=204)


@app.post("/recording-status")
async def recording_status(request: Request):
    await checked(request, "recording-status")
    return Response(status_code=204)


@app.post("/live")
async def live(request: Request):
    """Starts real-time transcription of the caller, then listens a while."""
    if await checked(request, "live") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    start = Start()
    start.transcription(name="live", track="inbound_track", partial_results=True,
                        status_callback_url=f"{base(request)}/transcription")
    response.append(start)
    response.pause(length=12)
    return xml(response)


@app.post("/transcription")
async def transcription(request: Request):
    await checked(request, "transcription")
    return Response(status_code=204)


if __name__ == "__main__":
    serve(app)
