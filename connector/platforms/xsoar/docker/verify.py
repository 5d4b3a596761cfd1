"""Checks an image built from this folder, as demisto/dockerfiles' build runs each image's verify.py:
the core and the libraries it loads at run time import, and a lookup of an invalid address is refused
before any request (no network, no credentials needed)."""

import importlib

import connector

for module in ("msal", "requests", "cryptography.fernet", "jsonschema", "redis", "connector.actions",
               "connector.delegated"):
    importlib.import_module(module)

config = {"tenant_id": "00000000-0000-0000-0000-000000000001", "client_id": "00000000-0000-0000-0000-000000000002",
          "client_secret": "verify-only", "store_backend": "memory"}
[result] = connector.run("get_ip_statistics", {"ip": "1.1.1.1/../machines"}, config)
assert result.status == "failed" and result.error is not None, result
assert result.error.category.value == "invalid_input", result.error
print(f"All is good: mde-ipstats {connector.__version__} refused {result.parameters['ip']!r} "
      f"({result.error.category.value}) before any request.")
