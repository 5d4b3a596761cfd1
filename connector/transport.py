"""The one HTTP session that sign-in and API calls share, with TLS and proxy settings that stick.

requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` and ``HTTPS_PROXY`` from the environment
override a session's own ``verify`` and ``proxies``. MSAL is handed this session too, so a CA bundle
or proxy configured for the connector must win for every request, and verification can never be
switched off by a stray variable. A configured CA bundle is a TLS context in memory (connector.trust)
that replaces requests' trust, rather than a path requests would add to it.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from connector.errors import ConfigurationError, NetworkError
from connector.redaction import register_secret
from connector.settings import Settings
from connector.trust import PinnedTrustAdapter, ca_context

USER_AGENT = "mde-ipstats/0.1 (+SOAR connector; Defender for Endpoint IP statistics)"
CONNECT_TIMEOUT_S = 10.0
MIN_ATTEMPT_S = 0.1
"""The shortest timeout an attempt is given when its item's time budget is nearly spent."""
TLS_VERIFICATION_FAILED = "TlsVerificationFailed"


def timeout_within(default: tuple[float, float], deadline: float | None) -> tuple[float, float]:
    """The (connect, read) timeout of one request, cut so that it cannot outlast the deadline by more
    than MIN_ATTEMPT_S (deadline in time.monotonic() seconds; None: no deadline)."""
    if deadline is None:
        return default
    remaining = max(deadline - time.monotonic(), MIN_ATTEMPT_S)
    return min(default[0], remaining), min(default[1], remaining)


def is_certificate_failure(exc: BaseException) -> bool:
    """True when TLS failed because the peer's certificate is not trusted or not for this host:
    retrying cannot help, only ca_bundle (or the URL) can."""
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text or "doesn't match" in text


def connection_failure(exc: requests.RequestException, service: str, url: str) -> NetworkError:
    """A NetworkError saying what failed on the way to ``service`` at ``url`` and what to check.

    Built from the exception's type only (its text may carry a proxy URL with credentials)."""
    if is_certificate_failure(exc):
        return NetworkError(
            f"TLS certificate verification failed for {service} at {url}: the certificate presented is not "
            "trusted or not issued for that host. If a private CA or a TLS-inspecting proxy signs it, put that "
            "CA's certificate (PEM) in ca_bundle; verification is never switched off.",
            code=TLS_VERIFICATION_FAILED)
    if isinstance(exc, requests.exceptions.ProxyError):
        why = "the configured proxy refused or failed the connection; check proxy"
    elif isinstance(exc, requests.exceptions.SSLError):
        why = "the TLS handshake failed; check ca_bundle, proxy and network access"
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        why = "timed out connecting; check the URL, proxy and firewall"
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        why = "no answer within timeout_s"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        why = "the connection broke in the middle of the answer"
    else:
        why = "could not connect or the connection was reset; check the URL, proxy and network access"
    return NetworkError(f"{service[:1].upper()}{service[1:]} at {url} could not be reached "
                        f"({type(exc).__name__}: {why}).")


def is_host_local(url: str | bytes | None) -> bool:
    """True for plain-HTTP URLs on loopback and link-local addresses: where a platform serves managed
    identity tokens (App Service's IDENTITY_ENDPOINT on localhost, IMDS at 169.254.169.254), which a proxy
    cannot reach. Sign-in and the API are https:// (settings refuse anything else), so they keep the proxy."""
    text = url.decode() if isinstance(url, bytes) else (url or "")
    parts = urlsplit(text)
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local


class ConnectorSession(requests.Session):
    """A Session whose configured CA bundle and proxy beat the environment."""

    def __init__(self, *, ca_bundle: str | None, proxy: str | None) -> None:
        super().__init__()
        self._configured_ca = ca_bundle
        self._configured_proxy = proxy
        self._local = threading.local()
        self.verify = True
        if proxy:
            self.proxies = {"https": proxy, "http": proxy}
        self.headers["User-Agent"] = USER_AGENT
        if ca_bundle:
            adapter: HTTPAdapter = PinnedTrustAdapter(_trusting(ca_bundle), pool_connections=4, pool_maxsize=8,
                                                      max_retries=0)
        else:
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.mount("https://", adapter)

    default_timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, 30.0)

    @contextmanager
    def deadline(self, deadline: float) -> Iterator[None]:
        """Requests made without a timeout of their own in this thread and block (MSAL's) end by
        ``deadline`` (time.monotonic() seconds), so that sign-in respects the item's time budget too."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = previous

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Every request gets a timeout, including MSAL's, which passes none of its own."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout_within(self.default_timeout, getattr(self._local, "deadline", None))
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
            merged["verify"] = True  # the adapter's context decides whom to trust, and always verifies
        if is_host_local(url):
            merged["proxies"] = {}  # the platform's managed identity endpoint: on this host, never via a proxy
        elif self._configured_proxy:
            merged["proxies"] = {"https": self._configured_proxy, "http": self._configured_proxy}
        if merged.get("verify") is False or merged.get("verify") == "":
            raise ConfigurationError(
                "TLS certificate verification was switched off (an empty CURL_CA_BUNDLE or a verify=False "
                "somewhere); the connector refuses to send credentials without it. Configure ca_bundle instead."
            )
        return merged


def _trusting(ca_bundle: str) -> ssl.SSLContext:
    try:
        return ca_context(ca_bundle)
    except OSError as exc:  # ssl.SSLError included
        raise ConfigurationError(f"ca_bundle could not be loaded as trusted CA certificates ({type(exc).__name__}); "
                                 "give the PEM text of the CA certificates, or a readable PEM file's path.") from None


def build_session(settings: Settings) -> ConnectorSession:
    if settings.proxy:
        register_secret(urlsplit(settings.proxy).password)  # a proxy's password is masked like any secret
    session = ConnectorSession(ca_bundle=settings.ca_bundle, proxy=settings.proxy)
    session.default_timeout = (min(CONNECT_TIMEOUT_S, settings.timeout_s), settings.timeout_s)
    return session


_shared_sessions: dict[tuple[str | None, str | None, float], ConnectorSession] = {}
_shared_sessions_guard = threading.Lock()


def shared_session(settings: Settings) -> ConnectorSession:
    """One session per process and transport configuration, so that consecutive lookups in a
    long-lived worker reuse their TLS connections instead of paying a handshake each time."""
    key = (settings.ca_bundle, settings.proxy, settings.timeout_s)
    with _shared_sessions_guard:
        session = _shared_sessions.get(key)
        if session is None:
            session = _shared_sessions[key] = build_session(settings)
        return session
