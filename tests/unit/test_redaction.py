"""Whatever logs it, a secret or token never reaches the output."""

import logging

from connector.redaction import RedactingFilter, redact, register_secret


def test_tokens_and_registered_secrets_are_masked() -> None:
    register_secret("Distinctive-Secret-Value-42")
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    text = redact(f"Authorization: Bearer {jwt} client_secret=Distinctive-Secret-Value-42&scope=x {jwt}")
    assert jwt not in text and "Distinctive-Secret-Value-42" not in text
    assert "scope=x" in text


def test_filter_cleans_arguments_and_tracebacks(caplog) -> None:  # type: ignore[no-untyped-def]
    register_secret("Another-Distinctive-Secret")
    logger = logging.getLogger("test.redaction")
    handler = caplog.handler
    handler.addFilter(RedactingFilter())
    try:
        raise ValueError("boom Another-Distinctive-Secret")
    except ValueError:
        logger.exception("failed with %s", "Another-Distinctive-Secret")
    assert "Another-Distinctive-Secret" not in caplog.text
    assert "boom ***" in caplog.text


def test_a_proxy_password_is_masked_once_the_session_is_built() -> None:
    from connector.settings import Settings
    from connector.transport import build_session

    settings = Settings.load({"tenant_id": "contoso.onmicrosoft.com",
                              "client_id": "11111111-1111-1111-1111-111111111111", "client_secret": "x" * 12,
                              "proxy": "http://svc:Proxy-Pass-9876@proxy.example:3128"})
    build_session(settings).close()
    assert "Proxy-Pass-9876" not in redact("CONNECT via http://svc:Proxy-Pass-9876@proxy.example:3128")
