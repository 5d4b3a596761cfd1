"""HTTPS on loopback: a threaded stdlib server, one thread per connection, HTTP/1.1 keep-alive. Without
a TLS context it serves plain HTTP, as a platform's managed identity endpoint does (on the host itself).

The TLS handshake runs in the connection's own thread (not in the accept loop), so a client that
connects and never speaks cannot stall other clients. Each response is written in a single send
with TCP_NODELAY, so keep-alive exchanges never wait on Nagle/delayed-ACK. On stop, open
connections are shut down and their threads joined: no thread outlives the emulator.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from emulator.messages import Request, Response

log = logging.getLogger("emulator.server")

_MAX_BODY = 1 << 20
_HANDSHAKE_TIMEOUT_S = 10.0


@dataclass
class Reply:
    response: Response | None
    mode: Literal["normal", "truncated", "reset"] = "normal"


Application = Callable[[Request], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mde-emulator/0.1"
    sys_version = ""
    server: TlsHttpServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._write(Reply(Response(411, b"", {}, None)), force_close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._write(Reply(Response(413 if length > 0 else 400, b"", {}, None)), force_close=True)
            return
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self._write(self.server.app(request))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch

    def _write(self, reply: Reply, force_close: bool = False) -> None:
        if reply.mode == "reset" or reply.response is None:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        response = reply.response
        body = response.body
        close = force_close or self.close_connection or reply.mode == "truncated"
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        headers: dict[str, str] = {"Date": formatdate(usegmt=True), "Server": self.version_string()}
        if response.content_type is not None:
            headers["Content-Type"] = response.content_type
        headers["Content-Length"] = str(len(body))
        if close:
            headers["Connection"] = "close"
        lowered = {k.lower(): k for k in headers}
        for name, value in response.headers.items():
            headers.pop(lowered.get(name.lower(), name), None)
            headers[name] = value
        if reply.mode == "truncated":
            body = body[: len(body) // 2]
        if self.command == "HEAD":
            body = b""
        head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)
        self.close_connection = close


class TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, app: Application,
                 context: ssl.SSLContext | None, idle_timeout_s: float) -> None:
        self.address_family = family
        self.app = app
        self.context = context
        self.idle_timeout_s = idle_timeout_s
        self._live: dict[threading.Thread, socket.socket] = {}
        self._live_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(_HANDSHAKE_TIMEOUT_S)
        tls: socket.socket = request
        if self.context is not None:
            try:
                tls = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            except OSError:
                return
        me = threading.current_thread()
        with self._live_lock:
            self._live[me] = tls
        try:
            if isinstance(tls, ssl.SSLSocket):
                tls.do_handshake()
            tls.settimeout(self.idle_timeout_s)
            _Handler(tls, client_address, self)
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection from %s ended: %r", client_address, exc)
        finally:
            with self._live_lock:
                self._live.pop(me, None)
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)

    def close_connections(self, join_timeout_s: float = 5.0) -> None:
        """Shut every open connection down (wakes threads blocked reading) and join their threads."""
        with self._live_lock:
            live = list(self._live.items())
        for _, sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread, _ in live:
            thread.join(join_timeout_s)


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context
