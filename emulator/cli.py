"""`mde-emulator serve`: run the emulator standalone until SIGINT/SIGTERM.

Writes DIR/ca.pem, DIR/connector.json (secret auth for the "reader" app; 0600),
DIR/connector-certificate.json, DIR/reader.key.pem (0600), DIR/reader.cert.pem and
DIR/connector-delegated.json (device-code sign-in, app "delegated"), DIR/connector-managed-identity.json
with DIR/identity.env (0600; `set -a; . DIR/identity.env` gives a shell the host's identity endpoint),
DIR/emulator.json (URLs and IDs, no secrets), prints the URL, and serves.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from emulator.config import GENERATIONS, EmulatorConfig
from emulator.service import Emulator


def _rate_limit(text: str) -> tuple[int, float]:
    calls, _, window = text.partition("/")
    try:
        return int(calls), float(window)
    except ValueError:
        raise argparse.ArgumentTypeError("expected CALLS/SECONDS, e.g. 100/60") from None


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mde-emulator",
                                     description="Local Entra ID + Defender for Endpoint IP statistics API")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve until interrupted")
    serve.add_argument("--out", required=True, type=Path, help="directory for ca.pem and connector.json")
    serve.add_argument("--port", type=int, default=0, help="port (default: ephemeral)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    serve.add_argument("--generation", choices=GENERATIONS, default="current")
    serve.add_argument("--time-scale", type=float, default=1.0,
                       help="emulated seconds per real second for rate limits and token lifetime")
    serve.add_argument("--seed", type=int, default=7, help="synthetic organisation seed")
    serve.add_argument("--token-lifetime", type=float, default=3600.0, help="token lifetime, emulated seconds")
    serve.add_argument("--now", type=_instant, default=None, help="pin the calendar (ISO 8601, UTC)")
    serve.add_argument("--rate-limit", type=_rate_limit, action="append", default=None, metavar="CALLS/SECONDS",
                       help="a sliding window (repeatable); default 100/60 and 1500/3600")
    serve.add_argument("--no-rate-limit", action="store_true", help="disable throttling")
    serve.add_argument("--auto-approve", metavar="USER", default=None,
                       help="approve every device code as USER (e.g. analyst) by itself (demo)")
    serve.add_argument("--auto-approve-polls", type=int, default=2, metavar="N",
                       help="...when its N-th poll arrives (default 2: the first poll is pending)")
    serve.add_argument("--device-code-interval", type=int, default=5, metavar="S",
                       help="polling interval the device authorization endpoint announces (real seconds)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limits = () if args.no_rate_limit else tuple(args.rate_limit or EmulatorConfig().rate_limits)
    try:
        config = EmulatorConfig(seed=args.seed, now=args.now, generation=args.generation,
                                token_lifetime_s=args.token_lifetime, time_scale=args.time_scale,
                                rate_limits=limits, port=args.port, host=args.host, out_dir=args.out,
                                fresh_keys=True, device_auto_approve=args.auto_approve,
                                device_auto_approve_polls=args.auto_approve_polls,
                                device_code_interval_s=args.device_code_interval)
    except ValueError as exc:
        print(f"mde-emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with Emulator(config) as emu:
        paths = emu.write_connector_files(args.out)
        print(f"mde-emulator listening on {emu.base_url}", flush=True)
        print(f"  tenant      {emu.tenant_id}", flush=True)
        print(f"  CA bundle   {paths['ca']}", flush=True)
        print(f"  connector   {paths['connector']}", flush=True)
        if "connector_delegated" in paths:
            print(f"  delegated   {paths['connector_delegated']}", flush=True)
        print(f"  control     {emu.control_url}/info", flush=True)
        while not stop.wait(0.5):
            pass
        print("mde-emulator stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
