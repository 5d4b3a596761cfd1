"""Splunk SOAR app (splunk-soar-sdk 7.x): Microsoft Defender for Endpoint IP statistics.

A thin adapter: the asset configuration, the action parameters and outputs are declared from
manifest.json (see declarations.py), every action is done by the platform-neutral core
(`connector.run`), and each of the core's results becomes one SOAR action result.

Delegated access (asset `auth_mode` delegated): `start sign in` shows the device-code URL and code,
`complete sign in` polls for the analyst (once, or up to `wait_s` seconds), `sign out` forgets them.
The analyst's tokens and the pending device flow are kept by the core in the asset's auth state
(encrypted by the SDK, and again by the core), so they survive from one action run to the next.

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
StartSignInParams = build_params_class(MANIFEST, "start_sign_in")
StartSignInOutput, StartSignInSummary = build_output_classes(MANIFEST, "start_sign_in")
CompleteSignInParams = build_params_class(MANIFEST, "complete_sign_in")
CompleteSignInOutput, CompleteSignInSummary = build_output_classes(MANIFEST, "complete_sign_in")
SignOutParams = build_params_class(MANIFEST, "sign_out")
SignOutOutput, SignOutSummary = build_output_classes(MANIFEST, "sign_out")


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
        loaded = load_local_state(asset_id)
        self.actions_manager.save_state(loaded)
        # AssetState.get_all(force_reload=True) re-reads the state file SOAR keeps; here, the local one.
        self.actions_manager.reload_state_from_file = self._reload_local_state  # type: ignore[method-assign]
        try:
            return super().handle(json.dumps(request), handle)
        finally:
            final = self.actions_manager.load_state() or {}
            if final != loaded:  # a run that changed nothing must not overwrite an overlapping run's state
                save_local_state(asset_id, final)

    def _reload_local_state(self, asset_id: str) -> dict:
        state = load_local_state(asset_id)
        if state:
            self.actions_manager.save_state(state)
        return state


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
    """The asset as the core's configuration: field names are manifest.json's. (The result cache, shared
    by the app's assets, is keyed by identity in the core: an analyst's lookups are answered only from
    that analyst's answers, and only while signed in.)"""
    return {name: value for name, value in asset.model_dump().items() if value is not None}


def _core_state_dir() -> Path:
    """Where the core keeps what all assets of the app share (result cache, rate-limit ledger)."""
    if is_soar_available():
        return Path(app.actions_manager.get_state_dir()) / "mde-ipstats"
    return local_state_dir() / "core"


WORDS = {
    "platform": "Splunk SOAR",
    "sign_in": "run the 'start sign in' action on this asset, open the page it shows and enter the code as the "
               "analyst, then run the 'complete sign in' action",
    "start_sign_in": "run the 'start sign in' action again",
    "complete_sign_in": "run the 'complete sign in' action",
    "configuration": "the asset's configuration",
}
"""Splunk SOAR's names for what a person does (connector.wording): every result of this app says them."""


def _run_core(action: str, params: dict[str, Any], asset: Any) -> list[Any]:
    """The core's answer; the MSAL token cache is kept in the asset's auth state (encrypted at rest)."""
    store = AssetStateStore(asset.auth_state)
    try:
        with store.session():
            return connector.run(action, params, _core_config(asset), store=store, state_dir=_core_state_dir(),
                                 words=WORDS)
    except Exception as exc:  # the core returns failed results; anything raised is a defect
        logger.error(f"{action}: unexpected {type(exc).__name__} in the connector core")
        raise ActionFailure(f"Unexpected internal error ({type(exc).__name__}); see the app run log") from None


def _soar_result(result: Any, output_cls: type[Any] = IpStatisticsOutput,
                 summary_cls: type[Any] = IpStatisticsSummary) -> ActionResult:
    """One core ActionResult as one SOAR action result (mapping: declarations.py docstring)."""
    soar_result = ActionResult(status=result.succeeded, message=result.message, param=dict(result.parameters))
    for item in result.data:
        soar_result.add_data(output_cls.model_validate(item).model_dump(by_alias=True))
    summary = dict(result.summary)
    summary["error"] = result.to_dict()["error"]
    summary["cached"] = result.cached
    summary["cache_age_s"] = result.cache_age_s
    soar_result.set_summary(summary_cls.model_validate(summary).model_dump(by_alias=True))
    return soar_result


def _declared(identifier: str) -> dict[str, Any]:
    """What manifest.json says of an action: SOAR name, type and read-only flag."""
    spec = MANIFEST["actions"][identifier]
    return {"name": spec.get("display_name", identifier.replace("_", " ")), "identifier": identifier,
            "description": spec["description"], "action_type": spec.get("type", "generic"),
            "read_only": bool(spec.get("read_only", False))}


def _sign_in_action(identifier: str, params: dict[str, Any], asset: Any, output_cls: type[Any],
                    summary_cls: type[Any]) -> ActionResult:
    """A sign-in action is one core result: a failure stays a SOAR result with its summary.error."""
    results = _run_core(identifier, params, asset)
    if len(results) != 1:
        raise ActionFailure(f"The connector returned {len(results)} results for {identifier}")
    return _soar_result(results[0], output_cls, summary_cls)


@app.test_connectivity()
def test_connectivity(soar: SOARClient, asset: Asset) -> None:  # type: ignore[valid-type]
    """Sign in to Entra ID and call the Defender API once, to validate the asset configuration.

    With auth_mode delegated, the core's message names the signed-in analyst and the token's
    delegated scopes (or says nobody is signed in, and how to sign in)."""
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


@app.action(
    **_declared("get_ip_statistics"),
    verbose=(
        "For each IP address (one, or several separated by commas): the number of the organization's "
        "devices that communicated with it in the look-back window (at most 720 hours), and when first "
        "and last. An IP never seen in the organization is a successful answer with seenInOrg false. "
        "Each IP is one action result; a failure for one IP does not stop the others."
    ),
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


# --- delegated access: the device-code sign-in, in two action runs -----------------------------------

@app.action(
    **_declared("start_sign_in"),
    verbose=(
        "For auth_mode delegated. Asks Entra ID for a device code: the result's message, data and summary "
        "carry the URL to open (verification_uri) and the code to type there (user_code), and when the code "
        "expires (15 minutes). The analyst signs in there with their own account; then run complete sign in. "
        "Lookups then run as that analyst, who needs Defender's View data role permission."
    ),
    params_class=StartSignInParams,
    output_class=StartSignInOutput,
    summary_type=StartSignInSummary,
)
def start_sign_in(params: StartSignInParams, soar: SOARClient, asset: Asset):  # type: ignore[valid-type]
    return _sign_in_action("start_sign_in", {}, asset, StartSignInOutput, StartSignInSummary)


@app.action(
    **_declared("complete_sign_in"),
    verbose=(
        "For auth_mode delegated, after start sign in. With wait_s 0 (the default) it asks Entra ID once and "
        "returns at once: summary.state is pending (a success: the analyst has not finished yet; run it "
        "again) or signed_in (summary.user names the analyst). With wait_s up to 900 it keeps asking, at the "
        "interval Entra ID sets, until the analyst finishes or wait_s has passed. A declined or expired code "
        "fails as authentication; run start sign in again."
    ),
    params_class=CompleteSignInParams,
    output_class=CompleteSignInOutput,
    summary_type=CompleteSignInSummary,
)
def complete_sign_in(params: CompleteSignInParams, soar: SOARClient, asset: Asset):  # type: ignore[valid-type]
    core_params = {k: v for k, v in params.model_dump().items() if v is not None}
    return _sign_in_action("complete_sign_in", core_params, asset, CompleteSignInOutput, CompleteSignInSummary)


@app.action(
    **_declared("sign_out"),
    verbose=(
        "For auth_mode delegated. Forgets the signed-in analyst's tokens (and any pending sign-in) kept in "
        "this asset's state; lookups then fail as not signed in until someone signs in again."
    ),
    params_class=SignOutParams,
    output_class=SignOutOutput,
    summary_type=SignOutSummary,
)
def sign_out(params: SignOutParams, soar: SOARClient, asset: Asset):  # type: ignore[valid-type]
    return _sign_in_action("sign_out", {}, asset, SignOutOutput, SignOutSummary)


if __name__ == "__main__":
    app.cli()
