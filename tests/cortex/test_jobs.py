"""The shipped analyzer, run as Cortex runs it (job directory in, output.json out), against the emulator.

Each job is the program from the archive, run by the python of a venv built from the archive's
requirements.txt, with input/input.json in the shape Cortex writes (configuration included) and
Cortex's `cacerts` carrying the emulator's CA: the only way its TLS can be trusted.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from reliability.helpers import ConnectProxy

from connector.manifest import load_manifest
from emulator import Emulator, Fault

from .jobs import Job, cortex_input, items_for, run_jobs

DOC_IP = "10.209.67.177"


@cache
def result_schema() -> dict[str, Any]:
    return dict(load_manifest()["actions"]["get_ip_statistics"]["output"])


def rare_ip(emu: Emulator) -> tuple[str, int]:
    for ip in emu.org.sample_ips(400, seen=True):
        devices = emu.org.stats(ip)[0]
        if 1 <= devices <= 5:
            return ip, devices
    raise AssertionError("the emulator's organisation has no rare IP in its sample")


def taxonomy(job: Job) -> dict[str, Any]:
    taxonomies = job.output["summary"]["taxonomies"]
    assert len(taxonomies) == 1, taxonomies
    return dict(taxonomies[0])


def assert_no_request(emu: Emulator) -> None:
    assert emu.request_log() == [], "the job reached the emulator"


# -- answers ---------------------------------------------------------------------------------------


def test_a_seen_ip_reports_the_core_result_as_full_and_its_device_count_as_taxonomy(
        job: Callable[..., Job], emulator: Emulator) -> None:
    devices, first, last = emulator.org.stats(DOC_IP)
    done = job(emulator, DOC_IP)
    assert done.returncode == 0, done.stderr
    assert done.output["success"] is True
    full = dict(done.output["full"])
    # The core's result object as is, plus the analyzer's word on where its state lives (process runner).
    assert full.pop("analyzer_state")["shared"] is True
    jsonschema.validate(full, result_schema())
    assert full["status"] == "success" and full["error"] is None
    stats = full["data"][0]
    assert (stats["ipAddress"], stats["organizationPrevalence"], stats["seenInOrg"]) == (DOC_IP, devices, True)
    assert stats["orgFirstSeen"].startswith(first.strftime("%Y-%m-%dT%H:%M:%S"))
    assert stats["orgLastSeen"].startswith(last.strftime("%Y-%m-%dT%H:%M:%S"))
    assert stats["verdict"] == "common"
    assert taxonomy(done) == {"level": "info", "namespace": "MDE", "predicate": "Prevalence", "value": str(devices)}
    assert done.output["artifacts"] == []
    counters = emulator.counters()
    assert (counters["token_requests"], counters["api_calls"]) == (1, 1)


def test_a_rare_ip_is_suspicious_by_default(job: Callable[..., Job], emulator: Emulator) -> None:
    ip, devices = rare_ip(emulator)
    done = job(emulator, ip)
    assert done.output["full"]["data"][0]["verdict"] == "rare"
    assert taxonomy(done) == {"level": "suspicious", "namespace": "MDE", "predicate": "Prevalence",
                              "value": str(devices)}


@pytest.mark.parametrize("generation", ["current", "legacy"])
def test_a_never_seen_ip_is_not_seen_and_suspicious_in_both_api_generations(
        job: Callable[..., Job], make_emulator: Callable[..., Emulator], generation: str) -> None:
    emu = make_emulator(generation=generation)
    ip = emu.org.sample_ips(1, seen=False)[0]
    done = job(emu, ip)
    assert done.output["success"] is True, done.output.get("errorMessage")
    stats = done.output["full"]["data"][0]
    assert (stats["seenInOrg"], stats["organizationPrevalence"], stats["orgFirstSeen"]) == (False, 0, None)
    assert taxonomy(done) == {"level": "suspicious", "namespace": "MDE", "predicate": "Prevalence",
                              "value": "not seen"}
    statuses = [entry["status"] for entry in emu.request_log() if entry["route"] == "api"]
    assert statuses == ([200] if generation == "current" else [404])


def test_taxonomy_levels_are_configuration_items(job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, DOC_IP, items={"taxonomy_level_common": "safe"})
    assert taxonomy(done)["level"] == "safe"


def test_a_level_that_is_not_a_taxonomy_level_fails_before_any_request(
        job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, DOC_IP, items={"taxonomy_level_rare": "alarming"})
    assert done.output["success"] is False
    assert "taxonomy_level_rare" in done.output["errorMessage"]
    assert_no_request(emulator)


def test_the_look_back_window_is_a_configuration_item(job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, DOC_IP, items={"lookback_hours": 48})
    assert done.output["full"]["data"][0]["lookBackHours"] == 48
    assert "lookBackHours=48" in emulator.request_log()[-1]["path"]


def test_a_job_runs_in_the_interactive_lane_unless_its_parameters_or_the_item_say_otherwise(
        job: Callable[..., Job], emulator: Emulator) -> None:
    """Cortex's job input says nothing of who started a job: an analyst waiting on TheHive's report, by
    default; the organization's lane item, and a job's own parameters.lane, say otherwise."""
    ips = emulator.org.sample_ips(3, seen=True)
    by_default = job(emulator, ips[0])
    by_item = job(emulator, ips[1], items={"lane": "automation"})
    by_job = job(emulator, ips[2], items={"lane": "automation"}, parameters={"lane": "bulk"})
    assert [j.output["full"]["summary"]["lane"] for j in (by_default, by_item, by_job)] == [
        "interactive", "automation", "bulk"]


def test_a_lane_that_is_not_a_lane_fails_before_any_request(job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, DOC_IP, parameters={"lane": "urgent"})
    assert done.output["success"] is False
    assert "lane" in done.output["errorMessage"] and "interactive" in done.output["errorMessage"]
    assert_no_request(emulator)


def test_a_certificate_credential_pasted_as_pem_text_signs_in(job: Callable[..., Job], emulator: Emulator) -> None:
    certificate = emulator.connector_config(auth="certificate")
    done = job(emulator, DOC_IP, items={"client_secret": "", "private_key": certificate["private_key"],
                                        "thumbprint": certificate["thumbprint"]})
    assert done.output["success"] is True, done.output.get("errorMessage")
    assert emulator.counters()["token_requests"] == 1


def test_numbers_cortex_sends_as_decimals_are_accepted(job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, DOC_IP, items={"lookback_hours": 48.0, "rate_limit_per_minute": 100.0,
                                        "timeout_s": 30, "cache_ttl_s": 900})
    assert done.output["success"] is True, done.output.get("errorMessage")
    assert done.output["full"]["data"][0]["lookBackHours"] == 48


# -- refused before any request ----------------------------------------------------------------------


@pytest.mark.parametrize("data", ["10.0.0.0/8", "host.example.com", "1.1.1.1/../x", "1.1.1.1, 8.8.8.8",
                                  "10.0.0.1-10.0.0.9", "fe80::1%eth0", ""])
def test_an_observable_that_is_not_one_ip_address_fails_before_any_request(
        job: Callable[..., Job], emulator: Emulator, data: str) -> None:
    done = job(emulator, data)
    assert done.output["success"] is False
    assert "Nothing was sent to Defender" in done.output["errorMessage"]
    assert_no_request(emulator)


def test_an_observable_of_another_data_type_fails_before_any_request(
        job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, "example.com", data_type="domain")
    assert done.output["success"] is False
    assert done.output["errorMessage"] == "This datatype is not supported by this analyzer."  # notSupported()
    assert_no_request(emulator)


def test_a_tlp_above_max_tlp_is_refused_by_cortexutils(job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, DOC_IP, tlp=3)
    assert done.output == {**done.output, "success": False, "errorMessage": "TLP is higher than allowed."}
    assert_no_request(emulator)


# -- failures ------------------------------------------------------------------------------------------


def test_a_wrong_secret_fails_with_the_cores_message_and_the_secret_blanked(
        job: Callable[..., Job], emulator: Emulator) -> None:
    wrong = "wrong-secret-" + "x7Q" * 8
    done = job(emulator, DOC_IP, items={"client_secret": wrong})
    assert done.returncode != 0
    assert done.output["success"] is False
    message = done.output["errorMessage"]
    assert "AADSTS7000215" in message and "category authentication" in message
    assert re.search(r"correlation id [0-9a-f-]{36}", message)
    assert done.output["input"]["config"]["client_secret"] == "REMOVED"
    assert wrong not in done.text
    assert emulator.counters()["api_calls"] == 0


def test_every_secret_of_the_manifest_and_the_proxy_is_blanked_in_the_echoed_input(
        job: Callable[..., Job], emulator: Emulator) -> None:
    fields = load_manifest()["configuration"]["properties"]
    secrets = {name: f"do-not-echo-{name}-9f3c1a" for name, schema in fields.items() if schema.get("x-secret")}
    assert {"client_secret", "private_key", "store_url"} <= set(secrets)
    proxy_password = "proxy-pass-5e8d2b"
    proxy_url = f"http://user:{proxy_password}@127.0.0.1:9"
    # Both a secret and a key: a configuration error, so the job fails (and echoes) before any request.
    done = job(emulator, DOC_IP, items=secrets, proxy={"http": proxy_url, "https": proxy_url})
    assert done.output["success"] is False
    echoed = done.output["input"]["config"]
    for name in [*secrets, "proxy", "proxy_http", "proxy_https"]:
        assert echoed[name] == "REMOVED", name
    for value in [*secrets.values(), proxy_password]:
        assert value not in done.text
    assert_no_request(emulator)


def test_a_429_is_waited_out_for_its_retry_after(job: Callable[..., Job], emulator: Emulator) -> None:
    emulator.inject_fault(Fault(route="api", status=429, headers={"Retry-After": "1"}), count=1)
    done = job(emulator, DOC_IP)
    assert done.output["success"] is True, done.output.get("errorMessage")
    assert [e["status"] for e in emulator.request_log() if e["route"] == "api"] == [429, 200]
    assert done.seconds >= 1.0


def test_a_429_whose_retry_after_passes_the_budget_fails_rate_limited_with_the_wait(
        job: Callable[..., Job], emulator: Emulator) -> None:
    emulator.inject_fault(Fault(route="api", status=429, headers={"Retry-After": "120"}), count=1)
    done = job(emulator, DOC_IP, items={"item_budget_s": 10})
    assert done.output["success"] is False
    message = done.output["errorMessage"]
    assert "category rate_limited" in message and "HTTP 429" in message and "retry after 120 s" in message
    assert done.seconds < 10


# -- Cortex's settings and state ---------------------------------------------------------------------


def test_cortex_cacerts_is_what_makes_the_emulators_tls_trusted(
        job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, DOC_IP, cacerts="")
    assert done.output["success"] is False
    assert "category network" in done.output["errorMessage"] and "ca_bundle" in done.output["errorMessage"]


def test_cortex_https_proxy_carries_sign_in_and_api_calls(job: Callable[..., Job], emulator: Emulator) -> None:
    with ConnectProxy() as proxy:
        done = job(emulator, DOC_IP, proxy={"http": "", "https": proxy.url})
        assert done.output["success"] is True, done.output.get("errorMessage")
        assert proxy.tunnels, "nothing went through the proxy"
    assert emulator.counters()["api_calls"] == 1


def test_state_survives_between_jobs_a_second_job_is_answered_from_the_cache(
        job: Callable[..., Job], emulator: Emulator) -> None:
    first = job(emulator, DOC_IP)
    second = job(emulator, DOC_IP)
    assert (first.output["full"]["cached"], second.output["full"]["cached"]) == (False, True)
    # The process runner with a state directory: the report says the state is shared, and where.
    assert second.output["full"]["analyzer_state"]["shared"] is True
    assert second.output["full"]["analyzer_state"]["store"].startswith("sqlite in ")
    assert second.output["full"]["analyzer_state"]["warning"] is None
    assert taxonomy(second) == taxonomy(first)
    counters = emulator.counters()
    assert (counters["token_requests"], counters["api_calls"]) == (1, 1)


def test_a_state_dir_that_cannot_be_created_fails_with_what_to_do(
        job: Callable[..., Job], emulator: Emulator, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = job(emulator, DOC_IP, items={"state_dir": str(blocker / "state")})
    assert done.output["success"] is False
    assert "state_dir" in done.output["errorMessage"]
    assert_no_request(emulator)


@pytest.mark.redis
def test_with_a_redis_store_jobs_in_fresh_containers_share_token_cache_and_answers(
        job: Callable[..., Job], make_emulator: Callable[..., Emulator], redis_url: str, tmp_path: Path) -> None:
    emu = make_emulator(seed=secrets.randbits(32))  # a tenant of its own: nothing cached by an earlier run
    redis = {"store_backend": "redis", "store_url": redis_url}
    first = job(emu, DOC_IP, items={**redis, "state_dir": str(tmp_path / "container-1")})
    second = job(emu, DOC_IP, items={**redis, "state_dir": str(tmp_path / "container-2")})
    assert (first.output["full"]["cached"], second.output["full"]["cached"]) == (False, True)
    counters = emu.counters()
    assert (counters["token_requests"], counters["api_calls"]) == (1, 1)
    assert not any((tmp_path / f"container-{n}" / "state.sqlite3").exists() for n in (1, 2))


def test_in_a_fresh_container_without_redis_the_report_says_the_limit_was_not_shared(
        job: Callable[..., Job], make_emulator: Callable[..., Emulator], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cortex's docker runner: each job a new container (the Dockerfile's marker; a state_dir of its own).
    The answer comes, but never silently: the report and the job's log say the rate limit and caches
    were this container's alone, and what to configure."""
    emu = make_emulator(seed=secrets.randbits(32))
    monkeypatch.setenv("MDE_IPSTATS_CORTEX_CONTAINER", "1")
    first = job(emu, DOC_IP, items={"state_dir": str(tmp_path / "container-1")})
    second = job(emu, DOC_IP, items={"state_dir": str(tmp_path / "container-2")})
    for done in (first, second):
        assert done.output["success"] is True, done.output.get("errorMessage")
        state = done.output["full"]["analyzer_state"]
        assert state["shared"] is False
        assert "Set store_backend to redis" in state["warning"] and "process runner" in state["warning"]
        assert "not counted across jobs" in done.stderr
    assert (first.output["full"]["cached"], second.output["full"]["cached"]) == (False, False)
    assert emu.counters()["token_requests"] == 2  # nothing carried over: which is what the report says


@pytest.mark.redis
def test_in_a_fresh_container_with_redis_the_report_says_the_state_is_shared(
        job: Callable[..., Job], make_emulator: Callable[..., Emulator], redis_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    emu = make_emulator(seed=secrets.randbits(32))
    monkeypatch.setenv("MDE_IPSTATS_CORTEX_CONTAINER", "1")
    done = job(emu, DOC_IP, items={"store_backend": "redis", "store_url": redis_url,
                                   "state_dir": str(tmp_path / "container")})
    assert done.output["full"]["analyzer_state"] == {"shared": True, "store": "redis", "warning": None}


def test_a_burst_of_50_jobs_on_10_ips_signs_in_once_and_calls_the_api_once_per_ip(
        cortex_python: Path, program: Path, emulator: Emulator, tmp_path: Path) -> None:
    ips = [ip for ip in emulator.org.sample_ips(40, seen=True) if ":" not in ip][:10]
    assert len(ips) == 10
    cacerts = Path(emulator.ca_path).read_text()
    config = items_for(emulator, tmp_path / "state")
    jobs = [(tmp_path / f"job-{n}", cortex_input(ips[n % 10], config, cacerts=cacerts)) for n in range(50)]
    done = run_jobs(cortex_python, program, jobs, parallel=5)
    failures = [d.output.get("errorMessage") for d in done if not d.output["success"]]
    assert failures == []
    for n, d in enumerate(done):
        assert taxonomy(d)["value"] == str(emulator.org.stats(ips[n % 10])[0])
    counters = emulator.counters()
    assert (counters["token_requests"], counters["api_calls"]) == (1, 10)
    assert sum(d.output["full"]["cached"] for d in done) == 40
    print(f"burst: 50 jobs, 5 at a time: longest job {max(d.seconds for d in done):.2f} s, "
          f"sum {sum(d.seconds for d in done):.1f} s")


def test_the_echoed_input_of_a_failed_job_is_the_job_input(job: Callable[..., Job], emulator: Emulator) -> None:
    done = job(emulator, "not-an-ip")
    echoed = done.output["input"]
    assert (echoed["data"], echoed["dataType"]) == ("not-an-ip", "ip")
    json.dumps(echoed)  # what Cortex stores must stay plain JSON
