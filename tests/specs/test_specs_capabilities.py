"""Capability statements: schema validation, combination rules, NOT_APPLICABLE decisions."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from conformance.errors import UsageError
from conformance.spec.capabilities import CapabilityStatement, applies, from_about, load_capabilities, merge
from conformance.spec.catalogue import load_catalogue

FULL = {
    "unborn_children": True,
    "shielded_records": True,
    "restricted_notes": True,
    "audit": True,
    "bulk_export": True,
    "seen_alone": False,
    "inter_council_transfer": False,
    "chronology_export": False,
    "notification_latency_seconds": 5,
}


def test_from_about_valid() -> None:
    statement = from_about(FULL)
    assert statement.has("audit") and not statement.has("seen_alone")
    assert statement.get("notification_latency_seconds") == 5
    assert statement.declared["bulk_export"] is True
    with pytest.raises(TypeError):
        statement.declared["audit"] = False  # type: ignore[index]


def test_defaults() -> None:
    statement = from_about({})
    assert not statement.has("unborn_children")
    assert statement.get("notification_latency_seconds") == 60
    assert statement.notification_latency_seconds == 60
    assert statement.get("notification_latency_seconds", 10) == 10
    assert statement.get("audit") is False


def test_unknown_name_in_code_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown capability 'audits'"):
        CapabilityStatement({}).has("audits")


@pytest.mark.parametrize(
    ("about", "fragment"),
    [
        ({"audit": "yes"}, "field 'audit': 'yes' is not of type 'boolean'"),
        ({"notification_latency_seconds": 3601}, "field 'notification_latency_seconds'"),
        ({"notification_latency_seconds": -1}, "field 'notification_latency_seconds'"),
        ({"notification_latency_seconds": 1.5}, "field 'notification_latency_seconds'"),
        ({"notification_latency_seconds": True}, "field 'notification_latency_seconds'"),
        ({"telepathy": True}, "field 'telepathy': unknown capability"),
    ],
)
def test_from_about_invalid(about: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        from_about(about)
    assert "target /about capabilities" in str(info.value)
    assert fragment in str(info.value)


def test_not_a_mapping() -> None:
    with pytest.raises(UsageError, match="expected a mapping"):
        from_about(["audit"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("declared", "pair"),
    [
        ({"chronology_export": True, "bulk_export": False}, ("chronology_export", "bulk_export")),
        ({"inter_council_transfer": True}, ("inter_council_transfer", "bulk_export")),
        ({"shielded_records": True, "audit": False}, ("shielded_records", "audit")),
    ],
)
def test_combination_rules(declared: dict, pair: tuple[str, str]) -> None:
    with pytest.raises(UsageError) as info:
        from_about(declared)
    message = str(info.value)
    assert "invalid capability combination" in message
    assert f"'{pair[0]}' requires '{pair[1]}'" in message


def test_combinations_ok() -> None:
    from_about({"chronology_export": True, "inter_council_transfer": True, "bulk_export": True})
    from_about({"shielded_records": True, "audit": True})
    from_about({"shielded_records": False, "audit": False, "bulk_export": False})


def test_load_yaml_and_json(tmp_path: Path) -> None:
    yml = tmp_path / "caps.yaml"
    yml.write_text("audit: true\nnotification_latency_seconds: 30\n", encoding="utf-8")
    assert load_capabilities(yml).declared == {"audit": True, "notification_latency_seconds": 30}
    js = tmp_path / "caps.json"
    js.write_text(json.dumps({"bulk_export": False}), encoding="utf-8")
    assert load_capabilities(js).declared == {"bulk_export": False}
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_capabilities(empty).declared == {}


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("bad.yaml", "audit: [true\n", "YAML syntax error at line"),
        ("bad.json", "{audit: true}", "invalid JSON"),
        ("typed.yaml", "audit: maybe\n", "field 'audit'"),
        ("extra.yaml", "audit: true\nfax: true\n", "field 'fax': unknown capability"),
        ("combo.yaml", "shielded_records: true\naudit: false\n", "'shielded_records' requires 'audit'"),
        ("list.yaml", "- audit\n", "expected a mapping"),
    ],
)
def test_load_invalid(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as info:
        load_capabilities(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read capability statement"):
        load_capabilities(tmp_path / "absent.yaml")


def test_partial_override_then_merge(tmp_path: Path) -> None:
    about = from_about({"bulk_export": True, "audit": False})
    override_file = tmp_path / "override.yaml"
    override_file.write_text("chronology_export: true\nnotification_latency_seconds: 120\n", encoding="utf-8")
    override = load_capabilities(override_file)  # partial: bulk_export comes from /about
    merged = merge(about, override)
    assert merged.has("chronology_export") and merged.has("bulk_export")
    assert merged.notification_latency_seconds == 120
    with pytest.raises(UsageError, match="'shielded_records' requires 'audit'"):
        merge(about, CapabilityStatement({"shielded_records": True}))
    with pytest.raises(UsageError, match="'chronology_export' requires 'bulk_export'"):
        merge(from_about({"chronology_export": True, "bulk_export": True}), CapabilityStatement({"bulk_export": False}))


def test_applies_decides_not_applicable() -> None:
    catalogue = load_catalogue()
    none = from_about({})
    assert applies(catalogue.get("ICS-1B-SRCH-001"), none)  # no capability condition
    assert not applies(catalogue.get("ICS-1B-SRCH-008"), none)  # unborn_children
    assert applies(catalogue.get("ICS-1B-SRCH-008"), from_about({"unborn_children": True}))
    every = from_about({name: True for name in FULL if name != "notification_latency_seconds"})
    assert all(applies(r, every) for r in catalogue)


def test_every_catalogue_capability_is_a_known_name() -> None:
    statement = CapabilityStatement({})
    for req in load_catalogue():
        if req.capability:
            statement.has(req.capability)  # raises for unknown names


def test_pickles_for_xdist() -> None:
    statement = from_about(FULL)
    again = pickle.loads(pickle.dumps(statement))
    assert again == statement and again.to_dict() == FULL
