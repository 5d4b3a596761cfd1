"""`soarapps` (the splunk-soar-sdk CLI) with three additions this repository's build needs; same arguments.

Run from the app directory (connector/platforms/splunk_soar), as the SDK's CLI is:

    python tools/soarapps_wrapper.py manifests create app.json .
    python tools/soarapps_wrapper.py package build . -o dist/app.tgz

It is a build tool of this repository, never part of the app: it lives in the adapter (the only place
the SDK is imported) under tools/, which the SDK's packager does not pack (it packs the logos, src/,
templates/, LICENSE, NOTICE, README.md and release_notes/); what ships is the SDK's own packager's
output, and an app maintainer building from a published core would use `soarapps` itself.

1. The core library, mde-ipstats, is a local directory dependency in uv.lock. The SDK's packager
   builds a wheel from a local source directory only for the packages in its DEPENDENCIES_TO_BUILD
   set (meant for developing the SDK itself); mde-ipstats is added to that set, so the core wheel
   goes into the app's wheels like any other dependency. The emulator is not a dependency.
2. The packager downloads every wheel pinned in uv.lock at once, with a fixed 10 s timeout and no
   retry, which times out on slow links. Downloads here run at most 8 at a time, with a longer
   timeout, retries with back-off, the uv.lock hash still checked, and a local wheel cache
   (MDE_SOAR_WHEEL_CACHE, default ~/.cache/mde-ipstats/soar-wheels) so rebuilds need no network.
3. `manifests create-notice` asks pip-licenses for the license of every wheel the app ships, but
   pip-licenses leaves out what it counts as "system" packages (itself, its dependencies prettytable
   and wcwidth, setuptools) unless told `--with-system`. The SDK depends on pip-licenses and
   setuptools, so the packager ships those wheels: NOTICE must attribute them too, and the flag is added.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
from soar_sdk.cli import cli as soar_cli
from soar_sdk.cli.manifests.notice import NoticeGenerator
from soar_sdk.meta.dependencies import package as sdk_package
from soar_sdk.meta.dependencies.sources import UvWheel

CORE_PACKAGE = "mde_ipstats"
FETCH_TIMEOUT_S = float(os.environ.get("MDE_SOAR_FETCH_TIMEOUT_S", "120"))
FETCH_ATTEMPTS = int(os.environ.get("MDE_SOAR_FETCH_ATTEMPTS", "5"))
FETCH_CONCURRENCY = 8

_slots: asyncio.Semaphore | None = None


def wheel_cache_dir() -> Path:
    configured = os.environ.get("MDE_SOAR_WHEEL_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mde-ipstats" / "soar-wheels"


def _digest_ok(wheel: UvWheel, data: bytes) -> bool:
    algorithm, expected = wheel.hash.split(":", 1)
    return hashlib.new(algorithm, data).hexdigest() == expected


async def _fetch(self: UvWheel) -> bytes:
    """UvWheel.fetch with a cache, bounded concurrency, a longer timeout and retries."""
    global _slots
    if self.url is None:
        raise ValueError(f"Cannot fetch wheel {self.filename or 'unknown'}: no URL in uv.lock")
    cached = wheel_cache_dir() / f"{self.basename}.whl"
    if cached.is_file():
        data = cached.read_bytes()
        if _digest_ok(self, data):
            return data
    if _slots is None:
        _slots = asyncio.Semaphore(FETCH_CONCURRENCY)
    last_error: Exception | None = None
    async with _slots:
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            try:
                async with httpx.AsyncClient(timeout=httpx.Timeout(FETCH_TIMEOUT_S, connect=30.0)) as client:
                    response = await client.get(self.url)
                    response.raise_for_status()
                data = response.content
                self.validate_hash(data)
                break
            except (httpx.HTTPError, ValueError) as exc:
                last_error = exc
                print(f"soarapps_wrapper: {self.basename}: attempt {attempt}/{FETCH_ATTEMPTS} failed: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
                await asyncio.sleep(min(2**attempt, 30))
        else:
            raise RuntimeError(f"could not download {self.url} after {FETCH_ATTEMPTS} attempts") from last_error
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(data)
    partial.replace(cached)
    return data


_sdk_license_info = NoticeGenerator.get_license_info


def _license_info_with_system(self: NoticeGenerator, package_names: list[str]) -> list[dict[str, object]]:
    """NoticeGenerator.get_license_info, pip-licenses' "system" packages included (see 3. above)."""
    real_run = subprocess.run

    def run(cmd: list[str], *args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        if "pip-licenses" in cmd and "--with-system" not in cmd:
            cmd = [*cmd[: cmd.index("--packages")], "--with-system", *cmd[cmd.index("--packages"):]]
        return real_run(cmd, *args, **kwargs)  # type: ignore[call-overload,no-any-return]

    subprocess.run = run  # type: ignore[assignment]
    try:
        return _sdk_license_info(self, package_names)
    finally:
        subprocess.run = real_run


def install_extensions() -> None:
    sdk_package.DEPENDENCIES_TO_BUILD.add(CORE_PACKAGE)
    UvWheel.fetch = _fetch  # type: ignore[method-assign]
    NoticeGenerator.get_license_info = _license_info_with_system  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    # The app's main module (src.app) is imported from the working directory, as `soarapps` does.
    sys.path.insert(0, str(Path.cwd()))
    install_extensions()
    sys.argv = ["soarapps", *(sys.argv[1:] if argv is None else argv)]
    soar_cli.main()


if __name__ == "__main__":
    main()
