"""The XSOAR pack's file tests: this project's XSOAR harness (xsoar_helpers.py, beside this file) on the path.
The integration's own tests, with their fixtures, are beside it (Integrations/MDEIPStatistics/)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
