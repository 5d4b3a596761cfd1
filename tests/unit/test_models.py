"""The model layer: load() names problems in words, to_builtins() dumps as pydantic would, and the models
only the declaration needs are still found where they belong."""

import pytest

from connector import results, signin
from connector.errors import Category, PermissionDeniedError
from connector.interpret import Judgement, interpret
from connector.mapping import statistics_from_body
from connector.models import ShapeError, load, to_builtins
from connector.results import ActionResult, OrgStatistics
from connector.settings import Settings
from connector.signin import CompleteSignInInput


def test_to_builtins_gives_what_pydantic_dumps_as_json() -> None:
    facts = statistics_from_body("10.3.0.1", 720, {"organizationPrevalence": 2, "orgFirstSeen": "2026-11-30T03:12:40Z",
                                                   "orgLastSeen": "2026-11-30T05:02:11Z"})
    stats = interpret(facts, Judgement())
    failed = ActionResult.failure("get_ip_statistics", {"ip": "8.8.8.8"}, PermissionDeniedError("no Ip.Read.All"))
    settings = Settings(tenant_id="contoso.onmicrosoft.com", client_id="66666666-7777-8888-9999-000000000000",
                        client_secret="s3cret")
    for shape in (facts, stats, failed, failed.replace(error=None, data=[to_builtins(stats)]), settings):
        assert to_builtins(shape) == shape.model_dump(mode="json")
    assert to_builtins(failed)["error"]["category"] == "permission" and failed.error is not None
    assert failed.error.category is Category.PERMISSION
    assert to_builtins(settings)["client_secret"] == "**********"


def test_load_names_each_problem_in_words_without_pydantic_wording() -> None:
    with pytest.raises(ShapeError) as refused:
        load(OrgStatistics, {"ipAddress": ["10.0.0.1"], "organizationPrevalence": -1, "orgPrevalence": "1",
                             "orgFirstSeen": None, "seenInOrg": "perhaps", "lookBackHours": 721, "extra": "x"})
    problems = refused.value.problems
    assert problems == ["ipAddress: must be text", "organizationPrevalence: must be a whole number >= 0",
                        "orgLastSeen: is required", "seenInOrg: must be true or false",
                        "lookBackHours: must be a whole number <= 720", "extra: is not a known field"]
    assert refused.value.describe("cache entry").startswith("Invalid cache entry: ipAddress: must be text; ")
    assert not any("pydantic" in problem or "input_value" in problem or "Input should" in problem
                   for problem in problems)


def test_a_rule_given_to_load_runs_on_the_typed_value_and_names_its_field() -> None:
    def even(value: int) -> int:
        if value % 2:
            raise ValueError("must be even")
        return value // 2

    assert load(CompleteSignInInput, {"wait_s": "8"}, {"wait_s": even}).wait_s == 4
    with pytest.raises(ShapeError) as refused:
        load(CompleteSignInInput, {"wait_s": 7}, {"wait_s": even})
    assert refused.value.problems == ["wait_s: must be even"]
    assert CompleteSignInInput(wait_s=7).wait_s == 7  # built in code: no rule runs


def test_the_models_only_the_declaration_needs_are_found_where_they_belong() -> None:
    assert results.IpStatisticsResult.model_fields["data"].annotation is not None
    assert signin.SignInResult.__name__ == "SignInResult"
    from connector.manifest import GetIpStatisticsInput

    assert set(GetIpStatisticsInput.model_fields) == {"ip", "lookback_hours", "lane"}
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        results.Nothing  # noqa: B018
