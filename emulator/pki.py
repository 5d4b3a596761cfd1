"""Keys and certificates, all generated at run time: a private CA, the server certificate, the
token-signing key and each application's client certificate. Nothing here is ever written to the
repository; files holding a key are created with mode 0600.

ECDSA P-256 for the CA and the TLS server (fast to generate); RSA-2048 where Entra requires RSA
(token signing, client assertions signed RS256/PS256).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=2)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


_shared_keys: dict[str, rsa.RSAPrivateKey] = {}
_shared_lock = threading.Lock()


def shared_rsa_key(label: str, fresh: bool = False) -> rsa.RSAPrivateKey:
    """An RSA-2048 key generated at run time, once per process and label, unless `fresh`.

    Generating RSA-2048 costs 50-600 ms and holds the GIL; a test suite starting a hundred emulators
    would spend most of its time there. Emulators in one process therefore share their RSA keys
    (tokens stay bound to the emulator that issued them, see tokens.py); the TLS CA and server
    keys (ECDSA, cheap) are always fresh.
    """
    if fresh:
        return rsa_key()
    with _shared_lock:
        key = _shared_keys.get(label)
        if key is None:
            key = _shared_keys[label] = rsa_key()
        return key


def key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mde-emulator (test only)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
    )


@dataclass(frozen=True)
class TlsMaterial:
    """The private CA and the loopback server certificate it signed."""

    ca_cert_pem: str
    server_cert_pem: str
    server_key_pem: str


def make_tls_material() -> TlsMaterial:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("mde-emulator local CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    issuer_key: CertificateIssuerPrivateKeyTypes = ca_key
    server_cert = (
        _builder(_name("localhost"), ca_name, server_key.public_key())
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return TlsMaterial(cert_pem(ca_cert), cert_pem(server_cert), key_pem(server_key))


@dataclass(frozen=True)
class ClientCertificate:
    """A self-signed certificate an application registers to sign client assertions."""

    private_key_pem: str
    certificate_pem: str
    thumbprint_sha1_hex: str
    thumbprint_sha256_hex: str
    certificate: x509.Certificate


def make_client_certificate(common_name: str, key: rsa.RSAPrivateKey | None = None) -> ClientCertificate:
    key = key or rsa_key()
    name = _name(common_name)
    cert = _builder(name, name, key.public_key()).sign(key, hashes.SHA256())
    return ClientCertificate(
        private_key_pem=key_pem(key),
        certificate_pem=cert_pem(cert),
        thumbprint_sha1_hex=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - x5t is SHA-1 by spec
        thumbprint_sha256_hex=cert.fingerprint(hashes.SHA256()).hex().upper(),
        certificate=cert,
    )


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """A stable key id for the JWKS, shaped like Entra's (base64url of a SHA-1 digest)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha1(der).digest())  # noqa: S324 - an identifier, not a security boundary


def write_private(path: Path, text: str) -> Path:
    """Write a file that holds a secret or a key: created 0600, and tightened if it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)
    return path


def write_public(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
