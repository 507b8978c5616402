"""Redaction of evidence at capture time.

Two kinds of data never reach evidence, whatever the policy:

* credentials: the ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and
  ``Set-Cookie`` headers, any header whose name contains ``token``, ``secret`` or
  ``api-key``; any JSON field whose name contains ``token``, ``secret`` or ``password``;
  query parameters named like a token; ``Bearer ...`` values, ``--...token... VALUE``
  options, ``...TOKEN=VALUE`` assignments and ``user:password@`` in free text and URLs.
* under the ``keyed-hash`` policy, personal data: the fields in
  :data:`PERSONAL_FIELDS` (and address lines) in JSON bodies and query strings are
  replaced with ``"hmac-sha256:<first 16 hex digits>"`` of HMAC-SHA256(key, value). Equal
  values get equal hashes within a run, so evidence still shows that the record read back
  is the record written, without showing who it is.

The ``none`` policy keeps personal data; it is meant for the built-in reference service,
whose data is synthetic (:meth:`Redactor.for_target`). Redaction is idempotent: values
that are already hashes are left alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import quote, unquote_plus

from conformance.errors import UsageError

Policy = Literal["none", "keyed-hash"]
POLICIES: tuple[str, ...] = ("none", "keyed-hash")

#: Fields holding personal data (replaced by keyed hashes under the keyed-hash policy).
PERSONAL_FIELDS: frozenset[str] = frozenset(
    {
        "given_name",
        "family_name",
        "name",
        "date_of_birth",
        "expected_date_of_birth",
        "date_of_death",
        "upn",
        "nhs_number",
        "local_id",
        "postcode",
        "text",
        "preview",
        "reason",
        "address",
        "address_lines",
    }
)
_ADDRESS_FIELD = re.compile(r"^address(?:_?line)?s?_?\d*$|^line_?\d+$")
#: Headers always dropped.
DROPPED_HEADERS: frozenset[str] = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_HEADER_PARTS = ("token", "secret", "api-key", "apikey", "api_key")
_SECRET_FIELD_PARTS = ("token", "secret", "password")
REMOVED = "[removed]"
HASH_PREFIX = "hmac-sha256:"
_HASHED = re.compile(r"^hmac-sha256:[0-9a-f]{16}$")

_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[A-Za-z0-9_.\-\[\]%]+)=(?P<value>[^&#\s\"'<>]*)")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9\-._~+/=]{4,}")
_OPTION_TOKEN = re.compile(r"(?i)(--[\w-]*(?:token|secret|password)[\w-]*)(=|\s+)(\S+)")
_ENV_TOKEN = re.compile(r"\b([A-Z][A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD)[A-Z0-9_]*=)(\S+)")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#]+@")


def _is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_FIELD_PARTS)


def _is_personal_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in PERSONAL_FIELDS or bool(_ADDRESS_FIELD.match(lowered))


class Redactor:
    """Redact HTTP headers, JSON bodies and free text under one policy and key.

    ``policy`` is ``"none"`` (credentials only) or ``"keyed-hash"`` (credentials and
    personal data); ``key`` is the HMAC key for ``keyed-hash`` and is never recorded.
    """

    def __init__(self, policy: Policy, key: bytes = b"") -> None:
        if policy not in POLICIES:
            raise UsageError(f"unknown redaction policy {policy!r}; expected one of {', '.join(POLICIES)}")
        if policy == "keyed-hash" and len(key) < 16:
            raise UsageError("the keyed-hash redaction policy needs a key of at least 16 bytes")
        self.policy: Policy = policy
        self._key = bytes(key)

    def __repr__(self) -> str:  # never show the key
        return f"Redactor(policy={self.policy!r})"

    @classmethod
    def for_target(cls, builtin_reference: bool) -> Redactor:
        """``none`` for the built-in reference (synthetic data), else keyed-hash with a fresh random key."""
        if builtin_reference:
            return cls("none")
        return cls("keyed-hash", secrets.token_bytes(32))

    @property
    def hashes_personal_data(self) -> bool:
        return self.policy == "keyed-hash"

    # -- primitives -------------------------------------------------------------------

    def hash_value(self, value: Any) -> str:
        """Return ``"hmac-sha256:<16 hex>"`` of a scalar (already-hashed strings unchanged)."""
        text = value if isinstance(value, str) else json.dumps(value)
        if _HASHED.match(text):
            return text
        digest = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{HASH_PREFIX}{digest[:16]}"

    def _hash_tree(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, Mapping):
            return {k: self._hash_tree(v) for k, v in value.items() if not _is_secret_field(str(k))}
        if isinstance(value, (list, tuple)):
            return [self._hash_tree(v) for v in value]
        return self.hash_value(value)

    # -- public API ---------------------------------------------------------------------

    def headers(self, mapping: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> dict[str, str]:
        """Return the headers minus credentials, values passed through :meth:`text`.

        Accepts a mapping (including ``httpx.Headers``) or ``(name, value)`` pairs;
        repeated names are joined with ``", "``.
        """
        if mapping is None:
            return {}
        items: Iterable[tuple[str, Any]]
        if hasattr(mapping, "multi_items"):
            items = mapping.multi_items()  # httpx.Headers
        elif isinstance(mapping, Mapping):
            items = mapping.items()
        else:
            items = mapping
        out: dict[str, str] = {}
        for name, value in items:
            name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            lowered = name.lower()
            if lowered in DROPPED_HEADERS or any(part in lowered for part in _SECRET_HEADER_PARTS):
                continue
            value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            value = self.text(value)
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def body(self, obj: Any) -> Any:
        """Return a redacted copy of a JSON body (dicts, lists, scalars).

        A string that parses as a JSON object or array is redacted as JSON and returned
        re-serialised; any other string goes through :meth:`text`.
        """
        if isinstance(obj, bytes):
            obj = obj.decode("utf-8", errors="replace")
        if isinstance(obj, str):
            stripped = obj.strip()
            if stripped[:1] in ("{", "["):
                try:
                    parsed = json.loads(stripped)
                except ValueError:
                    return self.text(obj)
                return json.dumps(self.body(parsed), ensure_ascii=False)
            return self.text(obj)
        if isinstance(obj, Mapping):
            out: dict[str, Any] = {}
            for key, value in obj.items():
                name = str(key)
                if _is_secret_field(name):
                    continue
                if self.hashes_personal_data and _is_personal_field(name):
                    out[name] = self._hash_tree(value)
                else:
                    out[name] = self.body(value)
            return out
        if isinstance(obj, (list, tuple)):
            return [self.body(v) for v in obj]
        return obj

    def text(self, value: str) -> str:
        """Redact credentials (and, under keyed-hash, personal query values) in free text or a URL."""
        if not isinstance(value, str):
            return value
        value = _USERINFO.sub(r"\1", value)
        value = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REMOVED}", value)
        value = _OPTION_TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{REMOVED}", value)
        value = _ENV_TOKEN.sub(lambda m: f"{m.group(1)}{REMOVED}", value)
        return _QUERY_PARAM.sub(self._query_param, value)

    def _query_param(self, match: re.Match[str]) -> str:
        name = unquote_plus(match.group("name"))
        raw = match.group("value")
        if _is_secret_field(name):
            raw = quote(REMOVED)
        elif self.hashes_personal_data and _is_personal_field(name) and raw:
            raw = quote(self.hash_value(unquote_plus(raw)), safe=":")
        return f"{match.group('sep')}{match.group('name')}={raw}"

    def evidence(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Redact one evidence entry, e.g. ``{"kind": "http", "request": {...}, "response": {...}}``.

        ``headers`` go through :meth:`headers`, ``body``/``json`` through :meth:`body`,
        ``url``/``path`` and other strings through :meth:`text`; personal fields anywhere
        else in the entry are hashed under keyed-hash.
        """
        return self._evidence_node(entry)

    def _evidence_node(self, node: Any) -> Any:
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for key, value in node.items():
                name = str(key)
                lowered = name.lower()
                if _is_secret_field(name) or lowered in DROPPED_HEADERS:
                    continue
                if lowered == "headers" and isinstance(value, (Mapping, list, tuple)):
                    out[name] = self.headers(value)
                elif lowered in ("body", "json", "content", "example", "data"):
                    out[name] = self.body(value)
                elif self.hashes_personal_data and _is_personal_field(name):
                    out[name] = self._hash_tree(value)
                else:
                    out[name] = self._evidence_node(value)
            return out
        if isinstance(node, (list, tuple)):
            return [self._evidence_node(v) for v in node]
        if isinstance(node, str):
            return self.text(node)
        return node

    def policy_record(self) -> dict[str, Any]:
        """Describe the policy in force, for the bundle manifest (never includes the key)."""
        record: dict[str, Any] = {
            "policy": self.policy,
            "always_removed": {
                "headers": sorted(DROPPED_HEADERS),
                "headers_named_like": list(_SECRET_HEADER_PARTS),
                "fields_named_like": list(_SECRET_FIELD_PARTS),
                "query_parameters_named_like": list(_SECRET_FIELD_PARTS),
                "free_text": [
                    "Bearer/Basic credentials",
                    "--*token* options",
                    "*TOKEN*= assignments",
                    "user:password@ in URLs",
                ],
            },
        }
        if self.hashes_personal_data:
            record["personal_data"] = {
                "replacement": "hmac-sha256:<first 16 hex digits of HMAC-SHA256(run key, value)>",
                "key": "random per run, not stored",
                "fields": sorted(PERSONAL_FIELDS) + ["address lines (address_line_N, line_N)"],
                "query_parameters": "the same names",
            }
        else:
            record["personal_data"] = {"replacement": "none (built-in reference service: synthetic data only)"}
        return record
