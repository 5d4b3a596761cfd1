"""The SDK declarations (asset, parameters, outputs) built from manifest.json at import time.

manifest.json is the connector's single source of truth; the Splunk SOAR app JSON that
`soarapps` writes is derived from the classes built here and never edited by hand. What SOAR needs
beyond the JSON Schema (primary parameter, CEF "contains", table column names) is presentation,
kept in the small tables below; names, types, required-ness and defaults all come from the manifest.

Why from manifest.json and not from the core's pydantic models directly, although the SDK's Params,
ActionOutput and BaseAsset are pydantic models too: the SDK accepts only str, int, float, bool (and
ZoneInfo) fields, optional or (outputs) in lists; a sensitive field must be a plain ``str``; and its own
metadata (primary, cef_types, value_list, sensitive) lives in its Field extras. The core's fields are
Literal choices, SecretStr secrets, ``str | list[str]`` for the ip input, with constraints, so no core
model can be a base of an SDK class: each field has to be translated either way. manifest.json is
generated from the core's models (a test proves the committed file equals them), and every other
platform's declaration is generated from it; this one reads it too, so the core's models remain the
one source of truth.

How the standard result object lands in a SOAR action result (the mapping a test checks):
  status, message         -> action_result.status, action_result.message
  parameters              -> action_result.parameter.<input field>
  data[*].<field>         -> action_result.data.*.<field>
  summary.<field>         -> action_result.summary.<field>
  any other field (error, cached, cache_age_s) -> action_result.summary.<field>[.<sub-field>]
"""

from __future__ import annotations

from typing import Any

from pydantic import create_model
from soar_sdk.action_results import ActionOutput, OutputField
from soar_sdk.asset import AssetField, BaseAsset
from soar_sdk.params import Param, Params

from connector.manifest import fields_of_tier
from connector.manifest import load_manifest as core_load_manifest

#: Output fields with their own slot in a SOAR action result (everything else goes to the summary).
RESULT_SLOTS = ("action", "status", "message", "parameters", "data", "summary")

#: Action parameters: SOAR presentation only ("x-primary" and "x-contains" come from the manifest).
PARAMETER_PRESENTATION: dict[str, dict[str, dict[str, Any]]] = {
    "get_ip_statistics": {
        "ip": {"allow_list": True, "column_name": "IP"},
    },
}

#: data.* output fields, per action: CEF types and column names for the default table view.
_IP_STATISTICS_COLUMNS: dict[str, dict[str, Any]] = {
    "ipAddress": {"cef_types": ["ip", "ipv6"]},
    "seenInOrg": {"column_name": "Seen in organization"},
    "organizationPrevalence": {"column_name": "Devices"},
    "orgFirstSeen": {"column_name": "First seen"},
    "orgLastSeen": {"column_name": "Last seen"},
    "lookBackHours": {"column_name": "Look-back (hours)"},
    "verdict": {"column_name": "Verdict"},
    "ipScope": {"column_name": "Scope"},
    "newInWindow": {"column_name": "New in window"},
}
#: The sign-in actions' table: what the analyst must see first (where to go, which code, until when).
_SIGN_IN_COLUMNS: dict[str, dict[str, Any]] = {
    "state": {"column_name": "State"},
    "user": {"column_name": "User"},
    "verification_uri": {"column_name": "Open", "cef_types": ["url"]},
    "user_code": {"column_name": "Code"},
    "expires_at": {"column_name": "Code expires"},
}
OUTPUT_PRESENTATION: dict[str, dict[str, dict[str, Any]]] = {
    "get_ip_statistics": _IP_STATISTICS_COLUMNS,
    "start_sign_in": _SIGN_IN_COLUMNS,
    "complete_sign_in": _SIGN_IN_COLUMNS,
    "sign_out": _SIGN_IN_COLUMNS,
}

_JSON_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}


def load_manifest() -> dict[str, Any]:
    """manifest.json as the core ships it (beside the package in a wheel, at the root in a checkout)."""
    return dict(core_load_manifest())


class SchemaView:
    """Just enough JSON Schema reading for declarations: $ref, anyOf/oneOf with null, types."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported $ref {ref!r} in manifest.json")
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def variants(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        """The non-null alternatives of a schema (itself when it has no anyOf/oneOf)."""
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            out = []
            for option in options:
                out.extend(self.variants(option))
            return out
        types = schema.get("type")
        if isinstance(types, list):
            return [{**schema, "type": t} for t in types if t != "null"]
        if types == "null":
            return []
        return [schema]

    def nullable(self, schema: dict[str, Any]) -> bool:
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf") or []
        types = schema.get("type")
        return (
            any(self.resolve(o).get("type") == "null" for o in options)
            or types == "null"
            or (isinstance(types, list) and "null" in types)
        )

    def scalar_type(self, schema: dict[str, Any], where: str) -> type:
        """The Python scalar a SOAR field can carry; a string wins over a list of strings."""
        variants = self.variants(schema)
        for variant in variants:
            if variant.get("type") in _JSON_TYPES:
                return _JSON_TYPES[variant["type"]]
            if "enum" in variant and all(isinstance(v, str) for v in variant["enum"]):
                return str
        raise TypeError(f"{where}: no scalar type SOAR can carry in {schema!r}")

    def object_properties(self, schema: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        for variant in self.variants(schema):
            if variant.get("type") == "object" or "properties" in variant:
                return dict(variant.get("properties", {}))
        return None

    def array_items(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        for variant in self.variants(schema):
            if variant.get("type") == "array":
                return self.resolve(variant.get("items", {}))
        return None

    def enum(self, schema: dict[str, Any]) -> list[Any] | None:
        for variant in self.variants(schema):
            if "enum" in variant:
                return list(variant["enum"])
        return None


SHOWN_TIERS = ("basic", "advanced")
"""The asset lists the basics first, then the advanced fields with their defaults; a testing-only field
(manifest.json's x-tier "testing") is not an asset field at all."""


def build_asset_class(manifest: dict[str, Any]) -> type[BaseAsset]:
    """Asset configuration: the manifest configuration fields an administrator sets, basics first,
    secrets marked sensitive."""
    config = manifest["configuration"]
    view = SchemaView(config)
    required = set(config.get("required", []))
    fields: dict[str, Any] = {}
    for name in fields_of_tier(config, *SHOWN_TIERS):
        prop = view.resolve(config["properties"][name])
        secret = bool(prop.get("x-secret", False))
        py_type = str if secret else view.scalar_type(prop, f"configuration.{name}")
        is_required = name in required
        default = None if secret else prop.get("default")
        enum = view.enum(prop)
        fields[name] = (
            py_type if is_required else py_type | None,
            AssetField(
                description=prop.get("description") or prop.get("title"),
                required=is_required,
                default=default,
                value_list=[str(v) for v in enum] if enum else None,
                sensitive=secret,
            ),
        )
    return create_model("Asset", __base__=BaseAsset, __module__=__name__, **fields)


def build_params_class(manifest: dict[str, Any], action: str) -> type[Params]:
    """An action's parameters from its input schema."""
    schema = manifest["actions"][action]["input"]
    view = SchemaView(schema)
    required = set(schema.get("required", []))
    presentation = PARAMETER_PRESENTATION.get(action, {})
    fields: dict[str, Any] = {}
    for name, raw in schema.get("properties", {}).items():
        prop = view.resolve(raw)
        py_type = view.scalar_type(prop, f"actions.{action}.input.{name}")
        is_required = name in required
        enum = view.enum(prop)
        fields[name] = (
            py_type if is_required else py_type | None,
            Param(
                description=prop.get("description") or prop.get("title"),
                required=is_required,
                primary=bool(prop.get("x-primary", False)),
                cef_types=prop.get("x-contains"),
                default=prop.get("default"),
                value_list=[str(v) for v in enum] if enum else None,
                **presentation.get(name, {}),
            ),
        )
    class_name = "".join(part.title() for part in action.split("_")) + "Params"
    return create_model(class_name, __base__=Params, __module__=__name__, **fields)


def _output_model(
    view: SchemaView, properties: dict[str, Any], class_name: str, presentation: dict[str, dict[str, Any]],
    where: str,
) -> type[ActionOutput]:
    fields: dict[str, Any] = {}
    for name, raw in properties.items():
        prop = view.resolve(raw)
        nested = view.object_properties(prop)
        items = view.array_items(prop)
        if nested:
            py_type: Any = _output_model(view, nested, class_name + name.title().replace("_", ""), {},
                                         f"{where}.{name}")
        elif items is not None:
            py_type = list[view.scalar_type(items, f"{where}.{name}[]")]  # type: ignore[misc]
        else:
            py_type = view.scalar_type(prop, f"{where}.{name}")
        # A closed set of values (verdict, scope) is its own best example list in SOAR's playbook editor.
        examples = prop.get("examples") or view.enum(prop)
        extra = dict(presentation.get(name, {}))
        if "x-contains" in prop:
            extra.setdefault("cef_types", prop["x-contains"])
        fields[name] = (
            py_type | None,
            OutputField(example_values=examples if examples and not nested else None, **extra),
        )
    return create_model(class_name, __base__=ActionOutput, __module__=__name__, **fields)


def build_output_classes(manifest: dict[str, Any], action: str) -> tuple[type[ActionOutput], type[ActionOutput]]:
    """(data item class, summary class) of an action, from its output schema."""
    schema = manifest["actions"][action]["output"]
    view = SchemaView(schema)
    top = view.object_properties(schema) or {}
    stem = "".join(part.title() for part in action.split("_"))

    items = view.array_items(top["data"]) if "data" in top else None
    item_props = (view.object_properties(items) if items else None) or {}
    data_cls = _output_model(view, item_props, stem + "Output", OUTPUT_PRESENTATION.get(action, {}),
                             f"actions.{action}.data")

    summary_props = dict(view.object_properties(top["summary"]) or {}) if "summary" in top else {}
    for name, raw in top.items():
        if name not in RESULT_SLOTS:
            summary_props[name] = raw
    summary_cls = _output_model(view, summary_props, stem + "Summary", {}, f"actions.{action}.summary")
    return data_cls, summary_cls
