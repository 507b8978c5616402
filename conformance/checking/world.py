"""The harness's side of a target: run context, practitioners, and data it creates.

Everything the harness creates is namespaced by the run ID (local child IDs,
practitioner names), and checks judge only the records they created, so a target that
holds other data — another run's, or a council's test records — is judged fairly.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conformance.certificate.redaction import Redactor
from conformance.checking.checks import expect_status, fail
from conformance.checking.client import Client, EvidenceLog

ROLES = ("admin", "manager", "practitioner", "read_only")
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Practitioner:
    """A practitioner account on the target; the token never appears in ``repr``."""

    id: str
    name: str
    role: str
    token: str = field(repr=False)


@dataclass
class RunContext:
    """What the plugin establishes once per session and every check reads."""

    target_url: str
    admin_token: str = field(repr=False)
    run_id: str
    phase: str
    profile: str
    capabilities: Any  # conformance.spec.capabilities.CapabilityStatement
    about: dict[str, Any]
    timeout: float = 10.0
    #: total seconds one HTTP exchange may take, and the largest response accepted
    deadline: float = 60.0
    max_response_bytes: int = 128 * 1024 * 1024
    builtin_reference: bool = False
    faults: tuple[str, ...] = ()
    seed: int | None = None
    #: True when an export file is judged alone (``--ics-export`` without a target)
    export_only: bool = False
    #: key of the keyed hashes that redact personal data in evidence; one per run, shared
    #: with xdist workers so the same value hashes alike everywhere; never written anywhere
    redaction_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    #: most requests in flight to the target at once (None: no bound; checks run one after another
    #: per process); above 1, independent checks run ahead on threads (``conformance.plugin.lanes``)
    max_in_flight: int | None = None
    #: the peer of a pair run (phase 1C): a second system that transfers with the target
    peer_url: str | None = None
    peer_admin_token: str = field(default="", repr=False)
    peer_about: dict[str, Any] | None = None
    peer_capabilities: dict[str, Any] = field(default_factory=dict)
    peer_builtin_reference: bool = False
    peer_faults: tuple[str, ...] = ()
    #: the supplier adapter the target is reached through (its record: name, version, sha256, ...), or None
    adapter: dict[str, Any] | None = None

    def has(self, capability: str) -> bool:
        return bool(self.capabilities.has(capability))

    def redactor(self) -> Redactor:
        """The run's redactor: credentials only for the built-in reference (synthetic data), else the
        keyed-hash allow-list with the run's key (shared by every xdist worker). A pair run is synthetic
        only when both sides are built-in references."""
        if self.builtin_reference and (not self.paired or self.peer_builtin_reference):
            return Redactor("none")
        return Redactor("keyed-hash", bytes.fromhex(self.redaction_key))

    def get(self, capability: str, default: Any = None) -> Any:
        return self.capabilities.get(capability, default)

    @property
    def paired(self) -> bool:
        """True in a pair run: the target and a peer transfer children to each other."""
        return self.peer_url is not None

    def side(self, name: str) -> Side:
        """The target (``"target"``) or the peer (``"peer"``) of the run as one :class:`Side`."""
        from conformance.spec.capabilities import CapabilityStatement

        if name == TARGET:
            return Side(
                TARGET, self.target_url, self.admin_token, self.about, self.capabilities, self.builtin_reference
            )
        if name == PEER and self.peer_url is not None:
            return Side(
                PEER,
                self.peer_url,
                self.peer_admin_token,
                self.peer_about or {},
                CapabilityStatement(self.peer_capabilities),
                self.peer_builtin_reference,
            )
        raise ValueError(f"no side {name!r} in this run (paired: {self.paired})")


TARGET = "target"
PEER = "peer"


@dataclass(frozen=True)
class Side:
    """One of the two systems of a pair run (or the target alone): where it is and what it declares."""

    name: str  # "target" or "peer"
    url: str
    admin_token: str = field(repr=False)
    about: dict[str, Any]
    capabilities: Any  # conformance.spec.capabilities.CapabilityStatement
    builtin_reference: bool = False

    def has(self, capability: str) -> bool:
        return bool(self.capabilities.has(capability))

    @property
    def council(self) -> str:
        """The council the system names in ``/about`` (its URL when it names none)."""
        council = self.about.get("council") if isinstance(self.about, dict) else None
        return str(council) if council else self.url

    @property
    def label(self) -> str:
        """``target (Council A)``: how verdicts name the side."""
        return f"{self.name} ({self.council})"


#: Where the plugin keeps the session's RunContext (``config.stash``).
CONTEXT_KEY = pytest.StashKey["RunContext"]()
#: Where a check's captured (redacted) evidence is kept (``item.stash``).
EVIDENCE_KEY = pytest.StashKey[EvidenceLog]()
#: Seconds a check's body ran when it ran ahead of pytest on a thread of its own (``item.stash``).
DURATION_KEY = pytest.StashKey[float]()


def new_run_id() -> str:
    """A short random run ID, e.g. ``r7f3a9c2e``."""
    return "r" + secrets.token_hex(4)


_POOL_LOCK = threading.RLock()


class World:
    """Provisioning helpers for one check, blaming ``requirements`` when the target refuses.

    A step the check needs (creating a child, allocating a practitioner) that the target
    refuses is a failure of the requirements under test: the target could not do what
    they require. An unreachable target raises and becomes ERROR.
    """

    _counter = itertools.count(1)

    def __init__(
        self,
        context: RunContext,
        client: Client,
        *,
        requirements: Iterable[str] = (),
        pool: dict[str, Practitioner] | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.context = context
        self.client = client
        self.requirements: tuple[str, ...] = tuple(requirements)
        self._pool = pool if pool is not None else {}
        token = context.admin_token if admin_token is None else admin_token
        self.admin = Practitioner(id="admin", name="admin", role="admin", token=token)

    # -- naming -------------------------------------------------------------------------
    def unique(self, prefix: str = "x") -> str:
        """A run-namespaced unique token, e.g. ``r7f3a9c2e-x-12``."""
        return f"{self.context.run_id}-{prefix}-{next(self._counter)}-{secrets.token_hex(2)}"

    # -- practitioners ------------------------------------------------------------------
    def for_requirements(self, *requirements: str) -> World:
        """The same world (client, admin, practitioners) blaming ``requirements`` when the target refuses."""
        return World(
            self.context, self.client, requirements=requirements, pool=self._pool, admin_token=self.admin.token
        )

    def practitioner(self, role: str = "practitioner", *, fresh: bool = False) -> Practitioner:
        """A practitioner of ``role``; shared within the session unless ``fresh``."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        if role == "admin":
            return self.admin
        if fresh:
            return self._provision(role, fresh=True)
        with _POOL_LOCK:  # checks running on several threads share one account per role
            if role not in self._pool:
                self._provision(role, fresh=False)
            return self._pool[role]

    def _provision(self, role: str, *, fresh: bool) -> Practitioner:
        name = f"ICS Harness {role} {self.unique('p')}"
        body = expect_status(
            self.client.post("/practitioners", token=self.admin.token, json={"name": name, "role": role}),
            201,
            self.requirements,
            "provision a practitioner",
        )
        if not isinstance(body, dict) or not body.get("token") or not body.get("id"):
            fail(self.requirements, "POST /practitioners did not return an id and a token")
        person = Practitioner(id=str(body["id"]), name=name, role=role, token=str(body["token"]))
        if not fresh:
            self._pool[role] = person
        return person

    # -- records ------------------------------------------------------------------------
    def child(self, actor: Practitioner | None = None, **fields: Any) -> dict[str, Any]:
        """Create a child (defaults: a plain name, a DOB, a run-namespaced local ID)."""
        payload: dict[str, Any] = {
            "given_name": "Alex",
            "family_name": "Harness",
            "date_of_birth": "2001-05-14",
            "gender": "not_specified",
            "local_id": self.unique("c"),
        }
        payload.update(fields)
        payload = {k: v for k, v in payload.items() if v is not None}
        if "expected_date_of_birth" in fields and "date_of_birth" not in fields:
            payload.pop("date_of_birth", None)
        who = actor or self.practitioner("practitioner")
        return expect_status(
            self.client.post("/children", token=who.token, json=payload), 201, self.requirements, "create a child"
        )

    def alias(
        self, child_id: str, given_name: str, family_name: str, kind: str = "alias", actor: Practitioner | None = None
    ) -> dict[str, Any]:
        who = actor or self.practitioner("practitioner")
        return expect_status(
            self.client.post(
                f"/children/{child_id}/aliases",
                token=who.token,
                json={"given_name": given_name, "family_name": family_name, "type": kind},
            ),
            201,
            self.requirements,
            "record an alias",
        )

    def allocate(self, child_id: str, practitioner: Practitioner, **fields: Any) -> dict[str, Any]:
        manager = self.practitioner("manager")
        return expect_status(
            self.client.post(
                f"/children/{child_id}/allocations",
                token=manager.token,
                json={"practitioner_id": practitioner.id, **fields},
            ),
            201,
            self.requirements,
            "allocate a practitioner",
        )

    def end_allocation(self, allocation_id: str, **fields: Any) -> dict[str, Any]:
        manager = self.practitioner("manager")
        return expect_status(
            self.client.post(f"/allocations/{allocation_id}/end", token=manager.token, json=fields),
            200,
            self.requirements,
            "end an allocation",
        )

    def case_note(self, child_id: str, author: Practitioner, text: str, *, restricted: bool = False) -> dict[str, Any]:
        return expect_status(
            self.client.post(
                f"/children/{child_id}/case-notes", token=author.token, json={"text": text, "restricted": restricted}
            ),
            201,
            self.requirements,
            "add a case note",
        )

    def referral(
        self,
        child_id: str,
        received_on: str,
        *,
        source: str = "school",
        reason: str = "Concern raised",
        actor: Practitioner | None = None,
    ) -> dict[str, Any]:
        who = actor or self.practitioner("practitioner")
        return expect_status(
            self.client.post(
                "/referrals",
                token=who.token,
                json={"child_id": child_id, "received_on": received_on, "source": source, "reason": reason},
            ),
            201,
            self.requirements,
            "record a referral",
        )

    def assessment(
        self,
        child_id: str,
        start_date: str,
        *,
        kind: str = "initial",
        referral_id: str | None = None,
        actor: Practitioner | None = None,
    ) -> dict[str, Any]:
        who = actor or self.practitioner("practitioner")
        body: dict[str, Any] = {"type": kind, "start_date": start_date}
        if referral_id:
            body["referral_id"] = referral_id
        return expect_status(
            self.client.post(f"/children/{child_id}/assessments", token=who.token, json=body),
            201,
            self.requirements,
            "start an assessment",
        )

    def visit(
        self,
        assessment_id: str,
        visit_date: str,
        *,
        child_seen: bool = True,
        seen_alone: bool | None = None,
        actor: Practitioner | None = None,
    ) -> httpx.Response:
        """Record a visit; returns the raw response (checks judge refusals themselves)."""
        who = actor or self.practitioner("practitioner")
        body: dict[str, Any] = {"visit_date": visit_date, "child_seen": child_seen}
        if seen_alone is not None:
            body["seen_alone"] = seen_alone
        return self.client.post(f"/assessments/{assessment_id}/visits", token=who.token, json=body)

    def complete(
        self, assessment_id: str, completed_on: str | None = None, *, actor: Practitioner | None = None
    ) -> httpx.Response:
        """Attempt completion; returns the raw response."""
        who = actor or self.practitioner("practitioner")
        body: dict[str, Any] = {}
        if completed_on is not None:
            body["completed_on"] = completed_on
        return self.client.post(f"/assessments/{assessment_id}/complete", token=who.token, json=body)

    # -- reading ------------------------------------------------------------------------
    def pages(
        self,
        path: str,
        actor: Practitioner,
        params: dict[str, Any] | None = None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        max_pages: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Yield each page body of a paged collection, judging only well-formedness."""
        for page in range(1, max_pages + 1):
            body = expect_status(
                self.client.get(
                    path, token=actor.token, params={**(params or {}), "page": page, "page_size": page_size}
                ),
                200,
                self.requirements,
                f"GET {path} page {page}",
            )
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                fail(self.requirements, f"GET {path} page {page}: body is not a page ({str(body)[:200]})")
            yield body
            if not body["items"] or page * page_size >= int(body.get("total", 0)):
                return

    def search(self, actor: Practitioner, **params: Any) -> list[dict[str, Any]]:
        """Every child a search returns, across all pages."""
        items: list[dict[str, Any]] = []
        for body in self.pages("/children", actor, params):
            items.extend(body["items"])
        return items

    def inbox(self, actor: Practitioner, *, status: str = "all") -> list[dict[str, Any]]:
        """Every notification in a practitioner's inbox."""
        items: list[dict[str, Any]] = []
        for body in self.pages("/practitioners/me/notifications", actor, {"status": status}):
            items.extend(body["items"])
        return items
