"""The TheHive report templates, compiled by AngularJS in headless Chromium against real job reports:
what an analyst reads after running the analyzer on an observable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator

from . import thehive_view
from .jobs import Job

DOC_IP = "10.209.67.177"


@pytest.fixture(scope="module")
def browser() -> str:
    thehive_view.ensure_libraries()
    return thehive_view.chromium()


@pytest.fixture
def show(browser: str, unpacked: Path, tmp_path: Path) -> Callable[[str, Job, str], tuple[str, str]]:
    """show(template, job, observable) -> (visible text, DOM): TheHive's scope for that job's report."""

    def render(template: str, job: Job, observable: str) -> tuple[str, str]:
        output = job.output
        content: Any
        if template == "short.html":
            content = output.get("summary", {})
        else:
            content = output["full"] if output["success"] else {"errorMessage": output["errorMessage"]}
        scope = {"content": content, "success": output["success"], "artifact": {"data": observable}}
        source = unpacked / "thehive-templates" / "MDE_IPStatistics_1_0" / template
        return thehive_view.render(browser, thehive_view.page(source, scope, tmp_path / f"{template}.page.html"))

    return render


def test_the_long_report_says_the_answer_in_words(
        job: Callable[..., Job], emulator: Emulator, show: Callable[[str, Job, str], tuple[str, str]]) -> None:
    done = job(emulator, DOC_IP)
    stats = done.output["full"]["data"][0]
    text, _ = show("long.html", done, DOC_IP)
    assert "{{" not in text
    for expected in (done.output["full"]["message"], "common: seen on many devices", "Address scope private",
                     f"Devices {stats['organizationPrevalence']}",
                     stats["orgFirstSeen"][:19].replace("T", " ") + " UTC",
                     stats["orgLastSeen"][:19].replace("T", " ") + " UTC",
                     f"({int(stats['firstSeenAgeHours'] / 24 + 0.5)} days ago)",
                     "the last 720 hours (30.0 days)"):
        assert expected in text, expected
    assert "failed" not in text


def test_the_long_report_of_a_never_seen_ip_has_no_dates(
        job: Callable[..., Job], emulator: Emulator, show: Callable[[str, Job, str], tuple[str, str]]) -> None:
    ip = emulator.org.sample_ips(1, seen=False)[0]
    text, _ = show("long.html", job(emulator, ip), ip)
    assert "not seen on any device" in text and "First seen -" in text and "Last seen -" in text
    assert "Devices 0" in text


def test_the_long_report_of_a_failed_job_shows_the_error_and_its_correlation_id(
        job: Callable[..., Job], emulator: Emulator, show: Callable[[str, Job, str], tuple[str, str]]) -> None:
    done = job(emulator, DOC_IP, items={"client_secret": "not-the-secret"})
    text, _ = show("long.html", done, DOC_IP)
    assert f"lookup of {DOC_IP} failed" in text
    assert " ".join(done.output["errorMessage"].split()) in text
    assert "category authentication" in text and "correlation id" in text


def test_the_short_report_is_the_taxonomy_label_coloured_by_level(
        job: Callable[..., Job], emulator: Emulator, show: Callable[[str, Job, str], tuple[str, str]]) -> None:
    done = job(emulator, DOC_IP)
    text, dom = show("short.html", done, DOC_IP)
    devices = done.output["full"]["data"][0]["organizationPrevalence"]
    assert text == f'MDE:Prevalence="{devices}"'
    classes = re.findall(r'<span class="([^"]*)"', dom)
    assert len(classes) == 1 and set(classes[0].split()) >= {"label", "label-info"}, classes
