"""Configuration is validated before any traffic, and errors name the field without echoing secrets."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connector.endpoints import resolve_endpoints
from connector.errors import Category, ConfigurationError
from connector.settings import Settings

FAKE_PEM_HEADER = "-----BEGIN " + "PRIVATE KEY-----"  # a header only, split so scanners see no key

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"
SECRET = "s3cr3t-Value-That-Must-Not-Leak"


def base(**overrides: object) -> dict:
    values: dict = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    values.update(overrides)
    return values


def fail(**overrides: object) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        Settings.load(base(**overrides))
    assert info.value.category is Category.CONFIGURATION
    assert SECRET not in info.value.message
    return info.value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_url", "http://api.security.microsoft.com"),
        ("login_url", "http://login.microsoftonline.com"),
        ("api_url", "ftp://x"),
        ("tenant_id", "not a tenant"),
        ("tenant_id", "1111-2222"),
        ("client_id", "my-app"),
        ("thumbprint", "xyz"),
        ("ca_bundle", "/nonexistent/ca.pem"),
        ("cloud", "moon"),
        ("region", "mars"),
        ("timeout_s", 0),
        ("rate_limit_per_minute", 101),
    ],
)
def test_each_bad_field_is_named(field: str, value: object) -> None:
    assert field in fail(**{field: value}).message


def test_an_unreadable_certificate_key_is_a_configuration_error() -> None:
    error = fail(client_secret=None, private_key=FAKE_PEM_HEADER + "\nnot base64\n-----END PRIVATE KEY-----",
                 thumbprint="A" * 40)
    assert "private_key" in error.message and "not base64" not in error.message


def test_exactly_one_credential() -> None:
    assert "either client_secret or private_key" in fail(client_secret=None).message
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    assert "not both" in fail(private_key=key, thumbprint="A" * 40).message
    assert "thumbprint or public_certificate" in fail(client_secret=None, private_key=key).message
    settings = Settings.load(base(client_secret=None, private_key=key, thumbprint="ab:" * 19 + "ab"))
    assert settings.uses_certificate and settings.thumbprint == "AB" * 20


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings.load(base())
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    assert SECRET not in settings.model_dump_json()


def test_unknown_fields_are_refused() -> None:
    assert "client_sercet" in fail(client_sercet="x").message


@pytest.mark.parametrize(
    ("cloud", "region", "api", "login", "scope"),
    [
        ("commercial", "auto", "https://api.security.microsoft.com", "https://login.microsoftonline.com",
         "https://api.securitycenter.microsoft.com/.default"),
        ("commercial", "eu", "https://eu.api.security.microsoft.com", "https://login.microsoftonline.com",
         "https://api.securitycenter.microsoft.com/.default"),
        ("gcc", "auto", "https://api-gcc.securitycenter.microsoft.us", "https://login.microsoftonline.com",
         "https://securitycenter.onmicrosoft.com/windowsatpservice/.default"),
        ("gcc-high", "auto", "https://api-gov.securitycenter.microsoft.us", "https://login.microsoftonline.us",
         "https://securitycenter.onmicrosoft.us/windowsatpservice/.default"),
        ("dod", "us", "https://api-gov.securitycenter.microsoft.us", "https://login.microsoftonline.us",
         "https://securitycenter.onmicrosoft.us/windowsatpservice/.default"),
    ],
)
def test_endpoints_follow_cloud_and_region(cloud, region, api, login, scope) -> None:  # type: ignore[no-untyped-def]
    endpoints = resolve_endpoints(cloud, region)
    assert (endpoints.api_url, endpoints.login_url, endpoints.scope) == (api, login, scope)


def test_overrides_win() -> None:
    settings = Settings.load(base(cloud="gcc-high", api_url="https://proxy.example/", scope="api://x/.default"))
    endpoints = settings.endpoints
    assert endpoints.api_url == "https://proxy.example"
    assert endpoints.login_url == "https://login.microsoftonline.us"
    assert endpoints.scope == "api://x/.default"


def _self_signed_pem(name: str) -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_ca_bundle_accepts_pem_text_as_pasted_in_xsoar_or_cortex() -> None:
    pem = _self_signed_pem("Test Proxy CA") + _self_signed_pem("Second CA")
    first = Settings.load(base(ca_bundle=pem)).ca_bundle
    again = Settings.load(base(ca_bundle="\n" + pem + "\n")).ca_bundle
    assert first is not None and first == again == pem.strip() + "\n"  # one spelling per bundle, kept as text
    assert first.count("BEGIN CERTIFICATE") == 2


def test_ca_bundle_pem_text_that_is_not_certificates_is_named() -> None:
    broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    error = fail(ca_bundle=broken)
    assert "ca_bundle" in error.message and "not base64" not in error.message


def test_every_bad_field_is_named_at_once() -> None:
    message = fail(tenant_id="not a tenant", timeout_s="soon", rate_limit_per_hour=0).message
    assert "tenant_id" in message and "timeout_s" in message and "rate_limit_per_hour" in message


def test_a_bad_choice_lists_the_choices_without_repeating_the_value() -> None:
    message = fail(cloud="moon-cloud").message
    assert "cloud: must be one of commercial, gcc, gcc-high, dod" in message and "moon-cloud" not in message


@pytest.mark.parametrize("value", [12345, ["a", "list"], {"a": "dict"}, True])
def test_a_secret_that_is_not_text_is_a_configuration_error(value: object) -> None:
    message = fail(client_secret=value).message
    assert "client_secret: must be text" in message


def test_settings_built_in_code_take_plain_strings_for_secrets_and_hide_them() -> None:
    settings = Settings(tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET)
    assert settings.client_secret is not None and settings.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    with pytest.raises(ValueError, match="either client_secret or private_key"):  # rules across fields still hold
        settings.replace(client_secret=None)


def test_numbers_from_text_sources_may_carry_spaces_and_bad_ones_are_named_in_words() -> None:
    settings = Settings.load(base(timeout_s=" 45 ", rate_limit_per_minute="50\n"))
    assert (settings.timeout_s, settings.rate_limit_per_minute) == (45.0, 50)
    assert "timeout_s: must be a number" in fail(timeout_s="soon").message
    assert "rate_limit_per_minute: must be a whole number <= 100" in fail(rate_limit_per_minute="101").message
    assert "novelty_hours: must be a whole number" in fail(novelty_hours=2.5).message
