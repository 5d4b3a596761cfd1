"""What a person reads names the commands of the platform where they read it.

The core never writes a platform's command (`mde-ipstats login`, `!mde-auth-start`, the 'start sign in'
action...) into a message. Where a message tells a person what to do on their platform, it names the
*step* with a marker (HOW_TO_SIGN_IN, HOW_TO_START_SIGN_IN, ...), and each platform adapter supplies its words for the
steps in ONE table, a plain ``dict`` (so that a generator can read it without importing the adapter's
SDK), which ``speak`` puts in place of the markers at the adapter's edge: ``run(..., words=WORDS)`` does
it for every result it returns. Without a table the words are NEUTRAL: what to do, in no platform's terms.

A table's entries (all required, see KEYS):
- ``platform``: the platform's name, as its users say it;
- ``sign_in``: how a person signs in there, start to finish (an imperative, lower case: it follows
  "To fix: "), or why nobody can (delegated access needs a person at a device-code prompt);
- ``start_sign_in``: how to start a sign-in (a new code);
- ``complete_sign_in``: how to check a started sign-in, or finish it;
- ``configuration``: where the connector's settings are edited there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.results import ActionResult

KEYS = ("platform", "sign_in", "start_sign_in", "complete_sign_in", "configuration")
"""What every platform's table says."""

Words = Mapping[str, str]


def marker(key: str) -> str:
    """The placeholder a core message writes for one of the steps (never shown: speak replaces it)."""
    if key not in KEYS:
        raise KeyError(key)
    return f"\u27e8{key}\u27e9"


HOW_TO_SIGN_IN = marker("sign_in")
HOW_TO_START_SIGN_IN = marker("start_sign_in")
HOW_TO_COMPLETE_SIGN_IN = marker("complete_sign_in")
WHERE_CONFIGURED = marker("configuration")
PLATFORM_NAME = marker("platform")

NEUTRAL: dict[str, str] = {
    "platform": "this platform",
    "sign_in": "sign the analyst in: start a sign-in (it shows a page and a code), open the page and enter the "
               "code as the analyst, then complete the sign-in",
    "start_sign_in": "start a new sign-in",
    "complete_sign_in": "complete the sign-in",
    "configuration": "the connector's configuration",
}
"""The words when no platform's are given: what to do, naming no command."""


def check(words: Words) -> Words:
    """A platform's table, refused when an entry is missing or empty (a marker would reach a person)."""
    missing = [key for key in KEYS if not str(words.get(key, "")).strip()]
    if missing:
        raise ValueError(f"a platform's words lack {', '.join(missing)}")
    return words


def speak(text: str, words: Words | None = None) -> str:
    """``text`` with every step marker replaced by the platform's words (NEUTRAL's when none are given)."""
    if "\u27e8" not in text:
        return text
    table = words or NEUTRAL
    for key in KEYS:
        text = text.replace(marker(key), table.get(key) or NEUTRAL[key])
    return text


def speak_result(result: ActionResult, words: Words | None = None) -> ActionResult:
    """A result whose message (and error message) speak the platform's words."""
    message = speak(result.message, words)
    error = result.error
    if error is not None and "\u27e8" in error.message:
        error = error.model_copy(update={"message": speak(error.message, words)})
    if message == result.message and error is result.error:
        return result
    return result.model_copy(update={"message": message, "error": error})
