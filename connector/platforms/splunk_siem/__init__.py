"""Splunk Enterprise / Splunk Cloud add-on TA-mde-ipstats: the ``mdeipstats`` streaming search command.

This folder is a UCC project (globalConfig.json + package/). Only :mod:`.globalconfig` is Python run at
build time; the command itself lives in package/bin/ and runs inside Splunk on its Python 3.13.
"""
