"""Splunk SOAR app (splunk-soar-sdk 7.x): Microsoft Defender for Endpoint IP statistics.

A thin adapter: the asset configuration, the action parameters and outputs are declared from
manifest.json (see declarations.py), every lookup is done by the platform-neutral core
(`connector.run`), and each IP's answer becomes one SOAR action result.

Run an action locally through the SDK's own runner, from connector/platforms/splunk_soar:
    python -m src.app action get-ip-statistics -a asset.json -p params.json
"""

import json
from pathlib import Path
from typing import Any

from soar_sdk.abstract import SOARClient
from soar_sdk.action_results import ActionResult
from soar_sdk.app import App
from soar_sdk.exceptions import ActionFailure
from soar_sdk.logging import getLogger
from soar_sdk.shims.phantom.install_info import is_soar_available
from soar_sdk.shims.phantom_common.encryption.encryption_manager_factory import platform_encryption_backend

import connector

from . import view
from .declarations import build_asset_class, build_output_classes, build_params_class, load_manifest
from .state import AssetStateStore, load_local_state, local_asset_id, local_state_dir, save_local_state

logger = getLogger()

MANIFEST = load_manifest()
Asset = build_asset_class(MANIFEST)
GetIpStatisticsParams = build_params_class(MANIFEST, "get_ip_statistics")
IpStatisticsOutput, IpStatisticsSummary = build_output_classes(MANIFEST, "get_ip_statistics")

class MdeApp(App):
    """The SDK's App, with asset state that outlives a local runner run (see state.py)."""

    def handle(self, raw_input_data: str, handle: int | None = None) -> str:
        if is_soar_available():
            return super().handle(raw_input_data, handle)
        request = json.loads(raw_input_data)
        asset_id = local_asset_id()
        # The runner encrypted the sensitive asset fields for the asset id it invented: re-key them.
        old_salt = request.get("dec_key") or str(request.get("asset_id"))
        config = request.get("config") or {}
        for field in self.asset_cls.fields_requiring_decryption():
            if config.get(field):
                plain = platform_encryption_backend.decrypt(config[field], old_salt)
                config[field] = platform_encryption_backend.encrypt(plain, asset_id)
        request["asset_id"] = asset_id
        request["dec_key"] = None
        self.actions_manager.save_state(load_local_state(asset_id))
        try:
            return super().handle(json.dumps(request), handle)
        finally:
            save_local_state(asset_id, self.actions_manager.load_state() or {})


app = MdeApp(
    name="MDE IP Statistics",
    app_type="investigative",
    logo="logo.svg",
    logo_dark="logo_dark.svg",
    product_vendor="Microsoft",
    product_name="Defender for Endpoint",
    publisher="mde-ipstats",
    appid="f5b82165-b3fd-4c3c-aafd-40b6cd38c225",
    python_version="3.13",
    fips_compliant=False,
    asset_cls=Asset,
)


def _core_config(asset: Any) -> dict[str, Any]:
    """The asset as the core's configuration: field names are manifest.json's."""
    return {name: value for name, value in asset.model_dump().items() if value is not None}


def _core_state_dir() -> Path:
    """Where the core keeps what all assets of the app share (result cache, rate-limit ledger)."""
    if is_soar_available():
        return Path(app.actions_manager.get_state_dir()) / "mde-ipstats"
    return local_state_dir() / "core"


def _run_core(action: str, params: dict[str, Any], asset: Any) -> list[Any]:
    """The core's answer; the MSAL token cache is kept in the asset's auth state (encrypted at rest)."""
    store = AssetStateStore(asset.auth_state)
    try:
        with store.session():
            return connector.run(action, params, _core_config(asset), store=store, state_dir=_core_state_dir())
    except Exception as exc:  # the core returns failed results; anything raised is a defect
        logger.error(f"{action}: unexpected {type(exc).__name__} in the connector core")
        raise ActionFailure(f"Unexpected internal error ({type(exc).__name__}); see the app run log") from None


def _soar_result(result: Any) -> ActionResult:
    """One core ActionResult as one SOAR action result (mapping: declarations.py docstring)."""
    soar_result = ActionResult(status=result.succeeded, message=result.message, param=dict(result.parameters))
    for item in result.data:
        soar_result.add_data(IpStatisticsOutput.model_validate(item).model_dump(by_alias=True))
    summary = dict(result.summary)
    summary["error"] = result.error.model_dump(mode="json") if result.error is not None else None
    summary["cached"] = result.cached
    summary["cache_age_s"] = result.cache_age_s
    soar_result.set_summary(IpStatisticsSummary.model_validate(summary).model_dump(by_alias=True))
    return soar_result


@app.test_connectivity()
def test_connectivity(soar: SOARClient, asset: Asset) -> None:  # type: ignore[valid-type]
    """Sign in to Entra ID and call the Defender API once, to validate the asset configuration."""
    results = _run_core("test_connectivity", {}, asset)
    failed = [r for r in results if not r.succeeded]
    for result in results:
        logger.progress(result.message)
        for checks in result.data:
            logger.info("Connectivity checks: " + json.dumps(checks, sort_keys=True))
    if failed or not results:
        raise ActionFailure(failed[0].message if failed else "The connector returned no result")


def render_ip_statistics(action: str, all_app_runs: list, context: dict, *args: Any, **kwargs: Any) -> str:
    """The custom view, called by SOAR with whole action results: one card per IP, failures included.

    Not wrapped in ``@app.view_handler``: that decorator hands a handler only the data rows, and a
    failed lookup has none (see view.py).
    """
    return view.render(all_app_runs, context)


_GET_IP_STATISTICS = MANIFEST["actions"]["get_ip_statistics"]


@app.action(
    name=_GET_IP_STATISTICS.get("display_name", "get ip statistics"),
    identifier="get_ip_statistics",
    description=_GET_IP_STATISTICS["description"],
    verbose=(
        "For each IP address (one, or several separated by commas): the number of the organization's "
        "devices that communicated with it in the look-back window (at most 720 hours), and when first "
        "and last. An IP never seen in the organization is a successful answer with seenInOrg false. "
        "Each IP is one action result; a failure for one IP does not stop the others."
    ),
    action_type=_GET_IP_STATISTICS.get("type", "investigate"),
    read_only=bool(_GET_IP_STATISTICS.get("read_only", True)),
    params_class=GetIpStatisticsParams,
    output_class=IpStatisticsOutput,
    summary_type=IpStatisticsSummary,
    view_handler=render_ip_statistics,
    flatten_results=False,
)
def get_ip_statistics(params: GetIpStatisticsParams, soar: SOARClient, asset: Asset):  # type: ignore[valid-type]
    core_params = {k: v for k, v in params.model_dump().items() if v is not None}
    results = _run_core("get_ip_statistics", core_params, asset)
    if not results:
        raise ActionFailure("No IP address to look up")
    return [_soar_result(result) for result in results]


if __name__ == "__main__":
    app.cli()
