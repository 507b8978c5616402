"""Redaction of evidence, messages and logs at capture time.

Two kinds of data never reach an artefact, whatever the policy:

* credentials: the ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and
  ``Set-Cookie`` headers, any header whose name contains ``token``, ``secret`` or
  ``api-key``; any JSON field whose name contains ``token``, ``secret`` or ``password``;
  query parameters named like a token; ``Bearer ...`` credentials, ``--...token... VALUE``
  options, ``...TOKEN=VALUE`` assignments and ``user:password@`` in free text and URLs;
  and **every token the run has seen** in a response (``POST /practitioners`` answers
  with the new account's token): it is remembered (:func:`remember_secret`) and removed
  wherever it appears as a whole token (never inside an ordinary word; tokens shorter
  than :data:`MIN_SECRET_LENGTH` are removed only where they stand as credentials).
* under the ``keyed-hash`` policy (any target but the built-in reference), everything
  the target sent, by **allow-list**: every string (and number) is replaced with
  ``"hmac-sha256:<first 16 hex digits>"`` of HMAC-SHA256(run key, value) unless its field
  is on the list of known-safe fields (:data:`SAFE_FIELDS`: enum values, the dates of
  the harness's own scenarios and the server's time stamps, status codes, paging
  numbers), or it is an ID the harness made (``<run id>-<kind>-<n>-<hex>``). Supplier
  fields (``forename``, ``dob``, ``home_address``, ...), non-JSON bodies and IDs the
  server made are hashed like any other value. Equal values get equal hashes within a
  run, so evidence still shows that the record read back is the record written.

Free text (check messages, failure details, URLs, logs) is redacted the same way under
``keyed-hash``: first every value the run hashed in a body is replaced by its hash
wherever it appears, then the text is cut into words and numbers and each one is kept
only if it belongs to the harness's own vocabulary (the words of its source code and of
the specification, so the harness's sentences stay readable; a capitalised word only if
its lower-case form is in that vocabulary too), is a single character, a number of at
most three digits (status codes, counts), an ID the harness made, or already a hash.
Everything else is hashed.

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
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote_plus

from conformance.errors import UsageError
from conformance.spec.error_codes import error_codes

Policy = Literal["none", "keyed-hash"]
POLICIES: tuple[str, ...] = ("none", "keyed-hash")

#: Fields holding personal data (kept for reference: under keyed-hash every field not in
#: SAFE_FIELDS is hashed anyway).
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

#: Enumerations of the canonical API: the field's value is kept when it is one of these.
_ENUMS: dict[str, frozenset[str]] = {
    "gender": frozenset({"male", "female", "not_known", "not_specified"}),
    "role": frozenset({"admin", "manager", "practitioner", "read_only"}),
    "type": frozenset({"alias", "previous", "known_as", "initial", "core"}),
    "status": frozenset({"open", "completed", "unacknowledged", "acknowledged", "all"}),
    "action": frozenset({"view", "create", "update"}),
    "source": frozenset({"police", "school", "health", "self", "family", "local_authority", "other"}),
}


@cache
def _enums() -> dict[str, frozenset[str]]:
    """The enumerations above plus ``code``: the error codes of ``specs/openapi.yaml``."""
    return {**_ENUMS, "code": error_codes()}


#: Dates of the harness's scenarios and the server's own time stamps (never a date of
#: birth or death): kept when they are ISO dates or date-times.
_DATE_FIELDS: frozenset[str] = frozenset(
    {
        "start_date",
        "due_date",
        "visit_date",
        "completed_on",
        "received_on",
        "end_date",
        "created_at",
        "updated_at",
        "acknowledged_at",
        "at",
        "generated_at",
    }
)
#: Numbers that describe the exchange, not a person.
_NUMBER_FIELDS: frozenset[str] = frozenset(
    {"page", "page_size", "total", "count", "bytes", "status", "status_code", "elapsed_ms"}
)
#: Booleans are always kept (a flag carries no identity); so are null values.
SAFE_FIELDS: frozenset[str] = frozenset(_ENUMS) | {"code"} | _DATE_FIELDS | _NUMBER_FIELDS
#: Headers kept verbatim under keyed-hash (others: their value is redacted as free text).
_SAFE_HEADERS: frozenset[str] = frozenset({"content-type", "content-length", "date", "accept", "user-agent"})

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
#: IDs the harness makes (``World.unique``): run ID, kind, counter, random hex.
HARNESS_ID = re.compile(r"r[0-9a-f]{8}(?:-[a-z]{1,3}-\d{1,9}-[0-9a-f]{4})?")
#: Headers always dropped.
DROPPED_HEADERS: frozenset[str] = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_HEADER_PARTS = ("token", "secret", "api-key", "apikey", "api_key")
_SECRET_FIELD_PARTS = ("token", "secret", "password")
REMOVED = "[removed]"
HASH_PREFIX = "hmac-sha256:"
_HASHED = re.compile(r"^hmac-sha256:[0-9a-f]{16}$")
#: Seen tokens shorter than this are removed only where they stand as credentials.
MIN_SECRET_LENGTH = 6
_TOKEN_CHARS = r"A-Za-z0-9\-._~+/="

_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[A-Za-z0-9_.\-\[\]%]+)=(?P<value>[^&#\s\"'<>]*)")
#: A credential after its scheme: 8+ token characters with at least one that is not a
#: lower-case letter (so "a valid bearer token is required" stays as it is).
_BEARER = re.compile(
    r"(?i)\b(bearer|basic|token)(\s+)(?=[" + _TOKEN_CHARS + r"]{8,})(?-i:(?=\S*[^a-z\s]))[" + _TOKEN_CHARS + r"]+"
)
_OPTION_TOKEN = re.compile(r"(?i)(--[\w-]*(?:token|secret|password)[\w-]*)(=|\s+)(?!\[removed\])(\S+)")
_ENV_TOKEN = re.compile(r"\b([A-Z][A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD)[A-Z0-9_]*=)(?!\[removed\])(\S+)")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#]+@")
_JSON_TOKEN_FIELD = re.compile(
    r"""(?i)(["']?[\w-]*(?:token|secret|password)[\w-]*["']?\s*[:=]\s*)(["'])(?!\[removed\])[^"']*\2"""
)

#: The words free text is cut into, in order of preference: things kept whole (hashes,
#: the removal marker, requirement IDs, IDs the harness made), numbers (dates, times,
#: digit groups: one token), then words (letters, digits, underscores, joined by hyphens).
_TOKENS = re.compile(
    r"(?P<keep>hmac-sha256:[0-9a-f]{16}|\[removed\]|ICS-\d[A-Z]-[A-Z]+-\d{3}|" + HARNESS_ID.pattern + r")(?![\w-])"
    r"|(?P<number>\d+(?:(?:[-/.:]|T| (?=\d))\d+)*(?:Z|[+-]\d{2}:\d{2})?)(?![\w])"
    r"|(?P<word>\w+(?:-\w+)*)"
)
_SHORT_NUMBER = re.compile(r"\d{1,3}|\d{1,4}\.\d{1,3}")


# --------------------------------------------------------------------------- run-wide memory

_LOCK = threading.Lock()
_SECRETS: set[str] = set()
#: Values the run hashed in a body (bounded), indexed by their first word: replaced by
#: their hash in free text too (a text is scanned word by word, not value by value).
_VALUES: dict[str, set[str]] = {}
_VALUE_COUNT = 0
_VALUE_LIMIT = 200_000
_FIRST_WORD = re.compile(r"\w+")
_ACTIVE: Redactor | None = None


def remember_secret(value: Any) -> None:
    """Remember a credential seen in a response: it is removed from everything from now on."""
    if isinstance(value, str) and value.strip():
        with _LOCK:
            _SECRETS.add(value.strip())


def seen_secrets() -> frozenset[str]:
    """Every credential remembered by this process."""
    with _LOCK:
        return frozenset(_SECRETS)


def _remember_value(value: str) -> None:
    global _VALUE_COUNT
    if len(value) < 4 or _HASHED.match(value):
        return
    first = _FIRST_WORD.search(value)
    if first is None or first.start() != 0:
        return  # not found word by word; the word-level allow-list covers it
    with _LOCK:
        bucket = _VALUES.setdefault(first.group(0), set())
        if value not in bucket and _VALUE_COUNT < _VALUE_LIMIT:
            bucket.add(value)
            _VALUE_COUNT += 1


def forget_all() -> None:
    """Forget remembered secrets and values (tests; a new run in the same process)."""
    global _ACTIVE, _VALUE_COUNT
    with _LOCK:
        _SECRETS.clear()
        _VALUES.clear()
        _VALUE_COUNT = 0
        _ACTIVE = None


def set_active(redactor: Redactor | None) -> None:
    """Make ``redactor`` the one :func:`active` returns (the plugin sets the run's)."""
    global _ACTIVE
    _ACTIVE = redactor


def active() -> Redactor:
    """The run's redactor (credentials-only ``none`` until the plugin sets one)."""
    return _ACTIVE if _ACTIVE is not None else Redactor("none")


def scrub_secrets(text: str, extra: Iterable[str] = ()) -> str:
    """Remove every remembered credential (and ``extra`` ones) where it stands as a whole token."""
    if not isinstance(text, str) or not text:
        return text
    candidates = sorted(
        {s for s in (*seen_secrets(), *extra) if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
    )
    for secret in candidates:
        if secret in text:
            text = re.sub(
                rf"(?<![{_TOKEN_CHARS}]){re.escape(secret)}(?![{_TOKEN_CHARS}])",
                REMOVED,
                text,
            )
    return text


# --------------------------------------------------------------------------- vocabulary


#: Library modules whose messages reach a check's message (Hypothesis' "Falsifying
#: example", Schemathesis' check failures, httpx's and pytest's errors): their words count
#: as the harness's own.
_LIBRARY_FILES = (
    ("hypothesis", "core.py"),
    ("hypothesis", "errors.py"),
    ("hypothesis", "stateful.py"),
    ("schemathesis", "core/failures.py"),
    ("schemathesis", "openapi/checks.py"),
    ("schemathesis", "specs/openapi/checks.py"),
    ("schemathesis", "checks.py"),
    ("httpx", "_exceptions.py"),
    ("_pytest", "outcomes.py"),
    ("_pytest", "runner.py"),
    ("_pytest", "terminal.py"),
)


def _library_files() -> list[Path]:
    import importlib.util

    files = []
    for package, relative in _LIBRARY_FILES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / relative
            if candidate.is_file():
                files.append(candidate)
    return files


@cache
def vocabulary() -> frozenset[str]:
    """The harness's own words: those of its source code and of the specification (and the
    messages of the libraries it runs checks with).

    Words only (cut as :data:`_TOKENS` cuts free text); a capitalised word (``Smith``)
    counts only when its lower-case form is a word of the vocabulary too, so the names
    the harness uses as synthetic data do not let real names through.
    """
    package = Path(__file__).resolve().parent.parent
    roots = [package]
    try:
        from conformance.spec.resources import specs_dir

        roots.append(specs_dir())
    except (ImportError, FileNotFoundError):  # pragma: no cover - specs always ship
        pass
    words: set[str] = set()
    paths = [p for root in roots for p in root.rglob("*")] + _library_files()
    for path in paths:
        if path.suffix not in (".py", ".yaml", ".yml", ".json", ".j2", ".md") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        words.update(match.group(0) for match in _TOKENS.finditer(text))
    import builtins
    import os

    words.update(dir(builtins))
    for number in range(1, 134):
        words.update(m.group(0) for m in _TOKENS.finditer(os.strerror(number)))
    kept = {w for w in words if not _is_title_word(w) or w.lower() in words}
    return frozenset(kept | _LIBRARY_WORDS)


#: Capitalised words of library messages that have no lower-case twin in the sources.
_LIBRARY_WORDS = frozenset({"Falsifying", "Traceback", "Trying", "Unreliable", "Explanation", "Highest", "Flaky"})


def _is_title_word(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and word[1:].islower()


# --------------------------------------------------------------------------- helpers


def _is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_FIELD_PARTS)


_PLAIN_KEY = re.compile(r"^[a-z_][A-Za-z0-9_]{0,63}$")


class Redactor:
    """Redact HTTP headers, JSON bodies and free text under one policy and key.

    ``policy`` is ``"none"`` (credentials only) or ``"keyed-hash"`` (credentials, and
    everything the target sent that is not on the allow-list); ``key`` is the HMAC key
    for ``keyed-hash`` and is never recorded.
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

    def _hash_string(self, value: str) -> str:
        if _HASHED.match(value):
            return value
        _remember_value(value)
        return self.hash_value(value)

    def _key_name(self, name: str) -> str:
        """A field name: kept when it looks like one (``forename``, ``nhsNumber``), else hashed."""
        if not self.hashes_personal_data or _PLAIN_KEY.match(name) or _HASHED.match(name):
            return name
        return self._hash_string(name)

    def _safe_scalar(self, field: str | None, value: Any) -> bool:
        if value is None or isinstance(value, bool):
            return True
        name = (field or "").lower()
        if isinstance(value, (int, float)):
            return name in _NUMBER_FIELDS
        if not isinstance(value, str):
            return False
        if _HASHED.match(value) or value == REMOVED or HARNESS_ID.fullmatch(value):
            return True
        enums = _enums()
        if name in enums:
            return value in enums[name]
        if name in _DATE_FIELDS:
            return bool(_ISO_DATE.match(value))
        return False

    def _allow(self, value: Any, field: str | None) -> Any:
        """Allow-list redaction of a parsed JSON value found under ``field``."""
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = str(key)
                if _is_secret_field(name):
                    if isinstance(item, str):
                        remember_secret(item)
                    continue
                out[self._key_name(name)] = self._allow(item, name)
            return out
        if isinstance(value, (list, tuple)):
            return [self._allow(v, field) for v in value]
        if self._safe_scalar(field, value):
            return value
        if isinstance(value, str):
            return self._hash_string(value)
        return self.hash_value(value)

    def _plain(self, value: Any) -> Any:
        """``none`` policy: drop secret fields (remembering their values), scrub seen secrets."""
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = str(key)
                if _is_secret_field(name):
                    if isinstance(item, str):
                        remember_secret(item)
                    continue
                out[name] = self._plain(item)
            return out
        if isinstance(value, (list, tuple)):
            return [self._plain(v) for v in value]
        if isinstance(value, str):
            return scrub_secrets(value)
        return value

    # -- public API ---------------------------------------------------------------------

    def headers(self, mapping: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> dict[str, str]:
        """Return the headers minus credentials, values passed through :meth:`text`.

        Accepts a mapping (including ``httpx.Headers``) or ``(name, value)`` pairs;
        repeated names are joined with ``", "``. Under keyed-hash the values of a few
        descriptive headers (content type and length, date) are kept as they are.
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
            if self.hashes_personal_data and lowered in _SAFE_HEADERS and len(value) <= 200:
                value = scrub_secrets(_BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REMOVED}", value))
            else:
                value = self.text(value)
            name = self._key_name(name) if not re.fullmatch(r"[A-Za-z0-9\-]{1,64}", name) else name
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
        if isinstance(obj, (Mapping, list, tuple)):
            return self._allow(obj, None) if self.hashes_personal_data else self._plain(obj)
        if self.hashes_personal_data and not self._safe_scalar(None, obj):
            return self.hash_value(obj)
        return obj

    def details(self, obj: Any) -> Any:
        """Structured failure details (``{"status": 422, "body": {...}}``): redacted like evidence."""
        return self._evidence_node(obj)

    def text(self, value: str) -> str:
        """Redact free text or a URL: credentials always; under keyed-hash, every word not on the allow-list."""
        if not isinstance(value, str):
            return value
        value = _USERINFO.sub(r"\1", value)
        value = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REMOVED}", value)
        value = _OPTION_TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{REMOVED}", value)
        value = _ENV_TOKEN.sub(lambda m: f"{m.group(1)}{REMOVED}", value)
        value = _JSON_TOKEN_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{REMOVED}{m.group(2)}", value)
        value = scrub_secrets(value)
        value = _QUERY_PARAM.sub(self._query_param, value)
        if not self.hashes_personal_data:
            return value
        return self._words(self._known_values(value))

    def _known_values(self, text: str) -> str:
        """Replace every value hashed in a body so far by its hash (longest first), wherever it starts at a word."""
        if not _VALUES:
            return text
        found: set[str] = set()
        with _LOCK:
            for match in _FIRST_WORD.finditer(text):
                for value in _VALUES.get(match.group(0), ()):
                    if text.startswith(value, match.start()):
                        found.add(value)
        for value in sorted(found, key=len, reverse=True):
            text = text.replace(value, self.hash_value(value))
        return text

    def _words(self, text: str) -> str:
        words = vocabulary()

        def keep(match: re.Match[str]) -> str:
            token = match.group(0)
            if match.group("keep"):
                return token
            if match.group("number"):
                return token if _SHORT_NUMBER.fullmatch(token) or token in words else self.hash_value(token)
            if len(token) == 1 or token in words:
                return token
            return self.hash_value(token)

        return _TOKENS.sub(keep, text)

    def _query_param(self, match: re.Match[str]) -> str:
        name = unquote_plus(match.group("name"))
        raw = match.group("value")
        if _is_secret_field(name):
            raw = quote(REMOVED)
        elif self.hashes_personal_data and raw and not self._safe_scalar(name, unquote_plus(raw)):
            if not (name in ("page", "page_size") and raw.isdigit() and len(raw) <= 4) and not (
                name == "include_deceased" and raw in ("true", "false")
            ):
                raw = quote(self._hash_string(unquote_plus(raw)), safe=":")
        return f"{match.group('sep')}{match.group('name')}={raw}"

    def evidence(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Redact one evidence entry, e.g. ``{"kind": "http", "request": {...}, "response": {...}}``.

        ``headers`` go through :meth:`headers`, ``body``/``json`` through :meth:`body`,
        ``url``/``path`` and other strings through :meth:`text`.
        """
        return self._evidence_node(entry)

    def _evidence_node(self, node: Any) -> Any:
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for key, value in node.items():
                name = str(key)
                lowered = name.lower()
                if _is_secret_field(name) or lowered in DROPPED_HEADERS:
                    if isinstance(value, str):
                        remember_secret(value)
                    continue
                if lowered == "headers" and isinstance(value, (Mapping, list, tuple)):
                    out[name] = self.headers(value)
                elif lowered in ("body", "json", "content", "example", "data"):
                    out[name] = self.body(value)
                else:
                    out[self._key_name(name)] = self._evidence_node(value)
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
                    "every token seen in a response, as a whole token",
                ],
            },
        }
        if self.hashes_personal_data:
            record["personal_data"] = {
                "replacement": "hmac-sha256:<first 16 hex digits of HMAC-SHA256(run key, value)>",
                "key": "random per run, not stored",
                "method": "allow-list: every value the target sent is hashed unless its field is listed here",
                "hashed_for_example": sorted(PERSONAL_FIELDS) + ["supplier fields", "non-JSON bodies", "server IDs"],
                "safe_fields": {
                    "enumerations": {k: sorted(v) for k, v in sorted(_enums().items())},
                    "dates": sorted(_DATE_FIELDS),
                    "numbers": sorted(_NUMBER_FIELDS),
                    "always": ["booleans", "null", "IDs the harness made (<run id>-<kind>-<n>-<hex>)"],
                },
                "free_text": (
                    "values hashed in a body are hashed wherever they appear; then every word that is not the "
                    "harness's own (its source code and the specification), a single character, a number of at "
                    "most three digits or an ID the harness made is hashed"
                ),
            }
        else:
            record["personal_data"] = {"replacement": "none (built-in reference service: synthetic data only)"}
        return record
