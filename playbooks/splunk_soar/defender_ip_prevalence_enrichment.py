"""
Defender IP prevalence enrichment (automation playbook, runs on new containers).

Looks up every IP address found in the container's artifacts with the "MDE IP Statistics" app
(action "get ip statistics", look-back 720 hours: on how many of the organization's devices was
each IP seen, and when first and last), then acts on the app's own judgement of each answer
(`verdict`, `ipScope`, `newInWindow`; the "rare" threshold and the novelty window are settings of
the app's asset, `rare_device_threshold` and `novelty_hours`, so every playbook agrees):
  - verdict not_seen  -> note, tag "defender-not-seen-in-org", raise the severity;
  - verdict rare      -> note, tag "defender-rare-ip";
  - verdict common    -> note only;
  - newInWindow true  -> also tag "defender-new-in-window" (first seen within the asset's novelty hours);
  - the lookup failed -> note with the error category and the address's scope; the playbook carries on.
Each note says the address's scope ("private address", "public address", ...). Duplicate IPs are
looked up once. Set ASSET to the name of your MDE IP Statistics asset and make the playbook active
for the labels your alerts arrive with.
"""

import ipaddress

import phantom.rules as phantom

# --- settings ----------------------------------------------------------------------------------
ASSET = "mde_ip_statistics"
LOOKBACK_HOURS = 720
RAISE_SEVERITY_TO = "high"
TAG_NOT_SEEN = "defender-not-seen-in-org"
TAG_RARE = "defender-rare-ip"
TAG_NEW = "defender-new-in-window"
# CEF fields that hold IP addresses ("contains": ip / ipv6) in the artifacts this playbook reads.
IP_CEF_FIELDS = (
    "sourceAddress", "destinationAddress", "deviceAddress", "sourceTranslatedAddress",
    "destinationTranslatedAddress", "dvc", "src", "dst", "ip", "ipv6",
)

SEVERITY_ORDER = ("low", "medium", "high")
LOOKUP_BLOCK = "get_ip_statistics_1"


def on_start(container):
    phantom.debug("on_start() called")
    collect_ip_artifacts(container=container)


def unique_ips(rows):
    """The valid IP addresses of the artifact rows, first occurrence first, with one artifact id each."""
    seen = {}
    for row in rows:
        artifact_id = row[-1]
        for value in row[:-1]:
            if not value:
                continue
            try:
                ip = str(ipaddress.ip_address(str(value).strip()))
            except ValueError:
                phantom.debug(f"not an IP address, skipped: {value!r}")
                continue
            seen.setdefault(ip, artifact_id)
    return seen


def collect_ip_artifacts(container=None, **kwargs):
    phantom.debug("collect_ip_artifacts() called")
    datapaths = [f"artifact:*.cef.{field}" for field in IP_CEF_FIELDS] + ["artifact:*.id"]
    rows = phantom.collect2(container=container, datapath=datapaths)
    ips = unique_ips(rows)
    if not ips:
        phantom.add_note(container=container, note_type="general", note_format="markdown",
                         title="Defender IP prevalence: nothing to look up",
                         content="No artifact of this container has an IP address in the fields "
                                 + ", ".join(IP_CEF_FIELDS) + ".")
        return
    parameters = [
        {"ip": ip, "lookback_hours": LOOKBACK_HOURS, "context": {"artifact_id": artifact_id}}
        for ip, artifact_id in ips.items()
    ]
    phantom.act("get ip statistics", parameters=parameters, assets=[ASSET], callback=triage_results,
                name=LOOKUP_BLOCK)


VERDICT_WORDS = {"not_seen": "not seen", "rare": "rare", "common": "common"}
SCOPE_WORDS = {"link_local": "link-local", "shared": "shared (carrier-grade NAT)"}


def classify(status, verdict):
    """'failed', or the app's verdict in words: 'not seen', 'rare', 'common' ('answered' without one)."""
    if status != "success":
        return "failed"
    return VERDICT_WORDS.get(verdict, "answered")


def scope_words(scope):
    return f"{SCOPE_WORDS.get(scope, scope)} address" if scope else "address"


def describe(verdict, ip, scope, devices, first_seen, last_seen, new_in_window, message, error_category):
    hours = LOOKBACK_HOURS
    where = scope_words(scope)
    if verdict == "failed":
        return (f"Defender lookup failed for {ip} ({error_category or 'unknown'})",
                f"**Error category:** {error_category or 'unknown'}; {where}.\n\n{message or 'No message.'}")
    if verdict == "not seen":
        return (f"Defender: {ip} ({where}) not seen in the organization",
                f"No device of the organization communicated with **{ip}** ({where}) in the last {hours} hours. "
                f"Tagged `{TAG_NOT_SEEN}`; severity raised to {RAISE_SEVERITY_TO}.")
    window = f"first seen {first_seen or 'unknown'}, last seen {last_seen or 'unknown'} (last {hours} hours)"
    new = f" First seen within the asset's novelty window: tagged `{TAG_NEW}`." if new_in_window else ""
    if verdict == "rare":
        return (f"Defender: {ip} ({where}) is rare in the organization ({devices} devices)",
                f"**{ip}** ({where}) was seen on only **{devices}** device(s): {window}. Tagged `{TAG_RARE}`.{new}")
    title = (f"Defender: {ip} ({where}) is common in the organization ({devices} devices)" if verdict == "common"
             else f"Defender: {ip} ({where}) seen on {devices} devices")
    return title, f"**{ip}** ({where}) was seen on **{devices}** devices: {window}.{new}"


def raise_severity(container):
    current = str((container or {}).get("severity") or "low").lower()
    if current in SEVERITY_ORDER and SEVERITY_ORDER.index(current) >= SEVERITY_ORDER.index(RAISE_SEVERITY_TO):
        return
    phantom.set_severity(container=container, severity=RAISE_SEVERITY_TO)


def triage_results(action=None, success=None, container=None, results=None, handle=None, **kwargs):
    phantom.debug("triage_results() called")
    rows = phantom.collect2(container=container, action_results=results, datapath=[
        f"{LOOKUP_BLOCK}:action_result.parameter.ip",
        f"{LOOKUP_BLOCK}:action_result.status",
        f"{LOOKUP_BLOCK}:action_result.message",
        f"{LOOKUP_BLOCK}:action_result.summary.verdict",
        f"{LOOKUP_BLOCK}:action_result.summary.ip_scope",
        f"{LOOKUP_BLOCK}:action_result.summary.organization_prevalence",
        f"{LOOKUP_BLOCK}:action_result.data.*.orgFirstSeen",
        f"{LOOKUP_BLOCK}:action_result.data.*.orgLastSeen",
        f"{LOOKUP_BLOCK}:action_result.data.*.newInWindow",
        f"{LOOKUP_BLOCK}:action_result.summary.error.category",
    ])
    tags = set()
    severity_needed = False
    for ip, status, message, verdict, scope, devices, first_seen, last_seen, new_in_window, error_category in rows:
        verdict = classify(status, verdict)
        title, content = describe(verdict, ip, scope, devices, first_seen, last_seen, new_in_window is True,
                                  message, error_category)
        try:
            phantom.add_note(container=container, note_type="general", note_format="markdown",
                             title=title, content=content)
        except Exception as exc:  # one bad note must not stop the triage of the other IPs
            phantom.error(f"could not add the note for {ip}: {exc}")
        if verdict == "not seen":
            tags.add(TAG_NOT_SEEN)
            severity_needed = True
        elif verdict == "rare":
            tags.add(TAG_RARE)
        if verdict != "failed" and new_in_window is True:
            tags.add(TAG_NEW)
    if tags:
        phantom.add_tags(container=container, tags=sorted(tags))
    if severity_needed:
        raise_severity(container)


def on_finish(container, summary):
    phantom.debug("on_finish() called")
