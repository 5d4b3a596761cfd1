"""The mdeipstats search command of the TA-mde-ipstats add-on (runs on Splunk's Python 3.13).

enrich: events in, the same events with mde_* fields out (no Splunk imports; unit-testable).
budget: the search's rate-limit wait budget, around the core's shared rate gate.
splunkd: the account and settings, read from splunkd's REST API with the search's session key.
search: the splunklib StreamingCommand that ties them together.
"""

APP_NAME = "TA-mde-ipstats"
REST_ROOT = "ta_mde_ipstats"
