"""Gemini's schemas as JSON Schema, for upstreams that take only that.

Gemini declares function parameters and response schemas in an OpenAPI
3.0 subset: types in capitals (`"OBJECT"`), `nullable`, `propertyOrdering`;
the newer `parametersJsonSchema` / `responseJsonSchema` fields are JSON
Schema already and are taken as they are.
"""

from __future__ import annotations

from typing import Any

# Keys whose value is a map of names to schemas, or one schema, or a list.
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_ONE = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
# Gemini's own keys, with no meaning to a JSON Schema validator.
_GEMINI_ONLY = ("nullable", "propertyOrdering", "example")


def json_schema(schema: Any) -> Any:
    """A Gemini (OpenAPI subset) schema as JSON Schema; other values as given."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _GEMINI_ONLY:
            continue
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: json_schema(v) for name, v in value.items()}
        elif key in _SCHEMA_ONE:
            out[key] = json_schema(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [json_schema(v) for v in value]
        else:
            out[key] = value
    if schema.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "type" not in out:
            return {"anyOf": [out, {"type": "null"}]}
    return out
