"""Jira's JSON items as raw rows: issues, changelog items, sprints, boards, fields, statuses, users.

Each ``parse_*`` returns one row (a dict of the raw table's columns plus ``payload``, the item
as Jira sent it) or raises :class:`MalformedItem` naming every problem, so the connector can
quarantine the item and load the rest. Timestamps become aware UTC datetimes; Jira writes them
as ``2026-11-20T05:15:30.000-0500`` on issues and ``…Z`` on sprints.

Mapped custom fields are read into the canonical columns (``pulse.fieldmap``): numbers as
numbers, the Sprint field (a list) as the id of the current sprint, drop-downs as their labels,
users as their email (or account id when Jira hides the email), rich text (Atlassian Document
Format) as plain text, one line per paragraph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from connectors.github.helpers import MalformedItem, _Fields, parse_timestamp
from pulse.fieldmap import CANONICAL_NAMES, FieldCandidate

JsonDict = dict[str, Any]

#: Canonical columns holding numbers; every other canonical column is text.
NUMERIC_CANONICAL = frozenset({"story_points", "dmt_coverage_pct"})
SPRINT_STATES = frozenset({"active", "future", "closed"})
#: Jira's status category keys (``undefined`` is the category of a status in no category).
STATUS_CATEGORY_KEYS = frozenset({"new", "indeterminate", "done", "undefined"})
_LEGACY_SPRINT = re.compile(r"\bid=(?P<id>\d+).*?\bstate=(?P<state>[A-Z]+)", re.DOTALL)


class _JiraFields(_Fields):
    """:class:`_Fields` plus Jira's ids: strings of digits, sometimes sent as numbers."""

    def ident(self, *path: str, required: bool = False) -> str | None:
        ok, value = self._get(path, required)
        if not ok or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problems.append(f"'{'.'.join(path)}' is not an id: {value!r}"[:200])
            return None
        text = str(value).strip()
        if not text:
            if required:
                self.problems.append(f"required field '{'.'.join(path)}' is empty")
            return None
        return text

    def optional_text(self, *path: str) -> str | None:
        """Text, with Jira's empty strings (hidden emails, blank account ids) as None."""
        value = self.text(*path)
        return value or None


# -- values of mapped fields -----------------------------------------------------------------


def adf_text(document: Any) -> str:
    """Plain text of an Atlassian Document Format value: one line per paragraph (or heading,
    list item, code line); links and mentions as their URL or name."""
    lines: list[str] = []
    inline_types = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status"}

    def inline(node: Any) -> str:
        if not isinstance(node, dict):
            return ""
        kind, attrs = node.get("type"), node.get("attrs") or {}
        if kind == "text":
            return str(node.get("text") or "")
        if kind == "hardBreak":
            return "\n"
        if kind == "inlineCard":
            return str(attrs.get("url") or "")
        if kind == "mention":
            return str(attrs.get("text") or attrs.get("id") or "")
        if kind == "emoji":
            return str(attrs.get("text") or attrs.get("shortName") or "")
        return "".join(inline(child) for child in node.get("content") or [])

    def block(node: Any) -> None:
        if not isinstance(node, dict):
            return
        children = node.get("content") or []
        if node.get("type") == "blockCard":
            lines.append(str((node.get("attrs") or {}).get("url") or ""))
        elif node.get("type") in ("paragraph", "heading", "codeBlock") or (
            children and all(isinstance(c, dict) and c.get("type") in inline_types for c in children)
        ):
            lines.extend("".join(inline(child) for child in children).split("\n"))
        else:
            for child in children:
                block(child)

    block(document)
    return "\n".join(line.strip() for line in lines if line.strip())


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


def value_text(value: Any) -> str | None:
    """A custom field's value as text: option → label, user → email (else account id),
    ADF → plain text, list → its items' texts joined (``, ``; rich text by lines)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, str):
        return value.strip() or None
    if _is_adf(value):
        return adf_text(value) or None
    if isinstance(value, dict):
        for key in ("value", "emailAddress", "accountId", "name", "key", "id"):
            if value.get(key) not in (None, ""):
                text = value_text(value[key])
                child = value.get("child")
                if key == "value" and isinstance(child, dict) and child.get("value"):
                    return f"{text} / {child['value']}"  # cascading select
                return text
        return None
    if isinstance(value, list):
        texts = [text for text in (value_text(v) for v in value) if text]
        return ", ".join(texts) or None
    return str(value)


def value_number(value: Any) -> float | None:
    """A numeric field's value; text that is a number counts, anything else is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if isinstance(value, dict) and "value" in value:
        return value_number(value["value"])
    return None


def current_sprint(value: Any) -> str | None:
    """The current sprint's id from the Sprint field's list: the active one, else the next
    future one, else the last closed one (Jira keeps closed sprints of carried-over issues)."""
    if value is None:
        return None
    entries = value if isinstance(value, list) else [value]
    sprints: list[tuple[str, str, str]] = []  # (id, state, sort key)
    for entry in entries:
        if isinstance(entry, dict) and entry.get("id") is not None:
            state = str(entry.get("state") or "").lower()
            moment = str(entry.get("completeDate") or entry.get("endDate") or entry.get("startDate") or "")
            sprints.append((str(entry["id"]), state, moment))
        elif isinstance(entry, str):
            match = _LEGACY_SPRINT.search(entry)  # Jira Server's "…Sprint@1a2b[id=7,…,state=CLOSED,…]"
            if match:
                sprints.append((match["id"], match["state"].lower(), ""))
        elif isinstance(entry, int) and not isinstance(entry, bool):
            sprints.append((str(entry), "", ""))
    if not sprints:
        return None
    active = [s for s in sprints if s[1] == "active"]
    if active:
        return active[-1][0]
    future = [s for s in sprints if s[1] == "future"]
    if future:
        return min(future, key=lambda s: (s[2] or "9999", int(s[0]) if s[0].isdigit() else 0))[0]
    return max(sprints, key=lambda s: (s[2], int(s[0]) if s[0].isdigit() else 0))[0]


def canonical_value(canonical: str, value: Any) -> Any:
    if canonical == "sprint":
        return current_sprint(value)
    if canonical in NUMERIC_CANONICAL:
        return value_number(value)
    return value_text(value)


# -- issues -------------------------------------------------------------------------------------


def _timestamp(f: _JiraFields, *path: str, required: bool = False) -> datetime | None:
    ok, value = f._get(path, required)
    if not ok or value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        f.problems.append(f"'{'.'.join(path)}' is not a Jira timestamp: {value!r}"[:200])
        return None


def _caused_by(links: Any) -> tuple[str | None, str | None]:
    """The issue this one "is caused by" (a Problem/Incident link, inward side), if any."""
    if not isinstance(links, list):
        return None, None
    for link in links:
        if not isinstance(link, dict):
            continue
        kind = link.get("type") or {}
        other = link.get("inwardIssue")
        inward = str(kind.get("inward") or "").lower() if isinstance(kind, dict) else ""
        if isinstance(other, dict) and "caused by" in inward and other.get("id") is not None:
            return str(other["id"]), other.get("key")
    return None, None


def parse_issue(item: Any, mappings: Mapping[str, str], site_url: str) -> JsonDict:
    """A ``/search/jql`` issue as an ``issues`` row; MalformedItem names every problem.

    ``mappings`` is ``{canonical name: field id}``; ``site_url`` makes the browse URL."""
    f = _JiraFields(item)
    issue_id = f.ident("id", required=True)
    key = f.text("key", required=True)
    if not isinstance(item.get("fields"), dict):
        f.problems.append("missing required field 'fields'")
        f.check()
    fields = item["fields"]
    category = f.text("fields", "status", "statusCategory", "key")
    if category is not None and category not in STATUS_CATEGORY_KEYS:
        f.problems.append(
            f"'fields.status.statusCategory.key' is {category!r}, not one of {sorted(STATUS_CATEGORY_KEYS)}"
        )
    level = fields.get("issuetype", {}).get("hierarchyLevel") if isinstance(fields.get("issuetype"), dict) else None
    caused_id, caused_key = _caused_by(fields.get("issuelinks"))
    labels = fields.get("labels")
    row: JsonDict = {
        "id": issue_id,
        "key": key,
        "project_id": f.ident("fields", "project", "id"),
        "project_key": f.text("fields", "project", "key", required=True),
        "project_name": f.text("fields", "project", "name"),
        "issue_type": f.text("fields", "issuetype", "name", required=True),
        "issue_type_id": f.ident("fields", "issuetype", "id"),
        "hierarchy_level": level if isinstance(level, int) and not isinstance(level, bool) else None,
        "status": f.text("fields", "status", "name", required=True),
        "status_id": f.ident("fields", "status", "id"),
        "status_category": category,
        "summary": f.text("fields", "summary"),
        "assignee_account_id": f.optional_text("fields", "assignee", "accountId"),
        "assignee_email": f.optional_text("fields", "assignee", "emailAddress"),
        "reporter_account_id": f.optional_text("fields", "reporter", "accountId"),
        "reporter_email": f.optional_text("fields", "reporter", "emailAddress"),
        "parent_id": f.ident("fields", "parent", "id"),
        "parent_key": f.text("fields", "parent", "key"),
        "caused_by_id": caused_id,
        "caused_by_key": caused_key,
        "labels": [str(label) for label in labels] if isinstance(labels, list) else [],
        "created_at": _timestamp(f, "fields", "created", required=True),
        "updated_at": _timestamp(f, "fields", "updated", required=True),
        "resolved_at": _timestamp(f, "fields", "resolutiondate"),
        "url": f"{site_url.rstrip('/')}/browse/{key}" if key else None,
    }
    for canonical in CANONICAL_NAMES:
        field_id = mappings.get(canonical)
        row[canonical] = canonical_value(canonical, fields.get(field_id)) if field_id else None
    f.check()
    row["payload"] = {name: value for name, value in item.items() if name != "changelog"}
    return row


def issue_key_of(item: Any, fallback: str = "issue") -> str:
    """A readable key of a (possibly broken) issue for the quarantine table."""
    if isinstance(item, dict):
        parts = [f"{name}={item[name]}" for name in ("key", "id") if isinstance(item.get(name), str | int)]
        if parts:
            return f"{fallback} " + " ".join(parts)
    return fallback


# -- changelogs -------------------------------------------------------------------------------------


def canonical_field(entry: Mapping[str, Any], by_field_id: Mapping[str, str], by_name: Mapping[str, str]) -> str | None:
    """Which canonical field a changelog item changed: ``status``, ``assignee``, or a mapped one
    (``by_field_id``: field id → canonical; ``by_name``: display name → field id, for items
    without ``fieldId``)."""
    field_id = entry.get("fieldId")
    name = entry.get("field")
    if not field_id and isinstance(name, str):
        field_id = name if name in ("status", "assignee") else by_name.get(name)
    if field_id in ("status", "assignee"):
        return str(field_id)
    return by_field_id.get(str(field_id)) if field_id else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def parse_history(
    history: Any,
    issue_id: str,
    issue_key: str | None,
    by_field_id: Mapping[str, str],
    by_name: Mapping[str, str],
) -> list[JsonDict]:
    """One changelog history as ``issue_changes`` rows, one per changed field."""
    f = _JiraFields(history)
    history_id = f.ident("id", required=True)
    changed_at = _timestamp(f, "created", required=True)
    entries = history.get("items")
    if not isinstance(entries, list):
        f.problems.append("missing required field 'items'")
    author_id = f.optional_text("author", "accountId")
    author_email = f.optional_text("author", "emailAddress")
    f.check()
    rows = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise MalformedItem(f"items[{number}] is a {type(entry).__name__}, not a JSON object")
        rows.append(
            {
                "history_id": history_id,
                "item_index": number,
                "issue_id": issue_id,
                "issue_key": issue_key,
                "changed_at": changed_at,
                "author_account_id": author_id,
                "author_email": author_email,
                "field": _text(entry.get("field")),
                "field_id": _text(entry.get("fieldId")),
                "field_type": _text(entry.get("fieldtype")),
                "canonical_field": canonical_field(entry, by_field_id, by_name),
                "from_value": _text(entry.get("from")),
                "from_string": _text(entry.get("fromString")),
                "to_value": _text(entry.get("to")),
                "to_string": _text(entry.get("toString")),
                "payload": entry,
            }
        )
    return rows


def embedded_changelog(changelog: Any) -> tuple[list[Any], bool]:
    """The histories ``expand=changelog`` embedded in an issue (its ``changelog`` value) and
    whether they are all of them: only when ``total`` says so (Jira cuts long ones short)."""
    if not isinstance(changelog, dict) or not isinstance(changelog.get("histories"), list):
        return [], False
    histories = changelog["histories"]
    total = changelog.get("total")
    complete = isinstance(total, int) and len(histories) >= total and not changelog.get("startAt")
    return histories, complete


# -- agile, metadata, users -----------------------------------------------------------------------------


def parse_board(item: Any) -> JsonDict:
    f = _JiraFields(item)
    row = {
        "id": f.integer("id", required=True),
        "name": f.text("name"),
        "type": f.text("type"),
        "project_id": f.ident("location", "projectId"),
        "project_key": f.text("location", "projectKey"),
        "project_name": f.text("location", "projectName"),
        "payload": item,
    }
    f.check()
    return row


def parse_sprint(item: Any, board: Mapping[str, Any]) -> JsonDict:
    """A board's sprint as a ``sprints`` row (``board`` is the board row it was listed under)."""
    f = _JiraFields(item)
    row = {
        "id": f.integer("id", required=True),
        "board_id": board.get("id"),
        "origin_board_id": f.integer("originBoardId"),
        "project_key": board.get("project_key"),
        "name": f.text("name"),
        "state": f.one_of("state", allowed=SPRINT_STATES, required=True),
        "goal": f.optional_text("goal"),
        "start_at": _timestamp(f, "startDate"),
        "end_at": _timestamp(f, "endDate"),
        "completed_at": _timestamp(f, "completeDate"),
        "payload": item,
    }
    f.check()
    return row


def field_type(schema: Any) -> str:
    """A Jira field schema as one of ``pulse.fieldmap.FIELD_TYPES``."""
    if not isinstance(schema, dict):
        return "other"
    kind, custom, items = schema.get("type"), str(schema.get("custom") or ""), schema.get("items")
    if custom.endswith(":gh-sprint"):
        return "sprint"
    if kind == "number":
        return "number"
    if kind == "string":
        if custom.endswith(":textarea"):
            return "text"
        if custom.endswith(":url"):
            return "url"
        return "string"
    if kind in ("option", "option-with-child"):
        return "option"
    if kind == "array":
        return {"option": "option", "user": "user", "string": "string"}.get(str(items), "other")
    if kind in ("user", "date", "datetime"):
        return str(kind)
    return "other"


def parse_field(item: Any) -> JsonDict:
    f = _JiraFields(item)
    schema = item.get("schema") if isinstance(item.get("schema"), dict) else {}
    row = {
        "id": f.text("id", required=True),
        "name": f.text("name", required=True),
        "is_custom": f.boolean("custom"),
        "schema_type": f.text("schema", "type"),
        "schema_items": f.text("schema", "items"),
        "schema_custom": f.text("schema", "custom"),
        "schema_system": f.text("schema", "system"),
        "field_type": field_type(schema),
        "payload": item,
    }
    f.check()
    return row


def field_candidates(fields: Iterable[Any]) -> list[FieldCandidate]:
    """``GET /field`` as discovery candidates: the custom fields (system fields are never mapped),
    typed by their schema, keyed by the schema's ``custom`` type key."""
    out: list[FieldCandidate] = []
    for item in fields:
        if not isinstance(item, dict) or not item.get("custom") or not item.get("id"):
            continue
        raw_schema = item.get("schema")
        schema: JsonDict = raw_schema if isinstance(raw_schema, dict) else {}
        out.append(
            FieldCandidate(
                id=str(item["id"]),
                name=str(item.get("name") or item["id"]),
                type=field_type(schema),
                schema_key=str(schema["custom"]) if schema.get("custom") else None,
            )
        )
    return out


def parse_status(item: Any) -> JsonDict:
    f = _JiraFields(item)
    row = {
        "id": f.ident("id", required=True),
        "name": f.text("name", required=True),
        "untranslated_name": f.text("untranslatedName"),
        "category_key": f.text("statusCategory", "key"),
        "category_name": f.text("statusCategory", "name"),
        "payload": item,
    }
    f.check()
    return row


def parse_user(item: Any) -> JsonDict:
    f = _JiraFields(item)
    row = {
        "account_id": f.ident("accountId", required=True),
        "account_type": f.text("accountType"),
        "email": f.optional_text("emailAddress"),
        "display_name": f.text("displayName"),
        "active": f.boolean("active"),
        "time_zone": f.text("timeZone"),
        "payload": item,
    }
    f.check()
    return row
