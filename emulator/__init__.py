"""A local stand-in for Entra ID and the Defender for Endpoint IP statistics API, over real HTTPS.

For the demo, the integration tests and the benchmarks; never shipped inside a connector package.
See emulator/README.md.
"""

from emulator.config import AppSpec, EmulatorConfig, UserSpec
from emulator.directory import AppRegistration
from emulator.faults import Fault
from emulator.service import Emulator

__all__ = ["AppRegistration", "AppSpec", "Emulator", "EmulatorConfig", "Fault", "UserSpec"]
