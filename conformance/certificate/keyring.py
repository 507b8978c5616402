"""The keyring: which public keys a verifier trusts, whose they are, and what they may sign.

A keyring file (YAML or JSON, schema ``specs/schemas/keyring.schema.json``) is held by the
department and given to ``ics-conformance verify --keyring``::

    format: ics-conformance/keyring/1
    keys:
      - key_id: 3f2a9c0d1e2b4a5f            # optional; checked against public_key
        public_key: |
          -----BEGIN PUBLIC KEY-----
          MCowBQYDK2VwAyEA...
          -----END PUBLIC KEY-----
        party: DCSF ICS certification team
        role: department
      - public_key: ...
        party: Acme Care Systems Ltd
        role: supplier
        scope: {supplier: Acme Care Systems, products: [CareCase]}
      - public_key: ...
        party: Leeds City Council
        role: council
        scope: {council: Leeds}
      - public_key: ...
        party: Northern Test House
        role: test-lab
        scope: {suppliers: [Acme Care Systems]}     # optional

:func:`assess` decides whether a key may sign a certificate for a target and at which
assurance level (design §8, trust model):

- ``supplier`` key: only for its own supplier (and products, when listed): *self-assessed*.
- ``council`` key: only for runs recorded for its own council (``certify --council``): *self-assessed*.
- ``test-lab`` key: any supplier's system (or those listed), never the lab's own: *witnessed*.
- ``department`` key: any system not its own: *witnessed*. Only department keys sign waivers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conformance.certificate.documents import DocumentError, load_json_or_yaml
from conformance.certificate.signing import key_id
from conformance.errors import UsageError

__all__ = [
    "CERTIFIER_ROLE",
    "KEYRING_FORMAT",
    "ROLES",
    "SELF_ASSESSED",
    "WITNESSED",
    "KeyEntry",
    "Keyring",
    "OutOfScope",
    "assess",
    "entry_problem",
    "load_keyring",
    "parse_keyring",
]

KEYRING_FORMAT = "ics-conformance/keyring/1"
SELF_ASSESSED = "self-assessed"
WITNESSED = "witnessed"
ROLES = ("supplier", "council", "test-lab", "department")
#: The role whose keys sign waivers (the department is the certifier).
CERTIFIER_ROLE = "department"
_MAX_FILE = 4 * 1024 * 1024


class OutOfScope(Exception):
    """A key signed something its keyring entry does not allow; the message says what."""


@dataclass(frozen=True)
class KeyEntry:
    """One trusted key."""

    key_id: str
    public_key: Ed25519PublicKey = field(repr=False, compare=False)
    party: str
    role: str
    scope: Mapping[str, Any]

    def describe(self) -> str:
        """``Acme Care Systems Ltd (supplier, key 3f2a9c0d1e2b4a5f)``."""
        return f"{self.party} ({self.role}, key {self.key_id})"

    def record(self) -> dict[str, Any]:
        """The signer as recorded on a certificate (no key material)."""
        return {"key_id": self.key_id, "party": self.party, "role": self.role}


@dataclass(frozen=True)
class Keyring:
    """A loaded, validated keyring."""

    entries: tuple[KeyEntry, ...]
    source: str = ""

    def get(self, ident: str | None) -> KeyEntry | None:
        """The entry of key ``ident`` (a key ID), or None."""
        return next((e for e in self.entries if e.key_id == ident), None)


@cache
def _schema() -> dict[str, Any]:
    from conformance.spec.resources import spec_path

    data: dict[str, Any] = json.loads(spec_path("schemas", "keyring.schema.json").read_text(encoding="utf-8"))
    return data


def _public_key(pem: str, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{where}: not a readable PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{where}: wrong key type {type(key).__name__.removeprefix('_')}; an Ed25519 key is required")
    return key


def entry_problem(entry: Mapping[str, Any]) -> str | None:
    """Why ``entry`` is not a valid keyring entry by the schema (its key is not parsed), or None."""
    import jsonschema

    schema = dict(_schema(), **{"$ref": "#/$defs/key"})
    for name in ("required", "properties", "additionalProperties", "type"):
        schema.pop(name, None)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(dict(entry)), key=lambda e: list(map(str, e.absolute_path))
    )
    if not errors:
        return None
    return "/" + "/".join(str(p) for p in errors[0].absolute_path) + f": {_message(errors[0])}"


def _message(error: Any) -> str:
    if error.validator == "not":
        return "a department key takes no scope (it may witness any system but its own)"
    return str(error.message)


def parse_keyring(data: Any, source: str) -> Keyring:
    """Validate a parsed keyring document; :class:`UsageError` naming the first problem."""
    import jsonschema

    if not isinstance(data, Mapping):
        raise UsageError(f"keyring {source}: expected a mapping with a 'keys' list")
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(dict(data)), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        first = errors[0]
        pointer = "/" + "/".join(str(p) for p in first.absolute_path)
        raise UsageError(f"keyring {source}: malformed at {pointer}: {_message(first)}")
    entries: list[KeyEntry] = []
    for index, raw in enumerate(data["keys"]):
        where = f"keyring {source}: /keys/{index}"
        key = _public_key(raw["public_key"], where)
        ident = key_id(key)
        if raw.get("key_id") is not None and raw["key_id"] != ident:
            raise UsageError(f"{where}: key_id {raw['key_id']} does not match its public key (whose key ID is {ident})")
        clash = next((e for e in entries if e.key_id == ident), None)
        if clash is not None:
            raise UsageError(f"{where}: key {ident} is listed twice (also for {clash.party}); one key, one party")
        entries.append(KeyEntry(ident, key, raw["party"], raw["role"], dict(raw.get("scope") or {})))
    return Keyring(tuple(entries), source)


def load_keyring(path: Path) -> Keyring:
    """Read and validate a keyring file (YAML or JSON; repeated keys refused)."""
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_FILE:
            raise UsageError(f"keyring {path}: larger than {_MAX_FILE // (1024 * 1024)} MiB")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"keyring {path}: file not found") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"keyring {path}: is a directory") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"keyring {path}: not UTF-8 text") from exc
    except OSError as exc:
        raise UsageError(f"keyring {path}: cannot read: {exc.strerror}") from exc
    try:
        data = load_json_or_yaml(text)
    except DocumentError as exc:
        raise UsageError(f"keyring {path}: malformed: {exc}") from exc
    return parse_keyring(data, str(path))


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip().casefold() == b.strip().casefold()


def assess(entry: KeyEntry, *, supplier: Any, product: Any, council: Any) -> str:
    """The assurance level of a certificate signed by ``entry`` for this target.

    ``supplier``/``product`` come from the certificate's target (its ``GET /about``),
    ``council`` from ``certify --council``. Names compare case-insensitively. Raises
    :class:`OutOfScope` naming the rule when the key may not sign for this target.
    """
    who = entry.describe()
    if entry.role == "supplier":
        wanted = entry.scope.get("supplier")
        if not _same(supplier, wanted):
            raise OutOfScope(f"signer {who} may sign only for supplier {wanted!r}, not for {supplier!r}")
        products = entry.scope.get("products")
        if products and not any(_same(product, p) for p in products):
            raise OutOfScope(f"signer {who} may sign only for products {', '.join(products)}, not for {product!r}")
        return SELF_ASSESSED
    if entry.role == "council":
        wanted = entry.scope.get("council")
        if not _same(council, wanted):
            raise OutOfScope(
                f"signer {who} may sign only runs recorded for council {wanted!r}, "
                f"not for council {council!r} (certify --council)"
            )
        return SELF_ASSESSED
    if entry.role in ("test-lab", "department"):
        if _same(supplier, entry.party):
            raise OutOfScope(f"signer {who} is the target's own supplier: not independent, so it cannot witness")
        suppliers = entry.scope.get("suppliers")
        if suppliers and not any(_same(supplier, s) for s in suppliers):
            raise OutOfScope(f"signer {who} may witness only {', '.join(suppliers)}, not supplier {supplier!r}")
        return WITNESSED
    raise OutOfScope(f"signer {who}: unknown role {entry.role!r}")  # pragma: no cover - refused by the schema
