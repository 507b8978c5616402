"""Named faults of the reference service, and the requirements each should make FAIL.

A fault is a small, local behavioural change switched on at start-up. The fault-proof
tests run the whole suite against the reference with each fault and expect exactly
``targets`` to FAIL, plus at most the fault's ``collateral`` (export requirements broken by
records the fault let in, when the export is taken after they were created) — so this
registry is the contract between the reference and the checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conformance.errors import UsageError
from conformance.reference.faults_1c import PHASE_1C_FAULTS


@dataclass(frozen=True)
class Fault:
    """One injectable fault: its name, capability area, effect and targeted requirements."""

    name: str
    area: str
    description: str
    targets: tuple[str, ...]
    #: requirements that may also FAIL, depending on the order the checks run in: the bad
    #: records this fault lets a check create reach the bulk export if it is taken later
    collateral: tuple[str, ...] = ()


def _ids(text: str) -> tuple[str, ...]:
    return tuple(f"ICS-{t.strip()}" for t in text.split(",") if t.strip())


def _f(name: str, area: str, targets: str, description: str, *, collateral: str = "") -> Fault:
    return Fault(name, area, description, _ids(targets), _ids(collateral))


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        # records
        _f(
            "child-read-back-drops-postcode",
            "records",
            "1A-REC-001, 1A-REC-007",
            "children are read back without their postcode",
        ),
        _f(
            "upn-no-check-letter",
            "records",
            "1A-REC-002",
            "accepts a UPN whose check letter is wrong",
            collateral="1A-EXP-007",
        ),
        _f(
            "nhs-no-modulus",
            "records",
            "1A-REC-003",
            "accepts an NHS number failing modulus 11",
            collateral="1A-EXP-007",
        ),
        _f(
            "records-accepts-death-before-birth",
            "records",
            "1A-REC-004",
            "accepts a date of death before the date of birth",
        ),
        _f("aliases-not-listed", "records", "1A-REC-005", "GET aliases returns nothing (search still uses them)"),
        _f(
            "unborn-requires-dob",
            "records",
            "1A-REC-006, 1B-SRCH-008",
            "refuses a child with only an expected date of birth",
        ),
        _f(
            "local-id-duplicates-allowed",
            "records",
            "1A-REC-008",
            "accepts a second child with the same local ID",
            collateral="1A-EXP-004",
        ),
        _f("patch-ignored", "records", "1A-REC-007", "PATCH answers 200 but changes nothing"),
        # referrals
        _f("referral-accepts-future-date", "referrals", "1A-REF-002", "accepts a referral received in the future"),
        _f("referral-loses-source", "referrals", "1A-REF-001", "stores every referral's source as 'other'"),
        # allocations
        _f(
            "allocations-not-listed",
            "allocations",
            "1A-ALLOC-001",
            "GET allocations returns nothing (notifications unaffected)",
        ),
        _f(
            "allocation-end-not-recorded",
            "allocations",
            "1A-ALLOC-002",
            "ending answers 200 but end_date stays null in responses",
        ),
        _f(
            "allocation-unknown-practitioner",
            "allocations",
            "1A-ALLOC-003",
            "accepts an allocation to an unknown practitioner",
            collateral="1A-EXP-005",
        ),
        # case notes
        _f("case-notes-newest-first", "case-notes", "1A-NOTE-001", "lists case notes newest first"),
        _f("restricted-note-visible", "case-notes", "1A-NOTE-002", "shows restricted note text to every reader"),
        # timescales
        _f(
            "timescale-calendar-days",
            "timescales",
            "1A-TIME-001, 1A-TIME-002, 1A-TIME-003, 1A-EXP-008",
            "due dates in calendar days",
        ),
        _f(
            "timescale-ignores-bank-holidays",
            "timescales",
            "1A-TIME-003, 1A-EXP-008",
            "working days skip weekends only",
        ),
        _f(
            "timescale-wrong-holiday-year",
            "timescales",
            "1A-TIME-003, 1A-EXP-008",
            "uses 2007's bank holiday dates in every year",
        ),
        _f("overdue-never", "timescales", "1A-TIME-004", "overdue is always false"),
        # assessments
        _f(
            "assessment-accepts-future-start",
            "assessments",
            "1A-ASMT-001",
            "accepts an assessment starting in the future",
        ),
        _f("gating-allows-second-open", "assessments", "1A-ASMT-002", "allows a second open assessment for a child"),
        _f("visits-not-listed", "assessments", "1A-ASMT-003", "assessments are returned with no visits"),
        # search
        _f("search-accent-sensitive", "search", "1B-SRCH-001", "name search does not strip accents"),
        _f("search-case-sensitive", "search", "1B-SRCH-001", "name search is case-sensitive"),
        _f("search-exact-names-only", "search", "1B-SRCH-002", "names match only in full, not by prefix"),
        _f("search-ignores-aliases", "search", "1B-SRCH-003", "search looks at current names only"),
        _f("search-ignores-dob", "search", "1B-SRCH-004, 1B-SRCH-010", "the date-of-birth criterion is ignored"),
        _f("search-postcode-exact", "search", "1B-SRCH-005", "postcodes compared without normalising"),
        _f("search-ignores-nhs-number", "search", "1B-SRCH-006", "the NHS number criterion matches nothing"),
        _f("search-includes-deceased", "search", "1B-SRCH-007", "deceased children included by default"),
        _f("search-ignores-unborn", "search", "1B-SRCH-008", "date-of-birth search ignores expected dates"),
        _f("search-drops-last-page", "search", "1B-SRCH-009", "the last page of results comes back empty"),
        _f(
            "search-repeats-across-pages",
            "search",
            "1B-SRCH-009",
            "each page after the first repeats the previous page's last result",
        ),
        _f("search-substring-overmatch", "search", "1B-SRCH-010", "names match anywhere inside, not by prefix"),
        _f("search-shows-shielded", "search", "1B-SRCH-011", "shielded children shown to everyone"),
        # notifications
        _f(
            "notify-missing-co-allocated",
            "notifications",
            "1B-NOTIF-001",
            "only the earliest current allocation is notified",
        ),
        _f("notify-author", "notifications", "1B-NOTIF-002", "the author is notified of their own note"),
        _f(
            "notify-ended-allocation",
            "notifications",
            "1B-NOTIF-003",
            "practitioners whose allocation ended are still notified",
        ),
        _f(
            "notify-ended-before-today",
            "notifications",
            "1B-NOTIF-003",
            "only an allocation ending today counts as ended: one ended on an earlier date is still notified",
        ),
        _f(
            "notify-unrelated",
            "notifications",
            "1B-NOTIF-002, 1B-NOTIF-003",
            "every practitioner is notified of every note",
        ),
        _f("notify-duplicate", "notifications", "1B-NOTIF-004", "each notification is raised twice"),
        _f(
            "notify-delayed",
            "notifications",
            "1B-NOTIF-005",
            "notifications appear after 6 s though /about declares 2 s",
        ),
        _f(
            "restricted-note-leaks-text",
            "notifications",
            "1B-NOTIF-006",
            "restricted notes' notifications carry the text",
        ),
        _f(
            "notify-preview-whole-text",
            "notifications",
            "1A-API-002",
            "a notification's preview is the note's whole text, not cut at 100 characters",
        ),
        _f(
            "notify-ack-lost",
            "notifications",
            "1B-NOTIF-007",
            "a new note on the child clears earlier acknowledgements",
        ),
        # gating
        _f(
            "gating-off",
            "gating",
            "1B-GATE-001, 1B-GATE-002, 1B-GATE-003, 1B-GATE-004, 1B-GATE-005",
            "completion never checks that the child was seen",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-accepts-future-seen",
            "gating",
            "1B-GATE-003",
            "future-dated seen visits are accepted and count",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-ignores-start-date",
            "gating",
            "1B-GATE-002",
            "visits before the start are accepted and count",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-ignores-completion-date",
            "gating",
            "1B-GATE-004",
            "visits after the completion date count",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-counts-unseen-visits",
            "gating",
            "1B-GATE-005",
            "a visit where the child was not seen counts",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-generic-error-code",
            "gating",
            "1B-GATE-001",
            "refusal says VALIDATION_ERROR instead of CHILD_NOT_SEEN",
        ),
        _f(
            "gating-completes-despite-refusal",
            "gating",
            "1B-GATE-006",
            "a refused completion still marks the assessment completed",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        # access
        _f("auth-ignored", "access", "1B-ACC-001", "requests without a valid token act as admin"),
        _f("auth-accepts-any-token", "access", "1B-ACC-001", "any non-empty bearer token acts as admin"),
        _f("rights-ignored", "access", "1B-ACC-002", "roles are not enforced"),
        _f("audit-misses-views", "access", "1B-ACC-003", "viewing a child is not audited"),
        # export
        _f("export-drops-aliases", "export", "1A-EXP-009", "aliases.jsonl is empty (manifest agrees)"),
        _f("export-bad-manifest-count", "export", "1A-EXP-002", "manifest counts one record too many for children"),
        _f("export-bad-hash", "export", "1A-EXP-002", "manifest sha256 of children.jsonl is wrong"),
        _f(
            "export-bad-date-format",
            "export",
            "1A-EXP-003, 1A-EXP-009",
            "children's dates exported as DD/MM/YYYY (so they differ from the API)",
        ),
        _f(
            "export-duplicate-ids",
            "export",
            "1A-EXP-004, 1A-REC-008",
            "the first child with a local ID is exported twice (the local ID too)",
        ),
        _f("export-orphan-case-notes", "export", "1A-EXP-005", "case notes point at a child that does not exist"),
        _f(
            "export-shifts-visit-dates",
            "export",
            "1A-EXP-006, 1A-EXP-008, 1A-EXP-009",
            "seen visits exported 60 days earlier (before their assessment's start, so completions look unseen)",
        ),
        _f("export-bad-check-digits", "export", "1A-EXP-007, 1A-EXP-009", "UPN check letters altered in the export"),
        _f(
            "export-unavailable",
            "export",
            "1A-EXP-001, 1A-API-001",
            "GET /export answers 501 (a 5xx, so also a server error)",
        ),
        # contract
        _f("server-error-on-unknown-child", "contract", "1A-API-001", "GET /children/{unknown} answers 500"),
        _f("about-schema-violation", "contract", "1A-API-002, 1A-API-004", "/about gives spec_versions as a string"),
        _f(
            "accepts-invalid-input",
            "contract",
            "1A-API-003",
            "unknown gender values are accepted and stored (so they also reach the bulk export)",
            collateral="1A-EXP-003",
        ),
        # -- the cases of specs/test-design (each breaks one case of one requirement) ----------------
        # records
        _f(
            "upn-stored-as-written",
            "records",
            "1A-REC-001",
            "a valid UPN is stored as written (lower case, spaces), not compacted",
            collateral="1A-EXP-003",  # the export then carries the UPN as written, off the export schema
        ),
        _f(
            "gender-not-specified-read-as-not-known",
            "records",
            "1A-REC-001",
            "children with gender not_specified are read back as not_known",
        ),
        _f("names-truncated", "records", "1A-REC-001", "names are read back cut to 64 characters"),
        _f(
            "upn-check-letter-table-short",
            "records",
            "1A-REC-002",
            "a check-letter table one letter short: valid UPNs with check letter Z are refused",
        ),
        _f(
            "upn-final-letter-refused",
            "records",
            "1A-REC-002",
            "temporary UPNs (a letter as the last character) are refused",
        ),
        _f(
            "upn-validated-before-compacting",
            "records",
            "1A-REC-002",
            "a valid UPN written in lower case or with spaces is refused",
        ),
        _f(
            "names-any-character",
            "records",
            "1A-API-003",
            "the Name pattern is not enforced: names holding digits, symbols or emoji are accepted",
        ),
        _f(
            "upn-length-unchecked",
            "records",
            "1A-REC-002",
            "a UPN of 14 characters whose first 13 are valid is accepted",
            collateral="1A-EXP-003, 1A-EXP-007",
        ),
        _f(
            "upn-length-by-letter-only",
            "records",
            "1A-REC-002",
            "no length check: a UPN of 12 or 14 characters is accepted when its check letter fits the rest",
            collateral="1A-EXP-003, 1A-EXP-007",
        ),
        _f(
            "nhs-check-eleven-not-zero",
            "records",
            "1A-REC-003",
            "modulus 11 result 11 not mapped to check digit 0: valid numbers ending in 0 are refused",
        ),
        _f(
            "nhs-length-by-check-digit-only",
            "records",
            "1A-REC-003",
            "no length check: an NHS number of 9 to 11 digits is accepted when its modulus 11 sum fits",
            collateral="1A-EXP-003, 1A-EXP-007",
        ),
        _f(
            "nhs-length-unchecked",
            "records",
            "1A-REC-003",
            "an NHS number of 11 digits whose first 10 are valid is accepted",
            collateral="1A-EXP-003, 1A-EXP-007",
        ),
        _f(
            "records-today-is-future",
            "records",
            "1A-REC-004",
            "a date of birth or of death of today is refused as in the future",
        ),
        _f(
            "records-death-on-birth-day-refused",
            "records",
            "1A-REC-004",
            "a death on the day of birth is refused as before the birth",
        ),
        _f(
            "records-patch-checks-sent-dates-only",
            "records",
            "1A-REC-004",
            "a PATCH checks the date order only when it sends the date of death",
        ),
        _f(
            "aliases-listed-one-per-type",
            "records",
            "1A-REC-005",
            "the alias list keeps only the latest name of each type",
        ),
        _f(
            "local-id-clashes-with-itself",
            "records",
            "1A-REC-007",
            "a PATCH repeating the child's own local ID is refused 409 DUPLICATE_LOCAL_ID",
        ),
        # referrals
        _f(
            "referral-local-authority-as-other",
            "referrals",
            "1A-REF-001",
            "a referral from the local authority is stored with source other",
        ),
        _f("referral-reason-truncated", "referrals", "1A-REF-001", "referral reasons are stored cut to 255 characters"),
        _f("referral-accepts-tomorrow", "referrals", "1A-REF-002", "a referral received tomorrow is accepted"),
        _f(
            "referral-refuses-today", "referrals", "1A-REF-002", "a referral received today is refused as in the future"
        ),
        # gating
        _f(
            "gating-counts-other-assessments-visits",
            "gating",
            "1B-GATE-001",
            "a seen visit recorded on another assessment of the same child counts",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-managers-exempt",
            "gating",
            "1B-GATE-001",
            "managers and admins complete assessments without the child seen",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-latest-visit-only",
            "gating",
            "1B-GATE-001",
            "only the most recent visit is judged: an earlier qualifying visit is overlooked",
        ),
        _f(
            "gating-stops-at-unseen",
            "gating",
            "1B-GATE-001",
            "the gate stops at the first visit that did not see the child: a seen visit recorded after it is overlooked",
        ),
        _f(
            "gating-start-off-by-one",
            "gating",
            "1B-GATE-002",
            "a seen visit the day before the start is accepted and counts",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        _f(
            "gating-accepts-tomorrow",
            "gating",
            "1B-GATE-003",
            "visits and completions dated tomorrow are accepted, so a seen visit tomorrow counts",
            collateral="1A-EXP-006, 1A-EXP-008",
        ),
        # assessments
        _f("assessment-accepts-tomorrow", "assessments", "1A-ASMT-001", "an assessment starting tomorrow is accepted"),
        _f(
            "assessment-refuses-today",
            "assessments",
            "1A-ASMT-001",
            "an assessment starting today is refused as in the future",
        ),
        _f(
            "assessment-referral-off-by-one",
            "assessments",
            "1A-ASMT-001",
            "an assessment starting the day before its referral was received is accepted",
            collateral="1A-EXP-006",
        ),
        _f("visits-today-refused", "assessments", "1A-ASMT-003", "a visit dated today is refused as in the future"),
        _f(
            "visits-listed-by-child",
            "assessments",
            "1A-ASMT-003",
            "an assessment lists the visits of every assessment of its child",
        ),
        # timescales
        _f(
            "timescale-no-substitute-days",
            "timescales",
            "1A-TIME-003",
            "substitute bank holidays (e.g. Boxing Day observed on Monday 28 December 2009) are working days",
            collateral="1A-EXP-008",
        ),
        _f(
            "timescale-no-one-off-holidays",
            "timescales",
            "1A-TIME-003",
            "one-off bank holidays (29 April 2011, 5 June 2012) are working days",
            collateral="1A-EXP-008",
        ),
        _f(
            "timescale-holiday-start-shifted",
            "timescales",
            "1A-TIME-003",
            "an assessment started on a bank holiday counts from the next working day as day 0",
            collateral="1A-EXP-008",
        ),
        _f("overdue-grace-day", "timescales", "1A-TIME-004", "completed the day after the due date is not overdue"),
        _f("overdue-open-always", "timescales", "1A-TIME-004", "every open assessment is overdue"),
        _f("overdue-on-due-day", "timescales", "1A-TIME-004", "an open assessment is overdue on its due date"),
        # allocations
        _f(
            "allocation-end-ends-all-of-practitioner",
            "allocations",
            "1A-ALLOC-002",
            "ending one allocation ends every current allocation of that practitioner to the child",
        ),
        _f(
            "allocation-end-twice-overwrites",
            "allocations",
            "1A-ALLOC-002",
            "ending an ended allocation again replaces its end date",
        ),
        # case notes
        _f("case-note-text-truncated", "case-notes", "1A-NOTE-001", "case note text is stored cut to 4000 characters"),
        _f(
            "restricted-note-visible-to-allocated",
            "case-notes",
            "1A-NOTE-002",
            "restricted note text is shown to practitioners allocated to the child",
        ),
        # notifications
        _f(
            "notify-practitioner-role-only",
            "notifications",
            "1B-NOTIF-001",
            "only users with role practitioner are notified (an allocated manager is not)",
        ),
        _f(
            "notify-only-practitioner-authors",
            "notifications",
            "1B-NOTIF-001",
            "notes written by managers and admins notify nobody",
        ),
        _f(
            "notify-skips-once-ended",
            "notifications",
            "1B-NOTIF-001",
            "a practitioner with an ended allocation to the child is never notified, even when allocated again",
        ),
        _f(
            "notify-author-excluded-once",
            "notifications",
            "1B-NOTIF-002",
            "the author is removed from the recipients once: an author allocated twice is notified",
        ),
        _f("notify-all-managers", "notifications", "1B-NOTIF-003", "every manager and admin is notified of every note"),
        _f(
            "notify-once-per-allocation",
            "notifications",
            "1B-NOTIF-004",
            "one notification per current allocation: a practitioner allocated twice gets two",
        ),
        _f(
            "restricted-preview-for-managers",
            "notifications",
            "1B-NOTIF-006",
            "a restricted note's notification carries the preview for managers and admins",
        ),
        _f(
            "ack-by-managers",
            "notifications",
            "1B-NOTIF-007",
            "managers and admins may acknowledge anyone's notification",
        ),
        _f(
            "ack-twice-overwrites-time", "notifications", "1B-NOTIF-007", "acknowledging again replaces acknowledged_at"
        ),
        # access
        _f("auth-missing-on-referrals", "access", "1B-ACC-001", "GET /referrals/{id} answers without a token"),
        _f(
            "rights-assessments-unchecked",
            "access",
            "1B-ACC-002",
            "starting assessments, recording visits and completing are open to read_only users",
        ),
        _f("rights-managers-create-practitioners", "access", "1B-ACC-002", "managers may create practitioners"),
        _f(
            "rights-allocation-denied-to-practitioners-only",
            "access",
            "1B-ACC-002",
            "allocating and ending allocations refused to practitioners only: read_only users may allocate",
        ),
        _f("audit-skips-privileged-views", "access", "1B-ACC-003", "views by managers and admins are not audited"),
        _f(
            "audit-views-deduplicated",
            "access",
            "1B-ACC-003",
            "a practitioner's view of a child is audited once, not each time",
        ),
        # search
        _f(
            "search-lowercase-not-casefold",
            "search",
            "1B-SRCH-001",
            "names lower-cased instead of case-folded: Strasse does not find Straße",
        ),
        _f(
            "search-nfd-not-nfkd",
            "search",
            "1B-SRCH-001",
            "names decomposed with NFD, not NFKD: compatibility characters (fullwidth letters) stay apart",
        ),
        _f(
            "search-aliases-not-folded",
            "search",
            "1B-SRCH-001",
            "alias names only lower-cased: accents and apostrophes not folded on alias records",
        ),
        _f(
            "search-two-parts-only",
            "search",
            "1B-SRCH-002",
            "only the first two parts of a name are kept as search keys (two part columns)",
        ),
        _f("search-aliases-whole-only", "search", "1B-SRCH-002", "alias names match only as whole names"),
        _f(
            "search-aliases-need-family-name",
            "search",
            "1B-SRCH-003",
            "aliases are searched only when a family name is given",
        ),
        _f(
            "search-dob-within-a-day", "search", "1B-SRCH-004", "the date of birth matches the day before and after too"
        ),
        _f("search-gender-alone-refused", "search", "1B-SRCH-004", "gender as the only criterion answers 422"),
        _f(
            "search-local-id-symbols-refused",
            "contract",
            "1A-API-002",
            "a local ID search criterion holding anything but letters, digits, hyphens and spaces answers 422 "
            "VALIDATION_ERROR (the document allows any string of 1 to 100 characters)",
        ),
        _f("search-postcode-prefix", "search", "1B-SRCH-005", "a postcode criterion matches every postcode it begins"),
        _f("search-local-id-raw", "search", "1B-SRCH-006", "local ID criteria compared as written, not compacted"),
        _f(
            "search-alias-includes-deceased",
            "search",
            "1B-SRCH-007",
            "a deceased child matched through an alias is returned by default",
        ),
        _f(
            "search-identifier-includes-deceased",
            "search",
            "1B-SRCH-007",
            "a deceased child matched by UPN, NHS number or local ID is returned by default",
        ),
        _f(
            "search-full-last-page-dropped",
            "search",
            "1B-SRCH-009",
            "the last page comes back empty when the total is a multiple of the page size",
        ),
        _f(
            "search-alias-matches-duplicated",
            "search",
            "1B-SRCH-009",
            "a child is returned (and counted) once per matching name record",
        ),
        _f(
            "search-alias-skips-criteria",
            "search",
            "1B-SRCH-010",
            "a child matched through an alias is returned whatever its date of birth, gender and postcode",
        ),
        _f(
            "search-keys-truncated",
            "search",
            "1B-SRCH-010",
            "search keys stored cut to 40 characters: a longer whole name finds nothing",
        ),
        _f("search-shielded-visible-to-managers", "search", "1B-SRCH-011", "shielded children shown to every manager"),
        _f(
            "search-shielded-any-allocation",
            "search",
            "1B-SRCH-011",
            "shielded children shown to anyone currently allocated to some child",
        ),
        _f(
            "search-shielded-once-anyone-allocated",
            "search",
            "1B-SRCH-011",
            "a shielded child shown to everyone once anybody is allocated to it",
        ),
        _f(
            "search-alias-shows-shielded",
            "search",
            "1B-SRCH-011",
            "a shielded child matched through an alias is shown to everyone",
        ),
        _f(
            "search-identifier-shows-shielded",
            "search",
            "1B-SRCH-011",
            "a shielded child matched by UPN, NHS number or local ID is shown to everyone",
        ),
    )
}


# phase 1C (conformance/reference/faults_1c.py)
FAULTS.update(
    {name: _f(name, area, targets, text, collateral=also) for name, area, targets, text, also in PHASE_1C_FAULTS}
)


def proving_phase(name: str) -> str:
    """The phase fault ``name`` is proven in: the latest phase among its targets (a 1C fault in a 1C pair run)."""
    from conformance.spec.catalogue import load_catalogue

    catalogue = load_catalogue()
    return max(catalogue.get(rid).phase for rid in FAULTS[name].targets)


def resolve_faults(names: Iterable[str]) -> frozenset[str]:
    """Validate fault names; raise UsageError naming an unknown one and the valid ones."""
    chosen = frozenset(names)
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise UsageError(
            f"unknown reference fault(s): {', '.join(unknown)}; "
            f"see 'ics-conformance serve-reference --list-faults' (valid: {', '.join(sorted(FAULTS))})"
        )
    return chosen
