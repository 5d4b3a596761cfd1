"""The one HTTP session that sign-in and API calls share, with TLS and proxy settings that stick.

requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` and ``HTTPS_PROXY`` from the environment
override a session's own ``verify`` and ``proxies``. MSAL is handed this session too, so a CA bundle
or proxy configured for the connector must win for every request, and verification can never be
switched off by a stray variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from connector.errors import ConfigurationError
from connector.settings import Settings

USER_AGENT = "mde-ipstats/0.1 (+SOAR connector; Defender for Endpoint IP statistics)"
CONNECT_TIMEOUT_S = 10.0


class ConnectorSession(requests.Session):
    """A Session whose configured CA bundle and proxy beat the environment."""

    def __init__(self, *, ca_bundle: str | None, proxy: str | None) -> None:
        super().__init__()
        self._configured_ca = ca_bundle
        self._configured_proxy = proxy
        self.verify = ca_bundle if ca_bundle else True
        if proxy:
            self.proxies = {"https": proxy, "http": proxy}
        self.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.mount("https://", adapter)

    default_timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, 30.0)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Every request gets a timeout, including MSAL's, which passes none of its own."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Mapping[str, Any] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: Any,
    ) -> Any:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)  # type: ignore[arg-type]
        if self._configured_ca:
            merged["verify"] = self._configured_ca
        if self._configured_proxy:
            merged["proxies"] = {"https": self._configured_proxy, "http": self._configured_proxy}
        if merged.get("verify") is False or merged.get("verify") == "":
            raise ConfigurationError(
                "TLS certificate verification was switched off (an empty CURL_CA_BUNDLE or a verify=False "
                "somewhere); the connector refuses to send credentials without it. Configure ca_bundle instead."
            )
        return merged


def build_session(settings: Settings) -> ConnectorSession:
    session = ConnectorSession(ca_bundle=settings.ca_bundle, proxy=settings.proxy)
    session.default_timeout = (min(CONNECT_TIMEOUT_S, settings.timeout_s), settings.timeout_s)
    return session
