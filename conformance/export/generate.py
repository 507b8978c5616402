"""Deterministic synthetic export generator (valid by construction).

``generate_export(out, children=N, seed=S)`` writes the eight JSON Lines files and a
correct manifest. Data are synthetic: Faker en_GB names (with diacritics, hyphens and
apostrophes mixed in), valid UPNs and NHS numbers (python-stdnum check digits), and
case histories that satisfy every export rule: referrals before assessments, working-day
due dates, a seen visit before each completion, nothing after a date of death, some
unborn and some deceased children. Memory stays flat: records are written as generated.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from faker import Faker

from conformance.domain.identifiers import nhs_check_digit, upn_check_letter
from conformance.domain.workingdays import due_date
from conformance.export.records import RECORD_TYPES

SPEC_VERSION = "2008.1.1"
#: The export's "today": every generated date is on or before it.
AS_OF = date(2008, 9, 30)
_LA_CODES = (202, 204, 306, 330, 341, 350, 373, 800, 825, 850, 873, 926, 938)
_GIVEN_EXTRA = ("Zoë", "Chloé", "Renée", "José", "Siân", "Anaïs", "Björn", "Ífeoma", "Léa", "Mary-Jane", "Seán", "Nóra")
_FAMILY_EXTRA = (
    "O'Brien",
    "O’Connor",
    "Smith-Jones",
    "D'Souza",
    "Brontë",
    "Núñez",
    "Ó Súilleabháin",
    "St. John",
    "Climbié",
    "McAllister-Brown",
)
_SOURCES = ("police", "school", "health visitor", "GP", "family member", "anonymous", "A&E")
_REASONS = (
    "neglect concerns",
    "domestic abuse",
    "school attendance",
    "injury explained inconsistently",
    "parental mental health",
)
_NOTES = (
    "Home visit completed; child appeared well.",
    "Telephone call with school: attendance improving.",
    "Strategy discussion held with police and health.",
    "Mother reports the family has moved address.",
    "Child said they felt safe at home — “it’s fine now”.",
)


def _upn(rng: random.Random) -> str:
    body = f"{rng.choice(_LA_CODES):03d}{rng.randrange(10000):04d}{rng.randrange(100):02d}{rng.randrange(1000):03d}"
    return upn_check_letter(body) + body


def _nhs(rng: random.Random) -> str:
    while True:
        body = f"{rng.randrange(400_000_000, 999_999_999):09d}"
        try:
            return body + nhs_check_digit(body)
        except ValueError:
            continue


def _stamp(day: date, rng: random.Random) -> str:
    moment = datetime(
        day.year, day.month, day.day, rng.randrange(8, 18), rng.randrange(60), rng.randrange(60), tzinfo=UTC
    )
    return moment.isoformat().replace("+00:00", "Z")


class _Writer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = {t: open(directory / f"{t}.jsonl", "wb") for t in RECORD_TYPES}
        self.hashes = {t: hashlib.sha256() for t in RECORD_TYPES}
        self.counts = dict.fromkeys(RECORD_TYPES, 0)
        self.bytes = dict.fromkeys(RECORD_TYPES, 0)
        self.ids = dict.fromkeys(RECORD_TYPES, 0)

    def next_id(self, record_type: str, prefix: str) -> str:
        self.ids[record_type] += 1
        return f"{prefix}{self.ids[record_type]:07d}"

    def write(self, record_type: str, record: dict[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        self.files[record_type].write(line)
        self.hashes[record_type].update(line)
        self.counts[record_type] += 1
        self.bytes[record_type] += len(line)

    def close(self) -> dict[str, Any]:
        for fh in self.files.values():
            fh.close()
        return {
            "spec_version": SPEC_VERSION,
            "generated_at": f"{AS_OF.isoformat()}T23:00:00Z",
            "producer": {"supplier": "ics-conformance", "product": "synthetic export generator", "version": "1"},
            "files": [
                {
                    "path": f"{t}.jsonl",
                    "record_type": t,
                    "count": self.counts[t],
                    "bytes": self.bytes[t],
                    "sha256": self.hashes[t].hexdigest(),
                }
                for t in RECORD_TYPES
            ],
        }


def _write_dir(directory: Path, children: int, seed: int) -> None:
    rng = random.Random(seed)
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    w = _Writer(directory)
    staff = []
    for i in range(max(3, children // 20 + 2)):
        role = "manager" if i % 8 == 0 else ("read_only" if i % 13 == 5 else "practitioner")
        pid = w.next_id("practitioners", "P")
        w.write("practitioners", {"id": pid, "name": fake.name(), "role": role})
        if role != "read_only":
            staff.append(pid)
    first_names = [fake.first_name() for _ in range(400)]
    last_names = [fake.last_name() for _ in range(400)]
    for n in range(children):
        cid = w.next_id("children", "C")
        unborn = rng.random() < 0.03
        gender = rng.choice(("male", "female", "male", "female", "not_known", "not_specified"))
        given = rng.choice(_GIVEN_EXTRA) if rng.random() < 0.08 else rng.choice(first_names)
        family = rng.choice(_FAMILY_EXTRA) if rng.random() < 0.1 else rng.choice(last_names)
        if unborn:
            dob, expected = None, AS_OF + timedelta(days=rng.randrange(10, 200))
            first_event = AS_OF - timedelta(days=rng.randrange(30, 150))
        else:
            dob = date(1992, 1, 1) + timedelta(days=rng.randrange(0, 16 * 365))
            expected = None
            first_event = max(dob, date(2005, 1, 1)) + timedelta(days=rng.randrange(0, 500))
            first_event = min(first_event, AS_OF - timedelta(days=120))
        created = first_event
        last_event = first_event
        # referrals, assessments and visits
        day = first_event
        for _ in range(1 if rng.random() < 0.7 else 2):
            rid = w.next_id("referrals", "R")
            w.write(
                "referrals",
                {
                    "id": rid,
                    "child_id": cid,
                    "received_on": day.isoformat(),
                    "source": rng.choice(_SOURCES),
                    "reason": rng.choice(_REASONS),
                },
            )
            start = day + timedelta(days=rng.randrange(0, 4))
            for kind in ("initial", "core") if rng.random() < 0.4 else ("initial",):
                if start > AS_OF:
                    break
                aid = w.next_id("assessments", "A")
                due = due_date(kind, start)
                complete = start + timedelta(days=rng.randrange(3, 14 if kind == "initial" else 50))
                completed = complete <= AS_OF and rng.random() < 0.85
                seen_day = start + timedelta(days=rng.randrange(0, max(1, (min(complete, AS_OF) - start).days + 1)))
                w.write(
                    "visits",
                    {
                        "id": w.next_id("visits", "V"),
                        "assessment_id": aid,
                        "visit_date": seen_day.isoformat(),
                        "child_seen": True,
                        "seen_alone": rng.random() < 0.5,
                        "recorded_by": rng.choice(staff),
                    },
                )
                last_event = max(last_event, seen_day)
                if rng.random() < 0.4:
                    extra = start + timedelta(days=rng.randrange(0, max(1, (min(complete, AS_OF) - start).days + 1)))
                    w.write(
                        "visits",
                        {
                            "id": w.next_id("visits", "V"),
                            "assessment_id": aid,
                            "visit_date": extra.isoformat(),
                            "child_seen": False,
                            "seen_alone": None,
                            "recorded_by": rng.choice(staff),
                        },
                    )
                w.write(
                    "assessments",
                    {
                        "id": aid,
                        "child_id": cid,
                        "referral_id": rid,
                        "type": kind,
                        "start_date": start.isoformat(),
                        "due_date": due.isoformat(),
                        "status": "completed" if completed else "open",
                        "completed_on": complete.isoformat() if completed else None,
                        "authorised_by": rng.choice(staff) if completed else None,
                    },
                )
                last_event = max(last_event, start)
                if not completed:
                    break
                start = complete + timedelta(days=1)
                last_event = max(last_event, complete)
            day = min(AS_OF, last_event + timedelta(days=rng.randrange(1, 60)))
        # allocations, aliases, case notes
        alloc_start = first_event
        for i in range(rng.choice((1, 1, 2))):
            end = alloc_start + timedelta(days=rng.randrange(20, 200)) if i == 0 and rng.random() < 0.3 else None
            if end is not None and end > AS_OF:
                end = None
            w.write(
                "allocations",
                {
                    "id": w.next_id("allocations", "AL"),
                    "child_id": cid,
                    "practitioner_id": rng.choice(staff),
                    "start_date": alloc_start.isoformat(),
                    "end_date": end.isoformat() if end else None,
                },
            )
            if end is None:
                break
            alloc_start = end
        if rng.random() < 0.3:
            w.write(
                "aliases",
                {
                    "id": w.next_id("aliases", "AK"),
                    "child_id": cid,
                    "given_name": rng.choice(first_names),
                    "family_name": rng.choice(last_names),
                    "type": rng.choice(("alias", "previous", "known_as")),
                },
            )
        for _ in range(rng.randrange(2, 7)):
            when = first_event + timedelta(days=rng.randrange(0, max(1, (AS_OF - first_event).days)))
            w.write(
                "case_notes",
                {
                    "id": w.next_id("case_notes", "N"),
                    "child_id": cid,
                    "author_id": rng.choice(staff),
                    "text": rng.choice(_NOTES) + " " + fake.sentence(nb_words=rng.randrange(4, 14)),
                    "restricted": rng.random() < 0.1,
                    "created_at": _stamp(when, rng),
                },
            )
        death = None
        if not unborn and rng.random() < 0.02:
            death = min(AS_OF, last_event + timedelta(days=rng.randrange(1, 90)))
        w.write(
            "children",
            {
                "id": cid,
                "local_id": f"LA-{seed}-{n:07d}",
                "given_name": given,
                "family_name": family,
                "date_of_birth": dob.isoformat() if dob else None,
                "expected_date_of_birth": expected.isoformat() if expected else None,
                "gender": gender,
                "date_of_death": death.isoformat() if death else None,
                "upn": _upn(rng) if not unborn and rng.random() < 0.8 else None,
                "nhs_number": _nhs(rng) if not unborn and rng.random() < 0.9 else None,
                "postcode": fake.postcode() if rng.random() < 0.9 else None,
                "shielded": rng.random() < 0.02,
                "created_at": _stamp(created, rng),
                "updated_at": _stamp(max(created, last_event), rng),
            },
        )
    manifest = w.close()
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")


def write_manifest(directory: Path) -> None:
    """Rewrite ``manifest.json`` of an export directory to match its record files."""
    files = []
    for t in RECORD_TYPES:
        p = directory / f"{t}.jsonl"
        if not p.exists():
            continue
        data = p.read_bytes()
        count = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)  # lines
        files.append(
            {
                "path": p.name,
                "record_type": t,
                "count": count,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest_path = directory / "manifest.json"
    base = (
        orjson.loads(manifest_path.read_bytes())
        if manifest_path.exists()
        else {
            "spec_version": SPEC_VERSION,
            "generated_at": f"{AS_OF.isoformat()}T23:00:00Z",
            "producer": {"supplier": "ics-conformance", "product": "synthetic export generator", "version": "1"},
        }
    )
    base["files"] = files
    manifest_path.write_bytes(orjson.dumps(base, option=orjson.OPT_INDENT_2) + b"\n")


def generate_export(output: str | Path, *, children: int, seed: int, zip: bool = False) -> Path:
    """Write a valid synthetic export of ``children`` children into ``output``.

    With ``zip=True`` ``output`` is the ``.zip`` file to write; otherwise a directory
    (created; existing record files are overwritten). Same ``children`` and ``seed`` give
    byte-identical files.
    """
    if children < 0:
        raise ValueError("children must be >= 0")
    out = Path(output)
    if not zip:
        out.mkdir(parents=True, exist_ok=True)
        _write_dir(out, children, seed)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ics-export-", dir=out.parent) as tmp:
        _write_dir(Path(tmp), children, seed)
        partial = out.with_suffix(out.suffix + ".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for name in ["manifest.json", *(f"{t}.jsonl" for t in RECORD_TYPES)]:
                info = zipfile.ZipInfo(name, date_time=(2008, 9, 30, 23, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o100644 << 16
                with open(Path(tmp) / name, "rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        partial.replace(out)
    return out
