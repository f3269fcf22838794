"""What the live manager accepts, read from its OpenAPI document: body fields, query filters, their types.

The shell checks attribute names and types against this before calling the API, so a typo or a wrong
type gets a clear message and no request; the API still checks ranges and everything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appliance.shell.api import CommandError

PREFIX = "/api/v1"
TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string | integer | number | boolean | array | object
    nullable: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        kind = "|".join(self.choices) if self.choices else self.kind
        return f"{self.name}=<{kind}>" + (" (required)" if self.required else "")


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = doc.get("components", {}).get("schemas", {}).get(ref.split("/")[-1], {})
        return resolved
    return schema


def _field(doc: dict[str, Any], name: str, schema: dict[str, Any], required: bool) -> Field:
    schema = _resolve(doc, schema)
    options = schema.get("anyOf") or [schema]
    nullable = any(o.get("type") == "null" for o in options)
    real = next((_resolve(doc, o) for o in options if o.get("type") != "null"), {})
    kind = real.get("type", "object" if "properties" in real else "string")
    choices = tuple(str(c) for c in real.get("enum", ()))
    return Field(name, str(kind), nullable, required, choices)


class ApiSchema:
    """Questions about one OpenAPI document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.paths: dict[str, Any] = doc.get("paths", {})

    def has(self, method: str, path: str) -> bool:
        return method.lower() in self.paths.get(PREFIX + path, {})

    def body_fields(self, method: str, path: str) -> dict[str, Field] | None:
        """Fields of the JSON body of ``method path`` (path like ``/vms/{object_id}``); None if unknown."""
        op = self.paths.get(PREFIX + path, {}).get(method.lower())
        if op is None:
            return None
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            return {}
        schema = _resolve(self.doc, content.get("schema", {}))
        required = set(schema.get("required", ()))
        return {
            name: _field(self.doc, name, sub, name in required)
            for name, sub in schema.get("properties", {}).items()
        }

    def query_fields(self, method: str, path: str) -> dict[str, Field]:
        op = self.paths.get(PREFIX + path, {}).get(method.lower(), {})
        return {
            p["name"]: _field(self.doc, p["name"], p.get("schema", {}), bool(p.get("required")))
            for p in op.get("parameters", ())
            if p.get("in") == "query"
        }


def coerce(field: Field, text: str) -> Any:
    """An attribute's text as the JSON value the field wants; CommandError (usage) if it cannot be."""

    def bad(what: str) -> CommandError:
        return CommandError(
            f"{field.name}={text!r} is not {what}", f"give {field.describe()}", code="bad_value", usage=True
        )

    if text == "" and field.nullable:
        return None
    if field.choices and text not in field.choices:
        raise bad("one of " + ", ".join(field.choices))
    if field.kind == "integer":
        try:
            return int(text, 10)
        except ValueError:
            raise bad("a whole number") from None
    if field.kind == "number":
        try:
            return float(text)
        except ValueError:
            raise bad("a number") from None
    if field.kind == "boolean":
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise bad("true or false")
    if field.kind in ("array", "object"):
        try:
            value = json.loads(text)
        except ValueError as err:
            raise bad(f"valid JSON ({err})") from None
        if not isinstance(value, list if field.kind == "array" else dict):
            raise bad(f"a JSON {field.kind}")
        return value
    return text


def parse_bool(name: str, text: str) -> bool:
    return bool(coerce(Field(name, "boolean"), text))
