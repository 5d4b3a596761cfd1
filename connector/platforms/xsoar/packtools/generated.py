"""--write and --check for every file the pack generates (integration YAML, README, logo, playbook).

One entry point, so that each generator is run the same way by a person (--write, then commit) and
by scripts/package-xsoar.sh (--check: exit 1 when the committed file is not what the code writes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def generator_main(path: Path, render: Callable[[], str | bytes], what: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"write or check {what} ({path.name})")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"write {what}")
    group.add_argument("--check", action="store_true", help=f"exit 1 when the committed {what} is stale")
    options = parser.parse_args(argv)
    content = render()
    data = content.encode("utf-8") if isinstance(content, str) else content
    if options.write:
        path.write_bytes(data)
        print(f"wrote {path} ({len(data)} bytes)")
        return 0
    if not path.is_file() or path.read_bytes() != data:
        print(f"{path} is stale: run the script that writes {what} with --write, and commit", file=sys.stderr)
        return 1
    return 0
