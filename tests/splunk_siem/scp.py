"""Drive a search command exactly as splunkd does, over the Custom Search Command protocol v2.

splunkd starts the script named in commands.conf with no arguments (an argument would select protocol
v1), sends a ``getinfo`` chunk with the search's metadata (arguments, session key, splunkd URI), reads
the command's answer, then sends ``execute`` chunks of CSV events and reads one chunk back for each,
until a chunk marked finished. A chunk is ``chunked 1.0,<metadata bytes>,<body bytes>\\n`` followed by
the JSON metadata and the CSV body.

The script runs under ``python -S``: no site-packages, so everything it imports beyond the standard
library must come from the add-on's own lib/ (as on a real Splunk, whose Python has none of ours).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

Event = dict[str, str]


def chunk(metadata: dict[str, Any], body: bytes = b"") -> bytes:
    meta = json.dumps(metadata).encode("utf-8")
    return f"chunked 1.0,{len(meta)},{len(body)}\n".encode("ascii") + meta + body


def csv_body(events: list[Event]) -> bytes:
    if not events:
        return b""
    columns: list[str] = []
    for event in events:
        columns.extend(k for k in event if k not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(events)
    return out.getvalue().encode("utf-8")


def parse_csv(body: bytes) -> list[Event]:
    if not body.strip():
        return []
    rows = csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
    return [{k: v for k, v in row.items() if not k.startswith("__mv_")} for row in rows]


def read_chunk(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    header = stream.readline()
    if not header:
        return None
    text = header.decode("ascii").strip()
    kind, sizes = text.split(" ", 1)
    assert kind == "chunked", f"not a protocol v2 chunk header: {text!r}"
    meta_len, body_len = (int(x) for x in sizes.split(",")[1:])
    metadata = json.loads(stream.read(meta_len).decode("utf-8")) if meta_len else {}
    return metadata, stream.read(body_len)


@dataclass
class SearchRun:
    """What splunkd saw: the getinfo answer, each execute answer, the output events, stderr, timing."""

    getinfo: dict[str, Any]
    replies: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stdout: bytes = b""
    stderr: str = ""
    returncode: int | None = None
    elapsed_s: float = 0.0

    @property
    def messages(self) -> list[list[str]]:
        found = [m for r in [self.getinfo, *self.replies] for m in r.get("inspector", {}).get("messages", [])]
        return found


@dataclass
class Splunkd:
    """The searches' side: where the add-on is, which splunkd it may ask, which search it runs in."""

    addon_dir: Path
    splunkd_uri: str
    session_key: str
    env: dict[str, str]
    work_dir: Path
    python: str = sys.executable
    search_app: str = "search"
    """The app the search runs in (searchinfo.app): a user's search runs in the Search app, not the add-on."""

    def searchinfo(self, args: list[str], sid: str) -> dict[str, Any]:
        dispatch = self.work_dir / "dispatch" / sid
        dispatch.mkdir(parents=True, exist_ok=True)
        spl = "search index=proxy | mdeipstats " + " ".join(args)
        return {"args": args, "raw_args": args, "session_key": self.session_key, "splunkd_uri": self.splunkd_uri,
                "app": self.search_app, "owner": "admin", "username": "admin", "sid": sid,
                "dispatch_dir": str(dispatch), "earliest_time": "0", "latest_time": "0",
                "search": quote(spl), "splunk_version": "10.2.0", "command": "mdeipstats", "maxresultrows": 50000}

    def run(self, args: list[str], chunks: list[list[Event]], *, sid: str = "1764480000.1",
            timeout_s: float = 120.0, python: str | None = None) -> SearchRun:
        """One search: getinfo, then each chunk of events (the last one marked finished)."""
        script = self.addon_dir / "bin" / "mdeipstats.py"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env}
        started = time.monotonic()
        proc = subprocess.Popen([python or self.python, "-S", str(script)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                cwd=self.searchinfo(args, sid)["dispatch_dir"])
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stderr: list[bytes] = []
        error_stream = proc.stderr
        drain = threading.Thread(target=lambda: stderr.append(error_stream.read()), daemon=True)
        drain.start()
        watchdog = threading.Timer(timeout_s, proc.kill)
        watchdog.start()
        raw = io.BytesIO()
        try:
            proc.stdin.write(chunk({"action": "getinfo", "preview": False, "searchinfo": self.searchinfo(args, sid)}))
            proc.stdin.flush()
            answer = read_chunk(proc.stdout)
            if answer is None:
                proc.wait(timeout=10)
                drain.join(timeout=5)
                raise AssertionError("the command closed stdout instead of answering getinfo:\n"
                                     + b"".join(stderr).decode("utf-8", "replace")[-3000:])
            run = SearchRun(getinfo=answer[0])
            refused = any(level == "ERROR" for level, _ in answer[0].get("inspector", {}).get("messages", []))
            if not (answer[0].get("finished") or refused):  # splunkd ends a search its command refused
                for index, events in enumerate(chunks):
                    last = index == len(chunks) - 1
                    proc.stdin.write(chunk({"action": "execute", "finished": last}, csv_body(events)))
                    proc.stdin.flush()
                    reply = read_chunk(proc.stdout)
                    assert reply is not None, f"no answer to execute chunk {index}"
                    run.replies.append(reply[0])
                    run.events.extend(parse_csv(reply[1]))
                    raw.write(reply[1])
            proc.stdin.close()
            proc.wait(timeout=max(1.0, timeout_s - (time.monotonic() - started)))
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            drain.join(timeout=5)
        run.stdout = raw.getvalue()
        run.stderr = b"".join(stderr).decode("utf-8", "replace")
        run.returncode = proc.returncode
        run.elapsed_s = time.monotonic() - started
        return run
