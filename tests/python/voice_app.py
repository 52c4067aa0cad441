"""A minimal voice app written the way Twilio's docs teach: it checks every request, and the
Media Streams upgrade, with the official twilio helper library's RequestValidator.

Run standalone: python voice_app.py TOKEN  (prints its port)."""

import asyncio
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import websockets
from twilio.request_validator import RequestValidator


class VoiceApp:
    """HTTP webhook + WebSocket stream endpoint on loopback ports, recording what it judged."""

    def __init__(self, token: str):
        self.validator = RequestValidator(token)
        self.webhook_checks = []  # (url, valid)
        self.ws_checks = []
        self.ws_events = []
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run_ws, args=(started,), daemon=True).start()
        started.wait(10)
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self, params):
                url = f"http://127.0.0.1:{app.http_port}{self.path}"
                sig = self.headers.get("X-Twilio-Signature", "")
                valid = app.validator.validate(url, params, sig)
                app.webhook_checks.append((url, valid, params))
                if not valid:
                    self.send_response(403)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"invalid signature")
                    return
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?><Response>'
                    f'<Connect><Stream url="ws://127.0.0.1:{app.ws_port}/media">'
                    '<Parameter name="who" value="python" /></Stream></Connect></Response>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(n).decode(), keep_blank_values=True)
                self._handle({k: v[0] for k, v in form.items()})

            def do_GET(self):
                # For GET, Twilio signs the full URL (query included) with no body params.
                self._handle({})

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def _run_ws(self, started):
        asyncio.set_event_loop(self.loop)

        async def process_request(connection, request):
            url = f"ws://127.0.0.1:{self.ws_port}{request.path}"
            sig = request.headers.get("X-Twilio-Signature", "")
            valid = self.validator.validate(url, {}, sig)
            self.ws_checks.append((url, valid))
            if not valid:
                return connection.respond(403, "invalid signature\n")
            return None

        async def handler(ws):
            stream_sid = None
            async for raw in ws:
                msg = json.loads(raw)
                self.ws_events.append(msg["event"])
                if msg["event"] == "start":
                    stream_sid = msg["streamSid"]
                    payload = "f39/" * 400  # 1200 bytes of mu-law: 150 ms
                    await ws.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                              "media": {"payload": payload}}))
                    await ws.send(json.dumps({"event": "mark", "streamSid": stream_sid,
                                              "mark": {"name": "greeting-done"}}))
                elif msg["event"] == "stop":
                    break

        async def main():
            server = await websockets.serve(handler, "127.0.0.1", 0, process_request=process_request)
            self.ws_port = server.sockets[0].getsockname()[1]
            started.set()
            await asyncio.Future()

        self.loop.run_until_complete(main())

    def close(self):
        self.http.shutdown()
