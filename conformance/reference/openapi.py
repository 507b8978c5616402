"""Request validation from the canonical OpenAPI document itself.

The reference service loads ``specs/openapi.yaml`` once and validates every request body
and query string against the document's own schemas (JSON Schema 2020-12 with format
checking), so that the document stays the single source of truth for the wire format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from conformance.spec.resources import spec_path

_INTEGER = re.compile(r"[+-]?\d{1,18}")
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class FieldError:
    """One invalid field: its dotted path (or name) and what is wrong with it."""

    field: str
    message: str


@dataclass
class _Param:
    name: str
    schema: dict[str, Any]
    validator: Draft202012Validator
    kind: str  # "integer", "boolean" or "string"
    default: Any = None


@dataclass
class Operation:
    """What the service checks for one operation: its query parameters and its body."""

    operation_id: str
    params: dict[str, _Param] = field(default_factory=dict)
    body: Draft202012Validator | None = None
    body_required: bool = False

    def query(self, raw: dict[str, str], skip: frozenset[str] = frozenset()) -> tuple[dict[str, Any], list[FieldError]]:
        """Coerce and validate the declared query parameters (unknown ones are ignored)."""
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        for name, param in self.params.items():
            if name not in raw:
                if param.default is not None:
                    values[name] = param.default
                continue
            text = raw[name]
            value: Any = text
            if param.kind == "integer":
                if not _INTEGER.fullmatch(text.strip()):
                    errors.append(FieldError(name, f"{text!r} is not an integer"))
                    continue
                value = int(text)
            elif param.kind == "boolean":
                if text.lower() not in _BOOLEANS:
                    errors.append(FieldError(name, f"{text!r} is not true or false"))
                    continue
                value = _BOOLEANS[text.lower()]
            if name not in skip:
                errors.extend(_errors(param.validator, value, name))
            values[name] = value
        return values, errors

    def validate_body(self, body: Any, skip: frozenset[str] = frozenset()) -> list[FieldError]:
        """Field errors of ``body`` against the operation's request schema (fields in ``skip`` ignored)."""
        if self.body is None:
            return []
        return [e for e in _errors(self.body, body, "") if e.field not in skip]


def _field_of(error: ValidationError, prefix: str) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.message, str):
        match = re.match(r"'(.+)' is a required property", error.message)
        if match:
            parts.append(match.group(1))
    elif error.validator == "additionalProperties":
        match = re.search(r"\('(.+?)'", error.message)
        if match:
            parts.append(match.group(1))
    joined = ".".join(parts)
    if prefix:
        return f"{prefix}.{joined}" if joined else prefix
    return joined or "body"


def _errors(validator: Draft202012Validator, instance: Any, prefix: str) -> list[FieldError]:
    found = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [FieldError(_field_of(e, prefix), e.message[:300]) for e in found]


class OpenAPIDocument:
    """The parsed OpenAPI document and a validator per operation."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._components = document.get("components", {})
        self.operations: dict[str, Operation] = {}
        for item in document.get("paths", {}).values():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method not in {"get", "post", "patch", "put", "delete"}:
                    continue
                self.operations[op["operationId"]] = self._operation(op, shared)

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        rooted = {**schema, "components": self._components}
        return Draft202012Validator(rooted, format_checker=Draft202012Validator.FORMAT_CHECKER)

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node and len(node) == 1:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _operation(self, op: dict[str, Any], shared: list[dict[str, Any]]) -> Operation:
        result = Operation(op["operationId"])
        for raw in (*shared, *op.get("parameters", [])):
            param = self._deref(raw)
            if param.get("in") != "query":
                continue
            schema = param.get("schema", {})
            kind = self._deref(schema).get("type", "string")
            result.params[param["name"]] = _Param(
                param["name"],
                schema,
                self._validator(schema),
                kind if kind in {"integer", "boolean"} else "string",
                self._deref(schema).get("default"),
            )
        body = op.get("requestBody")
        if body:
            body = self._deref(body)
            schema = body.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                result.body = self._validator(schema)
                result.body_required = bool(body.get("required"))
        return result


@cache
def load_openapi() -> OpenAPIDocument:
    """The canonical document, parsed once per process."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(spec_path("openapi.yaml"), encoding="utf-8") as handle:
        return OpenAPIDocument(yaml.load(handle, Loader=loader))
