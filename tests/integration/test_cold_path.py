"""A fresh action process loads only what its answer needs (issues 13 and 19: the cold action cost).

Each test runs ``connector.run`` in a new interpreter, as a SOAR platform runs an action, against the
emulator, and reads that interpreter's ``sys.modules`` afterwards, and which of the connector's models
had their validator built. pydantic is the declared model library and validates the configuration in
every run; what the answer does not need stays out. The speed itself is measured by
bench/cold_start.py; these tests pin down the behaviour the speed rests on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DOC_IP = "10.209.67.177"

_PROBE = """
import json, sys
import connector
from connector.models import Model
config, state_dir, params, action = json.loads(sys.argv[1])
results = connector.run(action, params, config, state_dir=state_dir)
heavy = ("msal", "jsonschema", "pydantic", "msgspec", "pyrate_limiter", "filelock", "connector.delegated",
         "connector.declared", "redis", "tqdm", "requests")
def models(shape):
    for sub in shape.__subclasses__():
        yield sub
        yield from models(sub)
built = sorted({model.__name__ for model in models(Model) if model.__pydantic_complete__})  # before to_dict()
print(json.dumps({"results": [r.to_dict() for r in results], "built": built,
                  "loaded": sorted(name for name in heavy if name in sys.modules)}))
"""


def fresh_process(config: dict, state_dir: Path, params: dict, action: str = "get_ip_statistics") -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([config, str(state_dir), params, action])],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.fixture
def config(emulator) -> dict:  # type: ignore[no-untyped-def]
    return {**emulator.connector_config(app="reader", auth="secret"), "cache_ttl_s": 0}


def test_a_lookup_whose_token_is_cached_imports_no_msal_and_no_jsonschema(emulator, config: dict,
                                                                          tmp_path: Path) -> None:
    first = fresh_process(config, tmp_path, {"ip": DOC_IP})  # signs in: MSAL is needed here
    assert first["results"][0]["status"] == "success" and "msal" in first["loaded"]
    assert "filelock" not in first["loaded"] and "pyrate_limiter" not in first["loaded"]  # even setting up state
    tokens_before = emulator.counters()["token_requests"]

    second = fresh_process(config, tmp_path, {"ip": DOC_IP, "lookback_hours": 48})

    assert second["results"][0]["status"] == "success" and second["results"][0]["cached"] is False
    assert emulator.counters()["token_requests"] == tokens_before  # the token came from the shared cache
    assert second["loaded"] == ["pydantic", "requests"]  # the declared stack it needs, and nothing else of the
    # heavy list: no MSAL, no jsonschema, no second model library, no models only the declaration needs, no
    # rate-limit library or file lock, no delegated machinery
    assert "Settings" in second["built"]  # the configuration is validated ...
    assert "ActionResult" not in second["built"] and "ErrorInfo" not in second["built"]  # ... results the code
    # built are not


def test_a_result_cache_hit_opens_no_rate_gate_and_reads_no_token(emulator, config: dict, tmp_path: Path) -> None:
    cached = {**config, "cache_ttl_s": 900}
    fresh_process(cached, tmp_path, {"ip": DOC_IP})
    calls_before = emulator.counters()["api_calls"]

    hit = fresh_process(cached, tmp_path, {"ip": DOC_IP})

    assert hit["results"][0]["cached"] is True and emulator.counters()["api_calls"] == calls_before
    assert hit["loaded"] == ["pydantic"]  # the model library, and no HTTP stack, no MSAL, no schema library, no rate
    # limiter, no file lock
    assert {"Settings", "OrgStatistics"} <= set(hit["built"])  # the configuration and the cached facts are checked
    assert "ActionResult" not in hit["built"]


def test_unusual_input_still_meets_the_schema(emulator, config: dict, tmp_path: Path) -> None:
    odd = fresh_process(config, tmp_path, {"ip": DOC_IP, "look_back": 5})
    result = odd["results"][0]
    assert result["status"] == "failed" and result["error"]["category"] == "invalid_input"
    assert "Unknown parameter(s) 'look_back'" in result["message"] and "jsonschema" in odd["loaded"]
    assert emulator.counters()["api_calls"] == 0
