"""The mdeipstats command's logic, where UCC's customSearchCommand declares it (fileName): stream(command, events).

UCC generates a bin/mdeipstats.py that imports this function; the add-on's own bin/mdeipstats.py replaces
that wrapper (see globalconfig.py's SEARCH_COMMAND) and streams through ta_mde_ipstats.search.stream,
which this module is. It needs the add-on's lib/ on the path, as every script in bin/ does.
"""

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

stream = importlib.import_module("ta_mde_ipstats.search").stream
