"""Run the XSOAR integration's main() as the platform would, in this process: python xsoar_runner.py SPEC.

SPEC is a JSON file: {"command", "params", "args", "context_file", "out_file", "vendor_dir",
"integration_dir", optional "context_latency_s"}. demistomock's module functions are replaced so
that parameters, arguments and the command come from SPEC, every entry and log line is captured,
and the integration context is a JSON file that behaves like XSOAR's versioned context (see
FileContext). The captured entries and logs are written to out_file as JSON when main() returns
or exits.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any


class FileContext:
    """The server side of XSOAR's versioned integration context, as a test double with real checks.

    The file holds {"version": n, "context": {...}}. A write names the version it read; under a file
    lock the write is refused (ValueError, as XSOAR raises) unless that is still the current version,
    and an accepted write increments it. So a container that read a stale context cannot overwrite
    a newer one.
    """

    def __init__(self, path: Path, latency_s: float = 0.0) -> None:
        from filelock import FileLock

        self.path = path
        self.latency_s = latency_s
        self._lock = FileLock(str(path) + ".lock", timeout=30)

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": 0, "context": {}}

    def get(self, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            current = self._load()
        time.sleep(self.latency_s)  # the server's round trip: what another container may write meanwhile
        return current

    def set(self, context: dict[str, Any], version: Any = -1, sync: bool = False) -> None:
        with self._lock:
            current = self._load()
            if version != current["version"]:
                refused = self.path.with_suffix(".refused")
                count = int(refused.read_text()) if refused.exists() else 0
                refused.write_text(str(count + 1))  # for tests: proof that writes did collide
                raise ValueError(f"DB version mismatch: wrote {version}, current is {current['version']}")
            json.dumps(context)  # the server stores JSON: anything else must fail here too
            with self.path.with_suffix(".history").open("a", encoding="utf-8") as history:
                history.write(json.dumps(context) + "\n")  # for tests: every accepted version, in order
            partial = self.path.with_suffix(".tmp")
            partial.write_text(json.dumps({"version": current["version"] + 1, "context": context}),
                               encoding="utf-8")
            partial.replace(self.path)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sys.path[:0] = [spec["integration_dir"], spec["vendor_dir"]]
    import demistomock

    entries: list[Any] = []
    logs: list[str] = []
    context = FileContext(Path(spec["context_file"]), spec.get("context_latency_s", 0.0))
    demistomock.params = lambda: spec.get("params") or {}
    demistomock.args = lambda: spec.get("args") or {}
    demistomock.command = lambda: spec["command"]
    demistomock.callingContext = spec.get("calling_context") or {}
    demistomock.results = entries.append
    demistomock.demistoVersion = lambda: {"version": "8.9.0", "buildNumber": "123456"}
    demistomock.getIntegrationContextVersioned = context.get
    demistomock.setIntegrationContextVersioned = context.set
    demistomock.getIntegrationContext = lambda: context.get()["context"]
    for level in ("debug", "info", "error", "log"):
        setattr(demistomock, level, lambda msg, *args, _level=level: logs.append(f"{_level}: {msg}"))

    crashed = None
    try:
        import MDEIPStatistics

        MDEIPStatistics.main()
    except SystemExit:
        pass  # return_error() exits after sending its entry
    except BaseException:
        crashed = traceback.format_exc()
    Path(spec["out_file"]).write_text(json.dumps({"entries": entries, "logs": logs, "crashed": crashed},
                                                 default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
