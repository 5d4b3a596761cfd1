"""TheHive Cortex analyzer MDE_IPStatistics: a thin adapter over the connector core.

The analyzer program (mde_ipstatistics.py) runs inside Cortex with cortexutils; this package's
importable part (flavor.py) only generates its definition JSON from manifest.json, so nothing here
makes cortexutils a dependency of the core.
"""
