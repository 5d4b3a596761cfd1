"""Azure Functions entry point (Python v2 programming model): POST /api/ipstats, function key required.

A Microsoft Sentinel playbook calls it once per incident with the incident's IP entities; it answers
every address's standard result, the incident comment and the tags to add (connector/platforms/sentinel/
enrich.py). The Function App signs in to Defender with its own managed identity: no secret anywhere.
This file is the zip package's ``function_app.py``; the only module that imports the Functions SDK.
"""

from __future__ import annotations

import json
import logging
import os

import azure.functions as func

from connector.platforms.sentinel.enrich import handle
from connector.redaction import RedactingFilter

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for _handler in logging.getLogger().handlers:  # the worker's own handlers: no secret passes them
    _handler.addFilter(RedactingFilter())


@app.function_name(name="ipstats")
@app.route(route="ipstats", methods=[func.HttpMethod.POST], auth_level=func.AuthLevel.FUNCTION)
def ipstats(req: func.HttpRequest) -> func.HttpResponse:
    """Organization prevalence of an incident's IP addresses (see the module docstring for the shapes)."""
    status, document = handle(req.get_body(), os.environ)
    return func.HttpResponse(json.dumps(document, ensure_ascii=False), status_code=status,
                             mimetype="application/json", charset="utf-8")
