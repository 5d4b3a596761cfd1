"""Microsoft Sentinel: an Azure Function (Python v2 model) that a Sentinel playbook calls once per incident.

function_app.py is the Functions entry point (and the only module importing azure.functions);
request.py reads the playbook's body, appsettings.py the Function's app settings, enrich.py runs the one
lookup, comment.py writes the incident comment. The ARM templates are in playbooks/sentinel/, the guide
in docs/sentinel.md, the zip-deploy package is built by scripts/package-sentinel.sh.
"""
