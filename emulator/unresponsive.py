"""A loopback HTTPS URL whose TCP connect never completes, for connect-timeout tests.

How: a listening socket with a zero backlog whose accept queue is filled by our own connection and
never accepted. Linux then drops further SYNs, so a client's connect() hangs until *its* connect
timeout (requests raises ConnectTimeout). Nothing is ever accepted, so no TLS is spoken either.
"""

from __future__ import annotations

import contextlib
import socket


class UnresponsiveEndpoint:
    def __init__(self, host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET) -> None:
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        first = socket.socket(family, socket.SOCK_STREAM)
        first.settimeout(2.0)
        first.connect((host, self.port))  # completes: the queue had room for exactly this one
        self._fillers.append(first)
        for _ in range(2):  # SYNs that will sit unanswered, keeping the queue full for good
            extra = socket.socket(family, socket.SOCK_STREAM)
            extra.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                extra.connect((host, self.port))
            self._fillers.append(extra)

    def close(self) -> None:
        for sock in self._fillers:
            sock.close()
        self._listener.close()
