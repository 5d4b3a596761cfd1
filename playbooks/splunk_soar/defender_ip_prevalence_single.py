"""
Defender IP prevalence for one IP (analyst-run; input playbook).

Run it from a container with the input "ip" (any IPv4 or IPv6 address): it asks the
"MDE IP Statistics" app how many of the organization's devices communicated with the address in
the last LOOKBACK_HOURS hours, and when first and last, and answers in a note that gives the app's
own judgement: its verdict (not seen / rare / common, by the asset's `rare_device_threshold`), the
address's scope (private, public, ...) and whether it is new in the window (`newInWindow`, by the
asset's `novelty_hours`). Without an input it takes the first IP address found in the container's
artifacts. It never raises severity or tags: the analyst decides.
"""

import ipaddress

import phantom.rules as phantom

# --- settings ----------------------------------------------------------------------------------
ASSET = "mde_ip_statistics"
LOOKBACK_HOURS = 720
FALLBACK_CEF_FIELDS = ("sourceAddress", "destinationAddress", "deviceAddress", "src", "dst")

LOOKUP_BLOCK = "get_ip_statistics_analyst"


def on_start(container):
    phantom.debug("on_start() called")
    choose_ip(container=container)


def first_ip(values):
    for value in values:
        if not value:
            continue
        try:
            return str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            continue
    return None


def choose_ip(container=None, **kwargs):
    given = phantom.collect2(container=container, datapath=["playbook_input:ip"])
    ip = first_ip(row[0] for row in given)
    if ip is None:
        rows = phantom.collect2(container=container,
                                datapath=[f"artifact:*.cef.{field}" for field in FALLBACK_CEF_FIELDS])
        ip = first_ip(value for row in rows for value in row)
    if ip is None:
        phantom.add_note(container=container, note_type="general", note_format="markdown",
                         title="Defender IP prevalence: no IP address",
                         content="Give the playbook input `ip`, or add an artifact with an IP address.")
        return
    phantom.act("get ip statistics", parameters=[{"ip": ip, "lookback_hours": LOOKBACK_HOURS}],
                assets=[ASSET], callback=answer, name=LOOKUP_BLOCK)


VERDICT_TITLES = {
    "not_seen": "not seen in the organization",
    "rare": "rare in the organization",
    "common": "common in the organization",
}
SCOPE_WORDS = {"link_local": "link-local", "shared": "shared (carrier-grade NAT)"}


def scope_words(scope):
    return f"{SCOPE_WORDS.get(scope, scope)} address" if scope else "address"


def answer(action=None, success=None, container=None, results=None, handle=None, **kwargs):
    rows = phantom.collect2(container=container, action_results=results, datapath=[
        f"{LOOKUP_BLOCK}:action_result.parameter.ip",
        f"{LOOKUP_BLOCK}:action_result.status",
        f"{LOOKUP_BLOCK}:action_result.message",
        f"{LOOKUP_BLOCK}:action_result.data.*.verdict",
        f"{LOOKUP_BLOCK}:action_result.data.*.ipScope",
        f"{LOOKUP_BLOCK}:action_result.data.*.newInWindow",
        f"{LOOKUP_BLOCK}:action_result.data.*.organizationPrevalence",
        f"{LOOKUP_BLOCK}:action_result.data.*.orgFirstSeen",
        f"{LOOKUP_BLOCK}:action_result.data.*.orgLastSeen",
        f"{LOOKUP_BLOCK}:action_result.summary.ip_scope",
        f"{LOOKUP_BLOCK}:action_result.summary.error.category",
    ])
    for (ip, status, message, verdict, scope, new_in_window, devices, first_seen, last_seen, summary_scope,
         error_category) in rows:
        where = scope_words(scope or summary_scope)
        if status != "success":
            title = f"Defender lookup failed for {ip} ({error_category or 'unknown'}; {where})"
        elif verdict in VERDICT_TITLES:
            title = f"Defender: {ip} ({where}) is {VERDICT_TITLES[verdict]}"
            if verdict != "not_seen":
                title += f" ({devices} devices)"
        else:
            title = f"Defender: {ip} ({where}) seen on {devices} devices"
        if status == "success" and new_in_window is True:
            title += ", new in the window"
        lines = [message or "No message."]
        if status == "success" and first_seen:
            lines.append(f"First seen {first_seen}, last seen {last_seen} (last {LOOKBACK_HOURS} hours).")
        phantom.add_note(container=container, note_type="general", note_format="markdown",
                         title=title, content="\n\n".join(lines))


def on_finish(container, summary):
    phantom.debug("on_finish() called")
