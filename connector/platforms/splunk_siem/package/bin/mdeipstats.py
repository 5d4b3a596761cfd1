"""mdeipstats: the search command commands.conf names (TA-mde-ipstats).

This file must stay parseable by the oldest Python a Splunk may start it with (3.9 on Splunk 9.x and
10.0): there it answers splunkd's first chunk with a clear error instead of dying on a SyntaxError in
the real command, which needs Python 3.13 (Splunk Enterprise 10.2+, Splunk Cloud 10.1+).
"""

import importlib
import json
import sys
from pathlib import Path

REQUIRED = (3, 13)
MESSAGE = ("mdeipstats needs Splunk Enterprise 10.2+ or Splunk Cloud 10.1+ (Python 3.13); this Splunk "
           "started it with Python {}. Upgrade Splunk, or check that commands.conf keeps python.required = 3.13.")


def refuse(message: str) -> int:
    """Answer splunkd's getinfo chunk (protocol v2) with the error, so the search shows it."""
    header = sys.stdin.buffer.readline().decode("ascii", "replace").strip()
    parts = header.split(",")
    if len(parts) == 3 and parts[0].startswith("chunked") and parts[1].isdigit() and parts[2].isdigit():
        sys.stdin.buffer.read(int(parts[1]) + int(parts[2]))
    body = json.dumps({"finished": True, "error": message,
                       "inspector": {"messages": [["ERROR", message]]}}).encode("utf-8")
    sys.stdout.buffer.write(f"chunked 1.0,{len(body)},0\n".encode("ascii") + body)
    sys.stdout.buffer.flush()
    sys.stderr.write(message + "\n")
    return 1


def add_lib_to_path() -> None:
    """The add-on's bundled dependencies (lib/), ahead of anything else on the path."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))


if __name__ == "__main__":
    if sys.version_info[:2] < REQUIRED:
        sys.exit(refuse(MESSAGE.format(sys.version.split()[0])))
    add_lib_to_path()
    importlib.import_module("ta_mde_ipstats.search").main()
