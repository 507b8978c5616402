"""The phase 1C faults of the reference service, as plain data merged into :data:`~conformance.reference.faults.FAULTS`.

Each entry is ``(name, area, targets, description, collateral)`` in the registry's own
notation (IDs without the ``ICS-`` prefix). A transfer fault bends the sending side (the
package) or the receiving side (the import); in a pair run the checks blame the side the
fault sits on, whichever of the two references it is put on.
"""

from __future__ import annotations

PHASE_1C_FAULTS: tuple[tuple[str, str, str, str, str], ...] = (
    # transfer: the sending side
    (
        "transfer-drops-restricted-flag",
        "transfer",
        "1C-XFER-002",
        "the transfer package gives every case note restricted false",
        "",
    ),
    (
        "transfer-omits-ended-allocations",
        "transfer",
        "1C-XFER-002",
        "the transfer package leaves out the child's ended allocations",
        "",
    ),
    (
        "transfer-includes-other-child",
        "transfer",
        "1C-XFER-001",
        "the transfer package also holds the previously created child and its aliases",
        "",
    ),
    (
        "transfer-package-for-practitioners",
        "transfer",
        "1C-XFER-005",
        "any role may take a transfer package (restricted text goes to practitioners)",
        "",
    ),
    # transfer: the receiving side
    ("import-loses-aliases", "transfer", "1C-XFER-003", "an import stores no aliases", ""),
    (
        "import-loses-visits",
        "transfer",
        "1C-XFER-003",
        "an import stores no visits",
        "1A-EXP-008",
    ),
    (
        "import-accepts-invalid-package",
        "transfer",
        "1C-XFER-004",
        "an import checks only that records are well formed, none of the export or package rules",
        "1A-EXP-004, 1A-EXP-005, 1A-EXP-006, 1A-EXP-007, 1A-EXP-008",
    ),
    (
        "import-unrestricts-notes",
        "transfer",
        "1C-XFER-003, 1C-XFER-005",
        "imported case notes are stored with restricted false",
        "",
    ),
    (
        "import-unshields",
        "transfer",
        "1C-XFER-003, 1C-XFER-006",
        "an imported child is stored with shielded false",
        "",
    ),
    # audit
    ("audit-misses-searches", "audit", "1C-AUD-001", "searches are not audited", ""),
    ("audit-misses-note-reads", "audit", "1C-AUD-001", "reads of case notes are not audited", ""),
    ("audit-deletable", "audit", "1C-AUD-003", "DELETE /audit/{id} removes an audit entry (204)", ""),
    ("audit-editable", "audit", "1C-AUD-003", "PATCH /audit/{id} changes an audit entry's action", ""),
    ("export-drops-audit", "audit", "1C-AUD-002", "the bulk export has no audit.jsonl", ""),
    (
        "export-audit-orphans",
        "audit",
        "1C-AUD-002",
        "audit entries are exported naming a practitioner that is not exported",
        "",
    ),
    ("audit-misses-transfer-out", "audit", "1C-AUD-004", "producing a transfer package is not audited", ""),
    ("audit-misses-transfer-in", "audit", "1C-AUD-004", "importing a transfer package is not audited", ""),
    # shielding
    (
        "shielded-forbidden-not-hidden",
        "shielding",
        "1C-SHLD-001, 1C-XFER-006",
        "a hidden shielded child is answered 403 FORBIDDEN (so it is known to exist), imported ones too",
        "",
    ),
    (
        "shielded-attempt-not-audited",
        "shielding",
        "1C-SHLD-001",
        "a refused read of a shielded child is not audited",
        "",
    ),
    (
        "shielded-ended-allocation-sees",
        "shielding",
        "1C-SHLD-001",
        "GET /children/{id} counts ended allocations as current for shielded children",
        "",
    ),
    # visits (seen alone)
    ("seen-alone-not-recorded", "visits", "1C-SEEN-001", "seen_alone is stored as null whatever is sent", ""),
    (
        "seen-alone-unseen-accepted",
        "visits",
        "1C-SEEN-001",
        "seen_alone true is accepted with child_seen false",
        "1A-EXP-003",
    ),
    (
        "not-alone-reason-optional",
        "visits",
        "1C-SEEN-002",
        "a child seen but not alone may be recorded without a reason",
        "",
    ),
    ("not-alone-reason-dropped", "visits", "1C-SEEN-002", "the reason is accepted but never stored", ""),
    # chronology
    (
        "chronology-newest-first",
        "chronology",
        "1C-CHRON-001, 1C-CHRON-002, 1C-XFER-001",
        "chronologies are listed newest first (API, export and transfer packages)",
        "",
    ),
    (
        "chronology-misses-seen-visits",
        "chronology",
        "1C-CHRON-001, 1C-CHRON-002, 1C-XFER-001",
        "child_seen events are left out of chronologies",
        "",
    ),
    (
        "chronology-links-assessment-for-visits",
        "chronology",
        "1C-CHRON-002, 1C-CHRON-003, 1C-XFER-001",
        "child_seen events name the visit's assessment as their source",
        "",
    ),
)
