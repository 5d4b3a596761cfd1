"""The delegated sign-in actions every platform adapter exposes: start sign in, complete sign in,
sign out. They turn connector.delegated's device flow into standard results, so that a SOAR UI shows
the URL and the code (message, data and summary) and a playbook can branch on ``summary.state``:

- ``start_sign_in``: ``summary.state`` "pending", with ``verification_uri``, ``user_code`` and
  ``expires_at``; the message is the one Entra ID wrote for the person.
- ``complete_sign_in`` (``wait_s``: 0 = one poll; otherwise poll up to that many seconds):
  "pending" is a *success* whose message says what the person still has to do; "signed_in" names
  the user; a declined, expired or blocked sign-in is a failed result of category
  ``authentication`` (``configuration`` when the app registration does not allow public client flows).
- ``sign_out``: forgets the signed-in person's tokens ("signed_out").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from connector.errors import ConfigurationError, ConnectorError, InvalidInputError
from connector.models import ShapeError, declared_elsewhere, load, to_builtins
from connector.results import ActionResult
from connector.wording import HOW_TO_COMPLETE_SIGN_IN

if TYPE_CHECKING:
    from connector.declared import CompleteSignInInput as CompleteSignInInput
    from connector.declared import SignInData as SignInData
    from connector.declared import SignInResult as SignInResult
    from connector.declared import SignInSummary as SignInSummary
    from connector.declared import SignOutInput as SignOutInput
    from connector.declared import StartSignInInput as StartSignInInput
    from connector.delegated import DelegatedTokenProvider, SignInProgress

START_SIGN_IN = "start_sign_in"
COMPLETE_SIGN_IN = "complete_sign_in"
SIGN_OUT = "sign_out"
SIGN_IN_ACTIONS = (START_SIGN_IN, COMPLETE_SIGN_IN, SIGN_OUT)
MAX_WAIT_S = 900

SignInState = Literal["pending", "signed_in", "signed_out"]


def _provider(tokens: object, action: str) -> DelegatedTokenProvider:
    from connector.delegated import DelegatedTokenProvider

    if not isinstance(tokens, DelegatedTokenProvider):
        raise ConfigurationError(f"{action} is for auth_mode delegated (an analyst signs in with a device code); "
                                 "this configuration uses auth_mode application, which needs no sign-in.")
    return tokens


def _result(action: str, parameters: dict[str, Any], message: str, /, **data: Any) -> ActionResult:
    """A sign-in action's success: ``data`` holds SignInData's fields, the summary those of its fields
    that are known."""
    from connector.declared import SignInData, SignInSummary

    fields: dict[str, Any] = to_builtins(SignInData.model_construct(**data))
    summary = {name: fields[name] for name in SignInSummary.model_fields if fields[name] is not None}
    return ActionResult.model_construct(action=action, status="success", message=message, parameters=parameters,
                                        data=[fields], summary=summary)


def start_sign_in(tokens: object, deadline: float) -> ActionResult:
    try:
        started = _provider(tokens, START_SIGN_IN).start_sign_in(deadline)
    except ConnectorError as exc:
        return ActionResult.failure(START_SIGN_IN, {}, exc)
    message = f"{started.message} Then {HOW_TO_COMPLETE_SIGN_IN}; the code expires at {started.expires_at}."
    return _result(START_SIGN_IN, {}, message, state="pending", verification_uri=started.verification_uri,
                   user_code=started.user_code, message=started.message, expires_in_s=started.expires_in_s,
                   expires_at=started.expires_at, interval_s=started.interval_s)


def parse_wait(params: Mapping[str, Any]) -> int:
    from connector.declared import CompleteSignInInput

    try:
        return load(CompleteSignInInput, params).wait_s
    except ShapeError as exc:
        raise InvalidInputError(exc.describe("input"), code="InvalidInput") from None


def complete_sign_in(tokens: object, params: Mapping[str, Any]) -> ActionResult:
    parameters: dict[str, Any] = {"wait_s": params.get("wait_s", 0)}
    try:
        wait_s = parse_wait(params)
        parameters["wait_s"] = wait_s
        progress: SignInProgress = _provider(tokens, COMPLETE_SIGN_IN).complete_sign_in(float(wait_s))
    except ConnectorError as exc:
        return ActionResult.failure(COMPLETE_SIGN_IN, parameters, exc)
    if progress.state == "pending":
        return _result(COMPLETE_SIGN_IN, parameters, progress.message, state="pending",
                       expires_at=progress.expires_at, message=progress.message)
    return _result(COMPLETE_SIGN_IN, parameters, progress.message, state="signed_in", user=progress.user,
                   scopes=list(progress.scopes))


def sign_out(tokens: object) -> ActionResult:
    try:
        user = _provider(tokens, SIGN_OUT).sign_out()
    except ConnectorError as exc:
        return ActionResult.failure(SIGN_OUT, {}, exc)
    message = (f"Signed out {user}: their tokens were removed from this connector's state." if user
               else "Nobody was signed in; any pending sign-in was cancelled.")
    return _result(SIGN_OUT, {}, message, state="signed_out", user=user)


__getattr__ = declared_elsewhere(__name__, ("CompleteSignInInput", "SignInData", "SignInSummary", "StartSignInInput",
                                            "SignOutInput", "SignInResult"))
"""The sign-in actions' models, defined with the first sign-in action (connector/declared.py)."""
