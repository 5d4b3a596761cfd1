"""Access tokens this process already holds, each for the one holder it was issued to.

A burst of lookups in one worker process (a batch, or many action runs in a long-lived worker) needs
no lock, no MSAL application and no OpenID discovery once it holds a token. A token is filed under
its token cache and its *holder*: the application with its credential, or (delegated access) the
person signed in. The caller names the holder it reads from the shared store at that moment, so a
person signed in (or out) by another process is another holder, never handed the previous person's
token.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple


class _Held(NamedTuple):
    token: str
    good_until: float
    """time.monotonic() seconds after which the token is to be renewed, not used."""


class TokenMemo:
    def __init__(self) -> None:
        self._held: dict[tuple[str, str], _Held] = {}
        self._guard = threading.Lock()

    def get(self, cache_key: str, holder: str | None) -> str | None:
        """The token held for holder under cache_key, while it needs no renewal."""
        if holder is None:
            return None
        with self._guard:
            held = self._held.get((cache_key, holder))
        return held.token if held is not None and held.good_until > time.monotonic() else None

    def put(self, cache_key: str, holder: str, token: str, good_for_s: float) -> None:
        with self._guard:
            self._held[(cache_key, holder)] = _Held(token, time.monotonic() + good_for_s)

    def drop(self, cache_key: str, token: str | None = None) -> None:
        """Forget the tokens held under cache_key, for every holder (or only that token)."""
        with self._guard:
            for key in [k for k, held in self._held.items()
                        if k[0] == cache_key and (token is None or held.token == token)]:
                del self._held[key]

    def clear(self) -> None:
        with self._guard:
            self._held.clear()


PROCESS_TOKENS = TokenMemo()
"""The process's tokens, shared by every TokenProvider of the process."""
