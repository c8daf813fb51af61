"""The small HTTP server a node's ``http`` backend or scorer posts JSON to, run in a thread."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

#: Largest request body read (a query's input travels inside it).
MAX_BODY = 16 * 1024 * 1024

#: What a handler gives back: a JSON reply (status, body), or an iterable of JSON lines to stream.
Reply = tuple[int, dict] | Iterable[dict]


class JsonServer:
    """Serves ``handle(body) -> Reply`` for every POSTed JSON body, on ``host:port`` (port 0: any
    free one), in a background thread."""

    def __init__(self, handle: Callable[[dict], Reply], host: str = "127.0.0.1", port: int = 0):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A client that stops sending mid-request is dropped, not waited for.
            timeout = 30

            def log_message(self, *_: object) -> None:  # quiet: the node logs queries
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    length = -1
                if length < 0:
                    self.close_connection = True
                    return self._send(400, {"error": "a body needs a valid content-length"})
                if length > MAX_BODY:
                    self.close_connection = True
                    return self._send(413, {"error": f"body over {MAX_BODY} bytes"})
                try:
                    body = json.loads(self.rfile.read(length))
                    if not isinstance(body, dict):
                        raise ValueError("not a JSON object")
                except (ValueError, RecursionError) as error:
                    return self._send(400, {"error": f"not JSON: {error}"})
                try:
                    reply = outer._handle(body)
                except Exception as error:  # the handler's failure is the caller's answer
                    return self._send(500, {"error": f"{type(error).__name__}: {error}"})
                if isinstance(reply, tuple):
                    return self._send(*reply)
                # A stream: newline-delimited JSON, one piece per line, chunked.
                self.send_response(200)
                self.send_header("content-type", "application/x-ndjson")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                try:
                    for piece in reply:
                        line = (json.dumps(piece) + "\n").encode()
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                        self.wfile.flush()
                except Exception as error:
                    line = (json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n").encode()
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

        self._handle = handle
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port/`` of the server, for the node's config."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> str:
        """Serves in a background thread; returns :attr:`url`."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        """Serves in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stops serving."""
        self._server.shutdown()
        self._server.server_close()


class Served:
    """A helper the node posts JSON to: ``handle(body)`` answers one call; :meth:`start` serves it
    in a background thread, :meth:`serve` in this one."""

    #: The port :meth:`serve` listens on by default.
    default_port = 8090

    _server: JsonServer | None = None

    def handle(self, body: dict) -> Reply:
        """Answers one posted call."""
        raise NotImplementedError

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serves in a background thread; returns the URL to put in the node's config."""
        self._server = JsonServer(self.handle, host, port)
        return self._server.start()

    def serve(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        """Serves in this thread until interrupted."""
        self._server = JsonServer(self.handle, host, self.default_port if port is None else port)
        self._server.serve_forever()

    def stop(self) -> None:
        """Stops a server started with :meth:`start`."""
        if self._server is not None:
            self._server.stop()
