"""What the reliability tests share: connector configurations, a per-item timeline, the issued-token
recorder, and two small loopback network tools (a switchable TCP forwarder and a CONNECT proxy).

Every server here binds 127.0.0.1 only, serves a bounded number of connections, and stops by itself
after its lifetime even if a test forgets to close it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector import ActionResult, run
from emulator import Emulator

DOC_IP = "10.209.67.177"
ALLOWANCE_S = 1.0
"""How far past item_budget_s one item may end: the last attempt's timeout floor, sign-in and
bookkeeping. A correctness bound, not a speed benchmark."""


def config_for(emu: Emulator, app: str = "reader", auth: str = "secret", **overrides: Any) -> dict[str, Any]:
    """The emulator's connector configuration with the result cache off (every lookup is a call)."""
    config: dict[str, Any] = {**emu.connector_config(app=app, auth=auth), "cache_ttl_s": 0}  # type: ignore[arg-type]
    config.update(overrides)
    return config


def api_log(emu: Emulator) -> list[dict[str, Any]]:
    return [entry for entry in emu.request_log() if entry["route"] == "api"]


def seen_ips(emu: Emulator, count: int) -> list[str]:
    """Distinct IPv4 addresses the organisation has seen (distinct canonical forms, so no dedup)."""
    ips = [ip for ip in emu.org.sample_ips(200, seen=True) if ":" not in ip]
    assert len(ips) >= count
    return ips[:count]


def record_issued_tokens(emu: Emulator) -> list[str]:
    """Every access token this emulator issues from now on (Entra's token endpoint and issue_token()).

    The emulator has no accessor for issued tokens, so its token service's ``issue`` is wrapped on
    this one instance: the emulator's behaviour is unchanged, the test just sees what it hands out.
    """
    issued: list[str] = []
    service = emu._tokens  # the one TokenService of this emulator
    original = service.issue

    def issue(*args: Any, **kwargs: Any) -> Any:
        token = original(*args, **kwargs)
        issued.append(token.access_token)
        return token

    service.issue = issue
    return issued


@dataclass
class Timeline:
    """A progress callback for run(): when each item ended, and hooks to fire after item k ends."""

    hooks: dict[int, Callable[[], None]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    ended: list[float] = field(default_factory=list)

    def __call__(self, done: int, total: int) -> None:
        self.ended.append(time.monotonic())
        hook = self.hooks.get(done)
        if hook is not None:
            hook()

    def durations(self) -> list[float]:
        marks = [self.started, *self.ended]
        return [later - earlier for earlier, later in itertools.pairwise(marks)]


def lookup_batch(config: dict[str, Any], state_dir: Path, ips: list[str], hours: int = 48,
                 timeline: Timeline | None = None) -> tuple[list[ActionResult], Timeline]:
    timeline = timeline or Timeline()
    timeline.started = time.monotonic()
    results = run("get_ip_statistics", {"ip": ips, "lookback_hours": hours}, config, state_dir=state_dir,
                  progress=timeline)
    return results, timeline


def assert_one_result_per_item(results: list[ActionResult], ips: list[str]) -> None:
    """Nothing lost, nothing duplicated, input order kept."""
    assert [r.parameters["ip"] for r in results] == ips, [r.parameters for r in results]


# -- loopback network tools -------------------------------------------------------------------------


def _relay(a: socket.socket, b: socket.socket, stop: threading.Event, until: float,
           counted: list[int] | None = None) -> None:
    """Copy bytes both ways until either side closes, stop is set, or the deadline passes.

    ``counted[0]`` grows as bytes pass, so a reader sees the figure even when the relay ends because
    ``close_live()`` closed its sockets under it (which surfaces here as an OSError, not a crash).
    """
    selector = selectors.DefaultSelector()
    peers = {a: b, b: a}
    try:
        for sock in peers:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set() and time.monotonic() < until:
            for key, _ in selector.select(timeout=0.1):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    return
                if counted is not None:
                    counted[0] += len(data)
                target = peers[source]
                target.settimeout(5.0)
                target.sendall(data)
                target.setblocking(False)
    except OSError:
        return
    finally:
        selector.close()
        for sock in peers:
            with contextlib.suppress(OSError):
                sock.close()


class _LoopbackServer:
    """Accept loop on 127.0.0.1 in a daemon thread; bounded in connections and lifetime."""

    def __init__(self, max_connections: int, lifetime_s: float, port: int = 0) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._until = time.monotonic() + lifetime_s
        self._max_connections = max_connections
        self._accepted = 0
        self._accepting = threading.Lock()
        self._live: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()

    def _may_accept(self) -> bool:
        return True

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set() and time.monotonic() < self._until:
                if not selector.select(timeout=0.02):
                    continue
                with self._accepting:
                    if not self._may_accept():
                        continue
                    try:
                        client, _ = self._listener.accept()
                    except OSError:
                        continue
                if self._accepted >= self._max_connections:
                    client.close()
                    continue
                self._accepted += 1
                self._live.append(client)
                worker = threading.Thread(target=self._handle, args=(client,), daemon=True)
                self._threads.append(worker)
                worker.start()
        finally:
            selector.close()
            self._stop.set()
            with contextlib.suppress(OSError):
                self._listener.close()

    def _handle(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _upstream(self, host: str, port: int) -> socket.socket:
        upstream = socket.create_connection((host, port), timeout=5.0)
        self._live.append(upstream)
        return upstream

    def close_live(self) -> None:
        for sock in list(self._live):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._live.clear()

    def close(self) -> None:
        self._stop.set()
        self.close_live()
        self._thread.join(5)
        for worker in self._threads:
            worker.join(5)

    def __enter__(self) -> _LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SwitchableForwarder(_LoopbackServer):
    """A TCP forwarder to an upstream port whose new connections can be made to hang at connect.

    ``blackhole()`` stops accepting, shrinks the listen backlog to zero and fills it with one
    connection of its own, drops every live connection: a client's next connect() then gets no
    SYN-ACK and ends in *its* connect timeout (as with a firewall that drops packets).
    ``restore()`` undoes it.
    """

    def __init__(self, upstream_port: int, max_connections: int = 64, lifetime_s: float = 60.0, port: int = 0) -> None:
        self._upstream_port = upstream_port
        self._blackholed = False
        self._fillers: list[socket.socket] = []
        super().__init__(max_connections, lifetime_s, port)

    def _may_accept(self) -> bool:
        return not self._blackholed

    def _handle(self, client: socket.socket) -> None:
        try:
            upstream = self._upstream("127.0.0.1", self._upstream_port)
        except OSError:
            client.close()
            return
        _relay(client, upstream, self._stop, self._until)

    def blackhole(self) -> None:
        with self._accepting:
            self._blackholed = True
            self._listener.listen(0)
        self.close_live()
        first = socket.create_connection(("127.0.0.1", self.port), timeout=2.0)  # fills the queue
        self._fillers.append(first)
        for _ in range(2):  # SYNs that stay unanswered keep it full
            extra = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            extra.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                extra.connect(("127.0.0.1", self.port))
            self._fillers.append(extra)

    def restore(self) -> None:
        for sock in self._fillers:
            sock.close()
        self._fillers.clear()
        with self._accepting:
            self._listener.listen(16)
            self._blackholed = False

    def close(self) -> None:
        for sock in self._fillers:
            sock.close()
        super().close()


class ConnectProxy(_LoopbackServer):
    """An HTTP CONNECT proxy for tests: tunnels to loopback targets only, records each tunnel.

    ``tunnels`` lists "host:port" per CONNECT it opened; ``refuse`` makes it answer 403 instead.
    """

    def __init__(self, max_connections: int = 32, lifetime_s: float = 60.0, refuse: bool = False) -> None:
        self._relayed: list[tuple[str, list[int]]] = []  # (target, [bytes so far]) per tunnel
        self.requests: list[str] = []
        self.refuse = refuse
        super().__init__(max_connections, lifetime_s)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tunnels(self) -> list[str]:
        return [target for target, _ in self._relayed]

    @property
    def bytes_relayed(self) -> dict[str, list[int]]:
        """Bytes carried so far, per target, one figure per tunnel (live, also for open tunnels)."""
        figures: dict[str, list[int]] = {}
        for target, counted in list(self._relayed):
            figures.setdefault(target, []).append(counted[0])
        return figures

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(5.0)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = client.recv(4096)
                if not chunk:
                    client.close()
                    return
                head += chunk
        except OSError:
            client.close()
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.requests.append(request_line)
        method, _, rest = request_line.partition(" ")
        target = rest.split(" ", 1)[0]
        host, _, port_text = target.rpartition(":")
        host = host.strip("[]")
        if method != "CONNECT" or not port_text.isdigit():
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        if self.refuse or host not in ("127.0.0.1", "localhost", "::1"):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        try:
            upstream = self._upstream(host, int(port_text))
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        counted = [0]
        self._relayed.append((target, counted))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        leftover = head.split(b"\r\n\r\n", 1)[1]
        if leftover:
            upstream.sendall(leftover)
        _relay(client, upstream, self._stop, self._until, counted)


@contextlib.contextmanager
def forwarder_to(emu: Emulator) -> Iterator[SwitchableForwarder]:
    port = int(emu.base_url.rsplit(":", 1)[1])
    forwarder = SwitchableForwarder(port)
    try:
        yield forwarder
    finally:
        forwarder.close()


@contextlib.contextmanager
def tmpfs(where: Path, size_kb: int, *, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs mounted at where (a full disk, or a read-only one, that is really the kernel's),
    unmounted afterwards. Skips, saying why, only when this process may not mount (CI runs as root)."""
    import pytest

    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k,mode=0700" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {where} as uid {os.geteuid()}: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


STATE_WORKERS = Path(__file__).with_name("state_workers.py")


def start_state_worker(command: str, spec: dict[str, Any], script: Path = STATE_WORKERS) -> subprocess.Popen[str]:
    """One worker process of state_workers.py (a fresh action process), or of another worker script
    taking the same arguments (tests/storm/workers.py), running command on spec."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, str(script), command, json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> Any:
    """A worker's JSON answer (its last line), once it has ended well."""
    out, err = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, f"worker failed:\n{err}"
    return json.loads(out.strip().splitlines()[-1])


def lookup_in_process(config: dict[str, Any], state: Path, ips: list[str], **extra: Any) -> Any:
    """A lookup batch in a fresh process: each result's status, category, message and warnings."""
    return finish(start_state_worker("lookup", {"config": config, "state_dir": str(state), "ips": ips, **extra}))
