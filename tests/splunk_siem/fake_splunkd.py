"""A fake splunkd: the few REST endpoints the add-on reads, over HTTPS on 127.0.0.1, in Atom XML.

It serves what UCC would have stored after an administrator filled in the Configuration page: the
account's plain fields in ta_mde_ipstats_account.conf with ``******`` in place of encrypted ones, the
encrypted ones as one JSON object in storage/passwords (split into 255-character parts the way solnlib
writes long values), and the Advanced / Proxy / Logging tabs in ta_mde_ipstats_settings.conf. Every
request is recorded; a wrong session key gets 401, as splunkd does.

Namespaces are modelled as splunkd resolves them: every object belongs to the add-on's app and is shared
either "This app only" (sharing app: visible at /servicesNS/<owner>/TA-mde-ipstats/... and through the
wildcard app "-") or globally (sharing global: visible from every app's namespace, /servicesNS/nobody/search/
included). So a reader that asks through the search's app finds nothing when the add-on's objects are
shared with the add-on only, as a real splunkd answers.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

APP = "TA-mde-ipstats"
ACCOUNT_CONF = "ta_mde_ipstats_account"
SETTINGS_CONF = "ta_mde_ipstats_settings"
ENCRYPTED = "******"
SEP = "``splunk_cred_sep``"
END_MARK = SEP + SEP.join("SPLUNK") + SEP
ACCOUNT_SECRETS = ("client_secret", "private_key")
SETTINGS_SECRETS = {"advanced": ("store_url",), "proxy": ("proxy_password",)}


def realm(conf: str) -> str:
    return f"__REST_CREDENTIAL__#{APP}#configs/conf-{conf}"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (splunkd's own is self-signed too)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-splunkd")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(
                "127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "splunkd.pem", directory / "splunkd.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def split_password(user: str, clear: str) -> list[tuple[str, str]]:
    """solnlib's CredentialManager.set_password layout: 255-character parts, then an end mark."""
    parts = [(f"{user}{SEP}{i + 1}", clear[o:o + 255]) for i, o in enumerate(range(0, len(clear), 255))]
    return [*parts, (f"{user}{SEP}{len(parts) + 1}", END_MARK)]


@dataclass
class SplunkdState:
    session_key: str
    sharing: str = "app"
    """How the add-on's objects are shared: "app" (This app only, the default of an app's own objects) or "global"."""
    confs: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    passwords: list[dict[str, str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    kvstore: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """collection -> _key -> document: a stand-in for the KV store's REST API (output_mode=json)."""

    def add_account(self, name: str, values: dict[str, Any]) -> None:
        """Store an account the way UCC's REST handler does (encrypted fields out of the .conf)."""
        stanza = {k: str(v) for k, v in values.items() if k not in ACCOUNT_SECRETS}
        secrets = {k: str(v) for k, v in values.items() if k in ACCOUNT_SECRETS}
        stanza.update(dict.fromkeys(secrets, ENCRYPTED))
        self.confs.setdefault(ACCOUNT_CONF, {})[name] = stanza
        if secrets:
            self._store(ACCOUNT_CONF, name, json.dumps(secrets))

    def set_settings(self, stanza_name: str, values: dict[str, Any]) -> None:
        secret_names = SETTINGS_SECRETS.get(stanza_name, ())
        stanza = {k: str(v) for k, v in values.items() if k not in secret_names}
        secrets = {k: str(v) for k, v in values.items() if k in secret_names}
        stanza.update(dict.fromkeys(secrets, ENCRYPTED))
        self.confs.setdefault(SETTINGS_CONF, {})[stanza_name] = stanza
        if secrets:
            self._store(SETTINGS_CONF, stanza_name, json.dumps(secrets))

    def _store(self, conf: str, user: str, clear: str) -> None:
        for name, part in split_password(user, clear):
            self.passwords.append({"realm": realm(conf), "username": name, "clear_password": part,
                                   "password": ENCRYPTED})


def _dict(values: dict[str, str], sharing: str) -> str:
    keys = "".join(f'<s:key name="{escape(k)}">{escape(v)}</s:key>' for k, v in values.items())
    acl = (f'<s:key name="eai:acl"><s:dict><s:key name="app">{APP}</s:key>'
           f'<s:key name="owner">nobody</s:key><s:key name="sharing">{sharing}</s:key></s:dict></s:key>')
    return f"<s:dict>{keys}{acl}</s:dict>"


def visible(state: SplunkdState, namespace_app: str) -> bool:
    """Whether the add-on's objects are visible in this namespace's app, as splunkd decides it."""
    return namespace_app in (APP, "-") or state.sharing in ("global", "system")


def atom_feed(base: str, path: str, entries: list[tuple[str, dict[str, str]]], sharing: str = "app") -> bytes:
    items = "".join(
        f"<entry><title>{escape(title)}</title><id>{base}{path}/{escape(title)}</id>"
        f"<updated>2026-01-01T00:00:00+00:00</updated>"
        f'<link href="{path}/{escape(title)}" rel="alternate"/>'
        f"<author><name>nobody</name></author>"
        f'<content type="text/xml">{_dict(values, sharing)}</content></entry>'
        for title, values in entries)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
            f'xmlns:s="http://dev.splunk.com/ns/rest" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
            f"<title>{escape(path)}</title><id>{base}{path}</id><updated>2026-01-01T00:00:00+00:00</updated>"
            f"<opensearch:totalResults>{len(entries)}</opensearch:totalResults>"
            f"<opensearch:itemsPerPage>30</opensearch:itemsPerPage><opensearch:startIndex>0</opensearch:startIndex>"
            f"{items}</feed>").encode()


def _handler(state: SplunkdState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            path = unquote(url.path).rstrip("/")
            state.requests.append({"path": path, "query": query,
                                   "authorized": self.headers.get("Authorization") == f"Splunk {state.session_key}"})
            if self.headers.get("Authorization") != f"Splunk {state.session_key}":
                return self._send(401, b"<response><messages><msg type='WARN'>call not properly authenticated"
                                       b"</msg></messages></response>")
            parts = path.split("/")
            if len(parts) < 5 or parts[1] != "servicesNS":
                return self._send(404, b"<response/>")
            endpoint = "/".join(parts[4:])
            base = f"https://127.0.0.1:{self.server.server_address[1]}"
            shown = visible(state, parts[3])
            if endpoint.startswith("configs/conf-"):
                conf = endpoint.removeprefix("configs/conf-").split("/")[0]
                stanzas = state.confs.get(conf, {}) if shown else {}
                return self._send(200, atom_feed(base, path, sorted(stanzas.items()), state.sharing))
            if endpoint == "storage/passwords":
                wanted = query.get("search", "").removeprefix("realm=")
                chosen = [p for p in state.passwords if shown and (not wanted or p["realm"] == wanted)]
                return self._send(200, atom_feed(base, path, [(f"{p['realm']}:{p['username']}:", p)
                                                              for p in chosen], state.sharing))
            if endpoint.startswith("storage/collections/data/"):
                return self._kvstore(endpoint.split("/")[3:], query)
            return self._send(404, b"<response/>")

        def _kvstore(self, where: list[str], query: dict[str, str]) -> None:
            documents = state.kvstore.get(where[0], {})
            if len(where) > 1:
                found = documents.get(where[1])
                return self._send(200 if found else 404, json.dumps(found or {}).encode(), "application/json")
            wanted = json.loads(query.get("query", "{}")).get("_key", {}).get("$in")
            chosen = [d for k, d in documents.items() if wanted is None or k in wanted]
            return self._send(200, json.dumps(chosen).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def fake_splunkd(state: SplunkdState, cert_dir: Path) -> Iterator[str]:
    """Serve ``state`` on https://127.0.0.1:<port> until the block ends; yields the splunkd URI."""
    cert, key = self_signed(cert_dir)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
