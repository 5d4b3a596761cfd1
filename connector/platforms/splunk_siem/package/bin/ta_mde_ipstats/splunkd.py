"""The add-on's configuration as UCC stores it, read back through splunkd's REST API.

UCC keeps an account's plain fields in ta_mde_ipstats_account.conf and its encrypted fields, as one JSON
object, in storage/passwords (realm ``__REST_CREDENTIAL__#<app>#configs/conf-<file>``, user = stanza
name; the .conf holds ``******`` in their place). Passwords longer than 255 characters are split by
solnlib into parts ``<user>``splunk_cred_sep``<n>`` ended by an END_MARK part. The Settings tabs
(advanced, proxy, logging) are stanzas of ta_mde_ipstats_settings.conf, stored the same way.

Everything is read with the search's own session key, so a user who may not read the add-on's
configuration cannot use its credentials, and in the add-on's own namespace (/servicesNS/nobody/
TA-mde-ipstats/...), not the app the search runs in: UCC's objects belong to the add-on, and shared
"This app only" they are invisible from the Search app's namespace. Nothing read here is logged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from connector.errors import ConfigurationError

from . import APP_NAME, REST_ROOT

ACCOUNT_CONF = f"{REST_ROOT}_account"
SETTINGS_CONF = f"{REST_ROOT}_settings"
ENCRYPTED_PLACEHOLDER = "******"
CRED_SEP = "``splunk_cred_sep``"
END_MARK = CRED_SEP + CRED_SEP.join("SPLUNK") + CRED_SEP
_PART = re.compile(r"^(?P<user>.+)" + re.escape(CRED_SEP) + r"(?P<index>\d+)$")
_SKIP = re.compile(r"^(eai:.*|disabled|name)$")
ADVANCED_STANZA = "advanced"
PROXY_STANZA = "proxy"
LOGGING_STANZA = "logging"


def realm(conf: str, app: str = APP_NAME) -> str:
    return f"__REST_CREDENTIAL__#{app}#configs/conf-{conf}"


@dataclass(frozen=True)
class AddonConfig:
    """What one search needs: the chosen account's name, the core configuration, the log level."""

    account: str
    config: dict[str, Any] = field(repr=False)
    log_level: str = "INFO"


def clear_passwords(entries: Iterable[Mapping[str, Any]], wanted_realm: str) -> dict[str, str]:
    """user -> clear password in one realm, with solnlib's split parts joined back in order."""
    whole: dict[str, str] = {}
    parts: dict[str, dict[int, str]] = {}
    for entry in entries:
        if entry.get("realm") != wanted_realm:
            continue
        user = str(entry.get("username", ""))
        clear = str(entry.get("clear_password", ""))
        match = _PART.match(user)
        if match:
            parts.setdefault(match["user"], {})[int(match["index"])] = clear
        else:
            whole[user] = clear
    for user, pieces in parts.items():
        text = []
        for index in sorted(pieces):
            if pieces[index] == END_MARK:
                break
            text.append(pieces[index])
        whole[user] = "".join(text)
    return whole


def merge_secrets(stanza: Mapping[str, Any], secrets: str | None, where: str) -> dict[str, Any]:
    """A stanza's plain fields with its encrypted ones put back from their JSON blob."""
    values = {k: v for k, v in stanza.items() if not _SKIP.match(k)}
    if secrets:
        try:
            decoded = json.loads(secrets)
        except ValueError:
            raise ConfigurationError(f"The encrypted fields of {where} are not readable JSON; save it again "
                                     "in the add-on's Configuration page.") from None
        if isinstance(decoded, dict):
            values.update({k: v for k, v in decoded.items() if v not in (None, "")})
    left = sorted(k for k, v in values.items() if v == ENCRYPTED_PLACEHOLDER)
    if left:
        raise ConfigurationError(f"{where}: the encrypted field(s) {', '.join(left)} have no stored value; "
                                 "enter them again in the add-on's Configuration page.")
    return values


def is_true(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "t", "y")


def proxy_url(stanza: Mapping[str, Any]) -> str | None:
    """The proxy tab's fields as one URL, or None when the proxy is off."""
    if not is_true(stanza.get("proxy_enabled", "0")) or not stanza.get("proxy_url"):
        return None
    kind = str(stanza.get("proxy_type") or "http").lower()
    if kind not in ("http", "https"):
        raise ConfigurationError(f"Proxy type {kind} is not supported: use an HTTP proxy (CONNECT).")
    host = str(stanza["proxy_url"]).strip()
    port = str(stanza.get("proxy_port") or "").strip()
    user = str(stanza.get("proxy_username") or "")
    password = str(stanza.get("proxy_password") or "")
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return f"{kind}://{credentials}{host}{':' + port if port else ''}"


def core_config(account: Mapping[str, Any], advanced: Mapping[str, Any], proxy: str | None) -> dict[str, Any]:
    """The core's configuration (manifest.json field names) from an account and the shared settings."""
    config = {k: v for k, v in {**advanced, **account}.items() if v not in (None, "")}
    if proxy:
        config["proxy"] = proxy
    return config


def addon_service(service: Any) -> Any:
    """The search's splunkd session, bound to the add-on's namespace (owner nobody, app TA-mde-ipstats)
    instead of the search's app: what the add-on stores is found whether it is shared globally or not."""
    from splunklib import client  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return client.Service(scheme=service.scheme, host=service.host, port=service.port, token=service.token,
                          owner="nobody", app=APP_NAME, sharing="app")


class SplunkdConfigReader:
    """Reads the add-on's configuration with a splunklib ``Service`` (the search's session, in the
    add-on's namespace: see addon_service)."""

    def __init__(self, service: Any) -> None:
        self._service = addon_service(service)

    def _stanzas(self, conf: str) -> dict[str, dict[str, Any]]:
        from splunklib import client  # type: ignore[import-not-found,import-untyped,unused-ignore]

        collection = client.ConfigurationFile(self._service, client.PATH_CONF % conf, state={"title": conf})
        return {stanza.name: dict(stanza.content) for stanza in collection.list(count=-1)}

    def _passwords(self, conf: str) -> dict[str, str]:
        wanted = realm(conf)
        entries = self._service.storage_passwords.list(count=-1, search=f"realm={wanted}")
        return clear_passwords((dict(e.content) for e in entries), wanted)

    def read(self, account: str | None) -> AddonConfig:
        from splunklib.binding import HTTPError  # type: ignore[import-not-found,import-untyped,unused-ignore]

        try:
            accounts = self._stanzas(ACCOUNT_CONF)
            settings = self._stanzas(SETTINGS_CONF)
            name = choose_account(accounts, account)
            account_secrets = self._passwords(ACCOUNT_CONF) if _has_encrypted(accounts[name]) else {}
            setting_secrets = self._passwords(SETTINGS_CONF) if any(
                _has_encrypted(s) for s in settings.values()) else {}
        except HTTPError as exc:
            raise ConfigurationError(
                f"splunkd refused to give the add-on's configuration ({exc.status} {exc.reason}): the user "
                f"running this search needs read access to {APP_NAME} and the list_storage_passwords "
                "capability.") from None
        values = merge_secrets(accounts[name], account_secrets.get(name), f"Account {name}")
        advanced = merge_secrets(settings.get(ADVANCED_STANZA, {}), setting_secrets.get(ADVANCED_STANZA),
                                 "Advanced settings")
        proxy = merge_secrets(settings.get(PROXY_STANZA, {}), setting_secrets.get(PROXY_STANZA), "Proxy settings")
        level = str(settings.get(LOGGING_STANZA, {}).get("loglevel") or "INFO").upper()
        return AddonConfig(name, core_config(values, advanced, proxy_url(proxy)), level)


def _has_encrypted(stanza: Mapping[str, Any]) -> bool:
    return any(v == ENCRYPTED_PLACEHOLDER for v in stanza.values())


def choose_account(accounts: Mapping[str, Any], wanted: str | None) -> str:
    if wanted:
        if wanted not in accounts:
            known = ", ".join(sorted(accounts)) or "none"
            raise ConfigurationError(f"No account named {wanted} in {APP_NAME} (accounts: {known}).")
        return wanted
    if len(accounts) == 1:
        return next(iter(accounts))
    if not accounts:
        raise ConfigurationError(f"No account is configured: add one in {APP_NAME}'s Configuration > Accounts.")
    raise ConfigurationError(f"Several accounts are configured ({', '.join(sorted(accounts))}): "
                             "choose one with account=NAME.")
