"""A private redis-server that a test may kill (SIGKILL, as a crash) and start again on the same port,
empty: scripts/start-redis.sh's start, kill and stop, and worker processes that run lookups meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "start-redis.sh"
WORKER = Path(__file__).with_name("lookup_worker.py")


class KillableRedis:
    def __init__(self) -> None:
        started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=300, check=True)
        self.url = started.stdout.strip().splitlines()[-1]
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def kill(self) -> None:
        subprocess.run([str(SCRIPT), "kill", self.url], capture_output=True, timeout=30, check=True)

    def start(self) -> None:
        subprocess.run([str(SCRIPT), "start", str(self.port)], capture_output=True, timeout=60, check=True)

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", self.url], capture_output=True, timeout=30, check=False)

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)


@contextmanager
def killable_redis() -> Iterator[KillableRedis]:
    server = KillableRedis()
    try:
        yield server
    finally:
        server.stop()


Workers = list[tuple[subprocess.Popen[bytes], Path]]


def start_lookup_workers(specs: list[dict[str, Any]], out_dir: Path) -> Workers:
    """One process per spec (lookup_worker.py), each writing its results to a file of out_dir."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = []
    for number, spec in enumerate(specs):
        out = out_dir / f"worker-{number}.jsonl"
        errors = (out_dir / f"worker-{number}.err").open("wb")
        proc = subprocess.Popen([sys.executable, str(WORKER), json.dumps({**spec, "out": str(out)})],
                                stdout=subprocess.DEVNULL, stderr=errors, env=env)
        errors.close()
        workers.append((proc, out))
    return workers


def ended(workers: Workers) -> list[str]:
    """What ended each worker (after collect): stop_file, until or max_lookups (see lookup_worker.py)."""
    return [next((line[len("ended: "):] for line in reversed(out.read_text().splitlines())
                  if line.startswith("ended: ")), "killed") if out.exists() else "no output"
            for _, out in workers]


def collect(workers: Workers, timeout_s: float) -> list[list[dict[str, Any]]]:
    """Each worker's results (one list per worker), after it ends by itself (bounded by timeout_s)."""
    deadline = time.monotonic() + timeout_s
    outputs = []
    for proc, out in workers:
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        errors = out.with_suffix(".err").read_text(errors="replace")
        assert proc.returncode == 0, f"a worker failed:\n{errors[-3000:]}"
        lines = out.read_text().splitlines() if out.exists() else []
        outputs.append([json.loads(line) for line in lines if line.startswith("{")])
    return outputs
