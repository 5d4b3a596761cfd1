"""Calling the Function as the Functions host does: a func.HttpRequest into the decorated function's user code."""

from __future__ import annotations

import json
import os
from typing import Any

import azure.functions as func

from connector.platforms.sentinel.function_app import ipstats
from emulator import Emulator

USER_FUNCTION = ipstats.build().get_user_function()


def call(body: Any, *, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """POST /api/ipstats with ``body`` (JSON) or ``raw`` bytes; (status, the JSON answer)."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = func.HttpRequest(method="POST", url="https://func-mde.azurewebsites.net/api/ipstats", body=data,
                               headers={"Content-Type": "application/json", "x-functions-key": "test-key"})
    response = USER_FUNCTION(request)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def clear_app_settings(monkeypatch: Any) -> None:
    """No MDE_* or identity variable from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(("MDE_", "IDENTITY_", "MSI_", "IMDS_")) or name in (
                "AZURE_POD_IDENTITY_AUTHORITY_HOST", "IPSTATS_MAX_WAIT_S"):
            monkeypatch.delenv(name, raising=False)


def app_settings(monkeypatch: Any, emu: Emulator, identity: str = "system", kind: str = "app_service",
                 **extra: str) -> None:
    """The Function App's environment: its identity endpoint and the MDE_* app settings (pointing at the
    emulator), as the ARM template sets them."""
    clear_app_settings(monkeypatch)
    for name, value in emu.identity_environment(kind).items():
        monkeypatch.setenv(name, value)
    for name, value in {**emu.managed_identity_config(identity), **extra}.items():
        monkeypatch.setenv(f"MDE_{name.upper()}", value)


def verdicts(document: dict[str, Any]) -> dict[str, str]:
    """IP -> verdict (or the failed result's error category)."""
    return {r["parameters"]["ip"]: (r["data"][0]["verdict"] if r["status"] == "success"
                                    else f"failed:{r['error']['category']}") for r in document["results"]}
