"""A call-center app for queues, written the way Twilio's tutorials write one (FastAPI, the
official library's VoiceResponse and RequestValidator): callers to the support number are
put in a queue (`<Enqueue>`, `?queue=` names it) and hear the `waitUrl` document while they
wait; the agent's number answers with `<Dial><Queue>` and talks to the caller at the front.
A REST dequeue sends a caller to `/dequeued`. Every webhook is checked against the URL the
app is reached at and logged as a JSON line (APP_LOG).

Prints `listening PORT` once it accepts connections on 127.0.0.1."""

from fastapi import FastAPI, Request, Response
from twilio.twiml.voice_response import Dial, VoiceResponse

from tutorial_app import checked, serve, xml

app = FastAPI()


@app.post("/caller")
async def caller(request: Request):
    if await checked(request, "caller") is None:
        return Response(status_code=403)
    base = f"http://{request.url.netloc}"
    response = VoiceResponse()
    response.enqueue(request.query_params.get("queue", "support"), action=f"{base}/caller-done",
                     method="POST", wait_url=f"{base}/wait", wait_url_method="POST")
    return xml(response)


@app.post("/wait")
async def wait(request: Request):
    if await checked(request, "wait") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.pause(length=1)
    return xml(response)


@app.post("/caller-done")
async def caller_done(request: Request):
    if await checked(request, "caller-done") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.hangup()
    return xml(response)


@app.post("/agent")
async def agent(request: Request):
    if await checked(request, "agent") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    dial = Dial(action=f"http://{request.url.netloc}/agent-done", timeout=10)
    dial.queue("support")
    response.append(dial)
    return xml(response)


@app.post("/agent-done")
async def agent_done(request: Request):
    if await checked(request, "agent-done") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.hangup()
    return xml(response)


@app.post("/dequeued")
async def dequeued(request: Request):
    if await checked(request, "dequeued") is None:
        return Response(status_code=403)
    response = VoiceResponse()
    response.say("An agent will call you back.")
    response.hangup()
    return xml(response)


if __name__ == "__main__":
    serve(app)
