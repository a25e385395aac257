"""Check a JSON value against a schema of quotad's OpenAPI document (GET /v1/openapi.json).

Only the JSON Schema the document uses: type (one or a list), properties, required, items, enum,
oneOf, $ref into #/components/schemas. Stricter than JSON Schema in one way: an object may hold
only the properties its schema names, so a field the API answers but the document does not
describe is an error too.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def problems(value: Any, schema: dict[str, Any], doc: dict[str, Any], where: str = "$") -> list[str]:
    """Every way value breaks schema, each naming its place (empty: it conforms)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return problems(value, doc["components"]["schemas"][name], doc, where)
    if "oneOf" in schema:
        fits = [s for s in schema["oneOf"] if not problems(value, s, doc, where)]
        return [] if len(fits) == 1 else [f"{where}: fits {len(fits)} of oneOf"]
    out: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(isinstance(value, _TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                 for t in types)
        if not ok:
            return [f"{where}: {value!r} is not {' or '.join(types)}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        out += [f"{where}: missing {name}" for name in schema.get("required", []) if name not in value]
        out += [f"{where}: {name} is not in the schema" for name in value if name not in props]
        for name, item in value.items():
            if name in props:
                out += problems(item, props[name], doc, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += problems(item, schema["items"], doc, f"{where}[{i}]")
    return out


def response_problems(value: Any, doc: dict[str, Any], path: str, method: str, status: int) -> list[str]:
    """problems() of an answer of the operation (path template, method, status) the document describes."""
    response = doc["paths"][path][method.lower()]["responses"][str(status)]
    return problems(value, response["content"]["application/json"]["schema"], doc)
