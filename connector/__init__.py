"""Microsoft Defender for Endpoint IP statistics: a platform-neutral SOAR connector core.

Adapters call :func:`run`; libraries and tests may hold a :class:`Connector` for many lookups.
"""

from connector.actions import ACTIONS, Connector, default_state_dir, run
from connector.results import ActionResult, ErrorInfo, IpStatistics
from connector.settings import Settings

__all__ = ["ACTIONS", "ActionResult", "Connector", "ErrorInfo", "IpStatistics", "Settings", "default_state_dir", "run"]
__version__ = "0.1.0"
