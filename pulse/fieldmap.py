"""Field mappings: which of a tracker's fields hold story points, the sprint and each DMT field.

Every tracker names these fields its own way (Jira ``customfield_10024``, Azure
``Microsoft.VSTS.Scheduling.StoryPoints``, a ClickUp custom-field uuid). ``pulse source
discover`` reads the tool's field metadata into :class:`FieldCandidate` objects and
:func:`propose` picks one field per canonical name: by the field's schema first (its type,
and the tool's own type key where it has one, such as Jira's ``gh-sprint``), by its name
second. The mappings are stored on the source (``control.sources.field_mappings``); an admin
can override any of them, and rediscovery never replaces an admin's choice. Connectors read
the mapped fields into columns named after the canonical names, so the dbt models never see
a tool's field ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Normalized field types a tool's metadata is translated to.
FIELD_TYPES = ("number", "string", "text", "option", "boolean", "date", "datetime", "url", "user", "sprint", "other")


@dataclass(frozen=True)
class CanonicalField:
    name: str
    description: str
    types: tuple[str, ...]  # acceptable normalized types, best first
    schema_keys: tuple[str, ...] = ()  # the tool's own type/reference keys that identify it outright
    names: tuple[str, ...] = ()  # regular expressions on the display name, best first
    unless: str | None = None  # a name matching this is not this field (e.g. "reason" for the exception flag)


CANONICAL_FIELDS: tuple[CanonicalField, ...] = (
    CanonicalField(
        "story_points",
        "Estimate in story points",
        ("number",),
        schema_keys=(
            "com.pyxis.greenhopper.jira:jsw-story-points",
            "com.atlassian.jpo:jpo-custom-field-original-story-points",
            "Microsoft.VSTS.Scheduling.StoryPoints",
        ),
        names=(r"^story ?points?$", r"story ?points? estimate", r"^estimate$", r"\beffort\b", r"\bpoints\b"),
    ),
    CanonicalField(
        "sprint",
        "The sprint (iteration) the item is planned in",
        ("sprint", "string"),
        schema_keys=("com.pyxis.greenhopper.jira:gh-sprint", "System.IterationPath"),
        names=(r"^sprint$", r"\bsprint\b", r"\biteration\b"),
    ),
    CanonicalField(
        "dmt_ac_quality",
        "Acceptance-criteria quality: incomplete, testable or final",
        ("option", "string"),
        names=(r"acceptance.?criteria.*(quality|status)", r"\bac\b.*quality"),
    ),
    CanonicalField(
        "dmt_unit_test_task",
        "Whether a unit-test task exists for the item",
        ("boolean", "option"),
        names=(r"unit.?test.*task",),
    ),
    CanonicalField(
        "dmt_unit_test_status",
        "Unit testing: not started, in progress, done or exception approved",
        ("option", "string"),
        names=(r"unit.?test(ing|s)?.*status", r"^unit.?testing$"),
    ),
    CanonicalField(
        "dmt_coverage_pct",
        "Unit-test line coverage, percent",
        ("number",),
        names=(r"coverage",),
    ),
    CanonicalField(
        "dmt_pr_links",
        "Links to the pull requests that implement the item",
        ("url", "text", "string"),
        names=(r"pull.?requests?.*links?", r"\bpr\b.*links?", r"pull.?requests?"),
    ),
    CanonicalField(
        "dmt_ci_evidence",
        "Link to the CI run that proves the tests passed",
        ("url", "text", "string"),
        names=(r"\bci\b.*(evidence|link|run)", r"(build|pipeline).*(evidence|link)"),
    ),
    CanonicalField(
        "dmt_reviewer_signoff",
        "The reviewer signed the DMT checklist off",
        ("boolean", "option"),
        names=(r"review(er)?.*(sign.?off|dmt)", r"dmt.*sign.?off"),
    ),
    CanonicalField(
        "dmt_exception_reason",
        "Why the DMT exception was granted",
        ("text", "string"),
        names=(r"exception.*reason", r"reason.*exception"),
    ),
    CanonicalField(
        "dmt_exception_approver",
        "Who approved the DMT exception (an email)",
        ("user", "string"),
        names=(r"exception.*approv", r"approv.*exception"),
    ),
    CanonicalField(
        "dmt_exception_expires",
        "When the DMT exception expires",
        ("date", "datetime"),
        names=(r"exception.*(expir|until|valid)",),
    ),
    CanonicalField(
        "dmt_exception",
        "A DMT exception was approved for the item",
        ("boolean", "option"),
        names=(r"dmt.*exception", r"test.*exception", r"^exception( approved)?$"),
        unless=r"reason|approv|expir|until",
    ),
)
CANONICAL_NAMES = tuple(f.name for f in CANONICAL_FIELDS)
_BY_NAME = {f.name: f for f in CANONICAL_FIELDS}


@dataclass(frozen=True)
class FieldCandidate:
    """One field of a tool, as its metadata describes it."""

    id: str
    name: str
    type: str  # one of FIELD_TYPES
    schema_key: str | None = None  # the tool's own type key (Jira schema.custom, Azure referenceName)
    options: tuple[str, ...] = ()  # drop-down labels, if any


@dataclass(frozen=True)
class Mapping_:
    field_id: str
    field_name: str
    method: str  # schema | name | admin

    def as_json(self) -> dict[str, str]:
        return {"field_id": self.field_id, "field_name": self.field_name, "method": self.method}


@dataclass
class Proposal:
    mappings: dict[str, Mapping_] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def propose(candidates: Iterable[FieldCandidate], existing: Mapping[str, Any] | None = None) -> Proposal:
    """One field per canonical name; ``existing`` mappings set by an admin are kept as they are.

    A canonical field is matched by schema key (exact), else by the first of its name patterns
    that a field of an acceptable type matches; a field serves one canonical name only.
    """
    pool = list(candidates)
    proposal = Proposal()
    taken: set[str] = set()
    for name, value in (existing or {}).items():
        if isinstance(value, Mapping) and value.get("method") == "admin" and name in _BY_NAME:
            proposal.mappings[name] = Mapping_(str(value["field_id"]), str(value.get("field_name", "")), "admin")
            taken.add(str(value["field_id"]))
    for canonical in CANONICAL_FIELDS:
        if canonical.name in proposal.mappings:
            continue
        match = _match(canonical, [c for c in pool if c.id not in taken])
        if match is None:
            proposal.missing.append(canonical.name)
            continue
        candidate, method = match
        proposal.mappings[canonical.name] = Mapping_(candidate.id, candidate.name, method)
        taken.add(candidate.id)
    return proposal


def _match(canonical: CanonicalField, pool: list[FieldCandidate]) -> tuple[FieldCandidate, str] | None:
    for candidate in pool:
        if candidate.schema_key and candidate.schema_key in canonical.schema_keys:
            return candidate, "schema"
    typed = sorted(
        (c for c in pool if c.type in canonical.types),
        key=lambda c: (canonical.types.index(c.type), len(c.name), c.id),
    )
    for pattern in canonical.names:
        regex = re.compile(pattern, re.IGNORECASE)
        for candidate in typed:
            if canonical.unless and re.search(canonical.unless, candidate.name, re.IGNORECASE):
                continue
            if regex.search(candidate.name):
                return candidate, "name"
    return None


def override(existing: Mapping[str, Any], canonical: str, field_id: str, field_name: str = "") -> dict[str, Any]:
    """``existing`` with ``canonical`` mapped to ``field_id`` by an admin (kept by rediscovery)."""
    if canonical not in _BY_NAME:
        known = ", ".join(CANONICAL_NAMES)
        raise ValueError(f"unknown field {canonical!r}; the mappable fields are: {known}")
    out = dict(existing)
    out[canonical] = Mapping_(field_id, field_name, "admin").as_json()
    return out


def field_ids(mappings: Mapping[str, Any] | None) -> dict[str, str]:
    """``{canonical name: tool field id}`` from stored mappings (what connectors need)."""
    out: dict[str, str] = {}
    for name, value in (mappings or {}).items():
        if name in _BY_NAME and isinstance(value, Mapping) and value.get("field_id"):
            out[name] = str(value["field_id"])
    return out


def as_json(proposal: Proposal) -> dict[str, dict[str, str]]:
    return {name: mapping.as_json() for name, mapping in proposal.mappings.items()}
