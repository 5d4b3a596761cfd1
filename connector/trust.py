"""TLS trust when ca_bundle is configured: those certificates, and nothing else, held in memory.

ca_bundle is a PEM file's path or the PEM text itself (what XSOAR and Cortex users paste). Either way
it becomes one SSLContext built here and handed to every connection the session opens (MSAL's
sign-in requests included: MSAL is given the same session). Nothing is written to disk for pasted
text: a file under a shared temporary folder is one another local user can plant, swap or point a
symlink at, and requests needs no file when it is given a context.

The context *replaces* trust rather than adding to it. requests would otherwise load a CA file into
each connection on top of the context: ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, a per-request
``verify=`` path, or (for ``verify=True``) certifi's bundle. The adapter below strips those, so a
certificate signed by any CA but the configured ones is refused.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from requests import PreparedRequest
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs

PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def ca_context(ca_bundle: str) -> ssl.SSLContext:
    """A verifying client context that trusts exactly the CAs of ca_bundle (PEM text or a file's path).

    Built as requests builds its own (urllib3's defaults: TLS 1.2 or later, hostname checked), minus
    the system and certifi roots. Raises ssl.SSLError or OSError when the bundle cannot be loaded."""
    from urllib3.util.ssl_ import create_urllib3_context

    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    if PEM_CERTIFICATE in ca_bundle:
        context.load_verify_locations(cadata=ca_bundle)
    else:
        context.load_verify_locations(cafile=ca_bundle)
    return context


class PinnedTrustAdapter(HTTPAdapter):
    """An HTTPS adapter whose every connection, direct or through a proxy, verifies against one context."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self.context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self.context, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("ssl_context", self.context)
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["ssl_context"] = self.context
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        """requests names a CA file for the connection here (certifi's, for verify=True), which urllib3
        would load into the context: the parent only handles the client certificate, and the context's
        own CAs are the whole of the trust."""
        super().cert_verify(conn, url, False, cert)  # type: ignore[no-untyped-call]
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None
