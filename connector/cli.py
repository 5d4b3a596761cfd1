"""``mde-ipstats``: the connector from a shell, for analysts, scripts and the demo.

Configuration comes from ``--config`` (JSON with manifest.json's field names), then environment
variables ``MDE_<FIELD>``, then flags; later sources win. Secrets are accepted from the file and
the environment only, never as flags, which would show them in process listings and shell history.
Exit status: 0 when every result succeeded (not seen is a success), 1 when any failed, 2 for usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from connector.actions import GET_IP_STATISTICS, TEST_CONNECTIVITY, Progress
from connector.actions import run as core_run
from connector.lanes import LANES, Lane
from connector.manifest import load_manifest
from connector.redaction import RedactingFilter
from connector.results import ActionResult
from connector.signin import COMPLETE_SIGN_IN, MAX_WAIT_S, SIGN_OUT, START_SIGN_IN

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ENV_PREFIX = "MDE_"


class UsageError(Exception):
    """Bad command line or unreadable configuration: exit status 2."""


WORDS = {
    "platform": "the command line",
    "sign_in": "sign in with `mde-ipstats login --config FILE --state-dir DIR`",
    "start_sign_in": "run `mde-ipstats login` again",
    "complete_sign_in": "let `mde-ipstats login` finish (it checks until the sign-in is done)",
    "configuration": "the configuration file (--config) or the MDE_* environment variables",
}
"""The command line's names for what a person does (connector.wording): every result it prints says them."""


def run(action: str, params: dict[str, Any], config: dict[str, Any], **kwargs: Any) -> list[ActionResult]:
    """The core's run, speaking the command line's words."""
    return core_run(action, params, config, words=WORDS, **kwargs)


def configuration_fields() -> dict[str, dict[str, Any]]:
    fields: dict[str, dict[str, Any]] = load_manifest()["configuration"]["properties"]
    return fields


def load_config(path: Path | None, flags: dict[str, Any], environ: os._Environ[str] | dict[str, str]) -> dict[str, Any]:
    """The configuration: file, then MDE_* variables, then flags."""
    config: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read the configuration file {path}: {exc.strerror}") from None
        except ValueError:
            raise UsageError(f"the configuration file {path} is not valid JSON") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"the configuration file {path} must hold a JSON object")
        config.update(loaded)
    for name in configuration_fields():
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None:
            config[name] = value
    config.update({k: v for k, v in flags.items() if v is not None})
    return config


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":
        logging.getLogger("msal").setLevel(logging.WARNING)


# -- output ---------------------------------------------------------------------------------------


def render_json(results: Sequence[ActionResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False)


def _when(timestamp: str | None) -> str:
    """A timestamp to the second for people ('2017-07-30 13:36:06Z'); the JSON keeps full precision."""
    return f"{timestamp[:10]} {timestamp[11:19]}Z" if timestamp else "-"


_VERDICT_WORDS = {"not_seen": "NOT SEEN", "rare": "rare", "common": "common"}


def _table_row(result: ActionResult) -> list[str]:
    ip = str(result.parameters.get("ip", ""))
    scope = str(result.summary.get("ip_scope") or "-")
    if result.status == "failed":
        assert result.error is not None
        return [ip, "FAILED", scope, "-", "-", "-", f"{result.error.category.value}: {result.error.message}"]
    data = result.data[0]
    verdict = _VERDICT_WORDS.get(str(data.get("verdict")), "seen" if data["seenInOrg"] else "NOT SEEN")
    scope = str(data.get("ipScope") or scope)
    notes = []
    if data.get("newInWindow"):
        notes.append(f"new: first seen {data['firstSeenAgeHours']:.0f} h ago")
    if result.cached:
        notes.append(f"cached, {result.cache_age_s:.0f}s old")
    if not data["seenInOrg"]:
        detail = "; ".join(notes) or f"not seen in the last {data['lookBackHours']} h"
        return [ip, verdict, scope, "0", "-", "-", detail]
    return [ip, verdict, scope, str(data["organizationPrevalence"]), _when(data["orgFirstSeen"]),
            _when(data["orgLastSeen"]), "; ".join(notes)]


def render_table(results: Sequence[ActionResult]) -> str:
    """Aligned columns for people, one row per input item (failures included, never dropped);
    not-seen, rare and failed stand out in the VERDICT column."""
    header = ["IP", "VERDICT", "SCOPE", "DEVICES", "FIRST SEEN", "LAST SEEN", "DETAIL"]
    devices = header.index("DEVICES")
    rows = [header] + [_table_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(row)]
        cells[devices] = row[devices].rjust(widths[devices])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_connectivity(result: ActionResult) -> str:
    """Each check on its line, so that a person sees at once which of the three failed."""
    checks = result.data[0] if result.data else {}
    lines = []
    for key, label in (("sign_in", "sign-in"), ("permission", "Ip.Read.All"), ("api", "API call")):
        state = "ok" if checks.get(key) else ("FAILED" if result.status == "failed" else "-")
        lines.append(f"{label:<12} {state}")
        if state == "FAILED":
            break
    lines.append("")
    lines.append(result.message)
    return "\n".join(lines)


def emit(results: Sequence[ActionResult], fmt: str, out: TextIO) -> int:
    if fmt == "json":
        text = render_json(results)
    elif len(results) == 1 and results[0].action == TEST_CONNECTIVITY:
        text = render_connectivity(results[0])
    else:
        text = render_table(results)
    out.write(text + "\n")
    return EXIT_OK if all(r.succeeded for r in results) else EXIT_FAILED


def login(config: dict[str, Any], state_dir: Path | None, fmt: str, out: TextIO, err: TextIO) -> int:
    """Delegated sign-in from a terminal: Entra ID's message (URL and code) to stderr, then poll until
    the person finishes, declines, or the code expires; who is signed in to stdout."""
    [started] = run(START_SIGN_IN, {}, config, state_dir=state_dir)
    if not started.succeeded:
        return emit_sign_in([started], fmt, out)
    err.write(str(started.data[0].get("message") or started.message) + "\n")
    err.flush()
    remaining = float(started.data[0].get("expires_in_s") or MAX_WAIT_S)
    deadline = time.monotonic() + remaining
    while True:  # each call waits up to the code's remaining life (bounded by MAX_WAIT_S per call)
        wait = int(max(0.0, min(deadline - time.monotonic(), MAX_WAIT_S)))
        [progress] = run(COMPLETE_SIGN_IN, {"wait_s": wait}, config, state_dir=state_dir)
        if not progress.succeeded or progress.summary.get("state") != "pending":
            return emit_sign_in([progress], fmt, out)
        if wait == 0:  # the code's life is over and the person never finished
            err.write("The code expired before the sign-in was finished: run `mde-ipstats login` again.\n")
            return EXIT_FAILED


def emit_sign_in(results: Sequence[ActionResult], fmt: str, out: TextIO) -> int:
    """Sign-in results: the message (it says who is signed in, or what to do), or JSON."""
    out.write((render_json(results) if fmt == "json" else "\n".join(r.message for r in results)) + "\n")
    return EXIT_OK if all(r.succeeded for r in results) else EXIT_FAILED


def progress_bar(total: int, stream: TextIO) -> tuple[Progress | None, Any]:
    """A progress bar on stderr when the batch is longer than a screenful and stderr is a terminal."""
    if total <= shutil.get_terminal_size().lines or not stream.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, file=stream, unit="ip", leave=False)

    def update(done: int, _total: int) -> None:
        bar.n = done
        bar.refresh()

    return update, bar


# -- commands -------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="JSON file with manifest.json's configuration fields")
    parser.add_argument("--state-dir", type=Path, help="token cache, rate-limit ledger and result cache "
                        "(default: $XDG_STATE_HOME/mde-ipstats)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--log-level", default="warning",
                        choices=("debug", "info", "warning", "error"), help="logs go to stderr")
    group = parser.add_argument_group("configuration overrides (secrets: use --config or MDE_* variables)")
    for name, spec in configuration_fields().items():
        if spec.get("x-secret"):
            continue
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg_{name}", metavar=name.upper(),
                           help=spec.get("description"))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line. Given the ``command`` about to run, only that command gets its options (a
    few dozen, one per configuration field): building them for every command costs each fresh
    process a few milliseconds for nothing."""

    def common(parser: argparse.ArgumentParser) -> None:
        if command is None or parser.prog.endswith(f" {command}"):
            _common(parser)

    parser = argparse.ArgumentParser(prog="mde-ipstats", description="Defender for Endpoint IP statistics.")
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("get-ip-statistics", help="organization prevalence of IP addresses")
    get.add_argument("ips", nargs="+", metavar="IP", help="IPv4/IPv6 addresses; '-' reads them from stdin")
    get.add_argument("--lookback-hours", default=720, help="1 to 720 (default 720)")
    get.add_argument("--lane", choices=LANES,
                     help="share of the rate limit to use (default: interactive when the output is a terminal, "
                          "a person waiting; otherwise automation)")
    common(get)
    common(commands.add_parser("test-connectivity", help="check sign-in, permission and API access"))
    common(commands.add_parser("login", help="delegated access (auth_mode delegated): sign an analyst in "
                               "with a device code; lookups then run as that person"))
    common(commands.add_parser("logout", help="delegated access: forget the signed-in analyst's tokens"))
    demo = commands.add_parser("demo", help="run the connector end to end against the built-in emulator")
    demo.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return parser


def default_lane(stdout: TextIO) -> Lane:
    """interactive when a person reads the answer on a terminal; automation when a script reads it."""
    return "interactive" if stdout.isatty() else "automation"


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((word for word in words if not word.startswith("-")), None))
    args = parser.parse_args(words)
    setup_logging(args.log_level)
    if args.command == "demo":
        from connector.demo import run_demo

        return run_demo(stdout)
    flags = {key.removeprefix("cfg_"): value for key, value in vars(args).items() if key.startswith("cfg_")}
    try:
        config = load_config(args.config, flags, os.environ)
    except UsageError as exc:
        parser.error(str(exc))
    if args.command == "login":
        return login(config, args.state_dir, args.format, stdout, sys.stderr)
    if args.command == "logout":
        return emit_sign_in(run(SIGN_OUT, {}, config, state_dir=args.state_dir), args.format, stdout)
    if args.command == TEST_CONNECTIVITY.replace("_", "-"):
        return emit(run(TEST_CONNECTIVITY, {}, config, state_dir=args.state_dir), args.format, stdout)
    ips: list[str] = []
    for item in args.ips:
        ips.extend(stdin.read().split() if item == "-" else [item])
    update, bar = progress_bar(len(ips), sys.stderr)
    try:
        results = run(GET_IP_STATISTICS, {"ip": ips, "lookback_hours": args.lookback_hours,
                                          "lane": args.lane or default_lane(stdout)}, config,
                      state_dir=args.state_dir, progress=update)
    finally:
        if bar is not None:
            bar.close()
    return emit(results, args.format, stdout)


if __name__ == "__main__":
    raise SystemExit(main())
