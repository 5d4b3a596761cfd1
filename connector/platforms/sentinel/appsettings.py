"""The Function's configuration: its app settings, which the platform hands over as environment variables.

The connector's fields are read as the CLI reads them, ``MDE_<FIELD>`` (connector.cli.load_config), so a
setting has one name everywhere. What the Function adds:

- ``auth_mode`` defaults to ``managed_identity`` (the Function App's own identity: no secret anywhere);
  ``item_budget_s`` to 20 s, and the whole call waits at most ``IPSTATS_MAX_WAIT_S`` (30 s) for the rate
  limit, because Logic Apps gives up on an HTTP action after 120 s.
- An app setting can be a Key Vault reference (``@Microsoft.KeyVault(SecretUri=...)``), which the platform
  replaces by the secret. When it cannot (the app's identity may not read the vault, the secret does not
  exist), the variable still holds the reference's text: that is refused, naming the setting, instead of
  being used as a secret, a URL or a number.
- State lives under the instance's temporary directory (``/tmp``): per instance, never on the ``/home``
  share, where SQLite's locking is not safe. Only Redis (``MDE_STORE_BACKEND=redis``) shares the rate
  limit between instances; with SQLite each result says the limit is counted per instance.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.cli import ENV_PREFIX, load_config
from connector.errors import ConfigurationError

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
MAX_WAIT_SETTING = "IPSTATS_MAX_WAIT_S"
DEFAULT_MAX_WAIT_S = 30.0
FUNCTION_DEFAULTS: dict[str, Any] = {"auth_mode": "managed_identity", "item_budget_s": 20}
PER_INSTANCE_NOTE = ("Rate limit counted per Function instance (local SQLite state): cap the Function App's "
                     "scale-out to one instance, or set MDE_STORE_BACKEND=redis with MDE_STORE_URL (docs/sentinel.md).")


@dataclass(frozen=True)
class FunctionConfig:
    """The connector's configuration (manifest field names), and what only the Function decides."""

    config: dict[str, Any]
    state_dir: Path
    max_wait_s: float
    problem: ConfigurationError | None = None

    @property
    def per_instance(self) -> bool:
        """True when the rate limit and caches are this instance's alone (SQLite or memory, not Redis)."""
        return str(self.config.get("store_backend") or "sqlite") != "redis"


def function_config(environ: Mapping[str, str]) -> FunctionConfig:
    """The configuration from app settings; an unresolved Key Vault reference becomes ``problem``."""
    config = {**FUNCTION_DEFAULTS, **load_config(None, {}, dict(environ))}
    unresolved = sorted(ENV_PREFIX + name.upper() for name, value in config.items()
                        if isinstance(value, str) and value.strip().startswith(KEY_VAULT_REFERENCE))
    problem = None
    if unresolved:
        problem = ConfigurationError(
            f"App setting {', '.join(unresolved)} still holds its Key Vault reference, not the secret: the platform "
            "could not resolve it. Give the Function App's identity 'Key Vault Secrets User' on the vault (or an "
            "access policy with secret get), check that the secret exists, and see the reference's status under "
            "the Function App's Environment variables; the connector does not use the reference as a value.",
            code="UnresolvedKeyVaultReference")
    max_wait = str(environ.get(MAX_WAIT_SETTING) or "").strip()
    try:
        wait_s = float(max_wait) if max_wait else DEFAULT_MAX_WAIT_S
    except ValueError:
        wait_s = DEFAULT_MAX_WAIT_S
        problem = problem or ConfigurationError(f"App setting {MAX_WAIT_SETTING} must be a number of seconds.")
    state_dir = Path(tempfile.gettempdir()) / "mde-ipstats-function"
    return FunctionConfig(config, state_dir, min(max(wait_s, 0.0), 90.0), problem)
