"""The subset of WIQL (Work Item Query Language) the Azure Boards simulator understands.

Enough for what connectors send::

    SELECT [System.Id] FROM WorkItems
    WHERE [System.TeamProject] = @project AND [System.ChangedDate] >= '2026-11-01T10:00:00.000Z'
      AND [System.Id] > 1200 AND [System.Id] <= 5000
    ORDER BY [System.Id]

Conditions are joined by ``AND`` (parentheses around them are allowed) on ``System.Id``,
``System.TeamProject`` (``@project`` or a name), ``System.ChangedDate``/``System.CreatedDate``
(ISO dates; compared by day unless the request says ``timePrecision=true``, as Azure does),
``System.WorkItemType`` and ``System.State``; ``ORDER BY`` one or more of those fields with
``ASC``/``DESC``. Anything else is a :class:`WiqlError`, which the API answers with 400 and a
``TF51005``/``TF51006`` message like Azure's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<field>\[[^\]]+\])|(?P<string>'(?:[^']|'')*')|(?P<macro>@\w+)"
    r"|(?P<op>>=|<=|<>|=|<|>)|(?P<punct>[,()])|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>\w+))",
)
FIELD_KINDS = {
    "system.id": "number",
    "system.teamproject": "text",
    "system.changeddate": "date",
    "system.createddate": "date",
    "system.workitemtype": "text",
    "system.state": "text",
}
SELECTABLE = frozenset(
    {
        "system.id",
        "system.title",
        "system.state",
        "system.workitemtype",
        "system.changeddate",
        "system.createddate",
        "system.teamproject",
        "system.iterationpath",
        "system.assignedto",
    }
)


class WiqlError(ValueError):
    """A query the simulator cannot run; the message is Azure's kind of message."""


@dataclass(frozen=True)
class Condition:
    field: str  # lower-case reference name
    op: str
    value: Any  # int, str, or a datetime (``day_only`` when compared by day)
    day_only: bool = False


@dataclass
class Query:
    columns: list[str]
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (lower-case field, descending)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise WiqlError(f"TF51006: The query statement is not valid: unexpected text «{text[position:][:30]}».")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _parse_date(text: str, *, time_precision: bool) -> tuple[datetime, bool]:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WiqlError(f"TF51006: The query statement is not valid: «{text}» is not a date.") from exc
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not time_precision:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0), True
    return moment, False


def parse(text: str, *, time_precision: bool = False) -> Query:
    """Parse ``text``; raises :class:`WiqlError` for anything outside the supported subset."""
    tokens = _tokens(text)
    position = 0

    def peek(offset: int = 0) -> tuple[str, str]:
        index = position + offset
        return tokens[index] if index < len(tokens) else ("end", "")

    def take(kind: str, word: str | None = None) -> str:
        nonlocal position
        got_kind, got = peek()
        if got_kind != kind or (word is not None and got.lower() != word):
            expected = word.upper() if word else kind
            raise WiqlError(f"TF51006: The query statement is not valid: expecting {expected} near «{got or 'end'}».")
        position += 1
        return got

    def field_name(token: str) -> str:
        return token[1:-1].strip().lower()

    take("word", "select")
    columns = [field_name(take("field"))]
    while peek()[1] == ",":
        position += 1
        columns.append(field_name(take("field")))
    for column in columns:
        if column not in SELECTABLE:
            raise WiqlError(
                f"TF51005: The query references a field that does not exist. The error is caused by «[{column}]»."
            )
    take("word", "from")
    source = take("word")
    if source.lower() != "workitems":
        raise WiqlError(f"TF51006: The query statement is not valid: «{source}» is not WorkItems.")
    query = Query(columns=columns)
    if peek()[1].lower() == "where":
        position += 1
        depth = 0  # only AND joins conditions, so parentheses group nothing; they must balance
        while True:
            while peek()[1] == "(":
                position += 1
                depth += 1
            name = field_name(take("field"))
            kind = FIELD_KINDS.get(name)
            if kind is None:
                raise WiqlError(
                    f"TF51005: The query references a field that does not exist. The error is caused by «[{name}]»."
                )
            op = take("op")
            value_kind, raw = peek()
            position += 1
            if kind == "number":
                if value_kind != "number" or "." in raw:
                    raise WiqlError(f"TF51006: The query statement is not valid: «{raw}» is not an integer.")
                query.conditions.append(Condition(name, op, int(raw)))
            elif kind == "date":
                if value_kind != "string":
                    raise WiqlError(f"TF51006: The query statement is not valid: expecting a date near «{raw}».")
                moment, day_only = _parse_date(raw[1:-1], time_precision=time_precision)
                query.conditions.append(Condition(name, op, moment, day_only))
            else:
                if op not in ("=", "<>"):
                    raise WiqlError(f"TF51006: The query statement is not valid: operator «{op}» on «[{name}]».")
                if value_kind == "macro" and raw.lower() == "@project" and name == "system.teamproject":
                    query.conditions.append(Condition(name, op, "@project"))
                elif value_kind == "string":
                    query.conditions.append(Condition(name, op, raw[1:-1].replace("''", "'")))
                else:
                    raise WiqlError(f"TF51006: The query statement is not valid: unexpected «{raw}».")
            while peek()[1] == ")" and depth > 0:
                position += 1
                depth -= 1
            if peek()[1].lower() == "and":
                position += 1
                continue
            break
        if depth:
            raise WiqlError("TF51006: The query statement is not valid: a parenthesis is not closed.")
    if peek()[1].lower() == "order":
        position += 1
        take("word", "by")
        while True:
            name = field_name(take("field"))
            if name not in FIELD_KINDS:
                raise WiqlError(
                    f"TF51005: The query references a field that does not exist. The error is caused by «[{name}]»."
                )
            descending = False
            if peek()[1].lower() in ("asc", "desc"):
                descending = peek()[1].lower() == "desc"
                position += 1
            query.order.append((name, descending))
            if peek()[1] != ",":
                break
            position += 1
    if peek()[0] != "end":
        raise WiqlError(f"TF51006: The query statement is not valid: unexpected «{peek()[1]}».")
    return query


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    if op == "=":
        return bool(left == right)
    if op == "<>":
        return bool(left != right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)


def matches(query: Query, values: dict[str, Any], project: str) -> bool:
    """Whether a work item with ``values`` (lower-case reference names) satisfies ``query``."""
    for condition in query.conditions:
        value = values[condition.field]
        target = project if condition.value == "@project" else condition.value
        if isinstance(value, datetime) and condition.day_only:
            value = value.replace(hour=0, minute=0, second=0, microsecond=0)
        if not _compare(value, condition.op, target):
            return False
    return True


def sort_key(query: Query) -> Any:
    """A key function ordering value dicts by the query's ORDER BY (ids ascending without one)."""
    order = query.order or [("system.id", False)]

    def key(values: dict[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = []
        for name, descending in order:
            value = values[name]
            if isinstance(value, datetime):
                value = value.timestamp()
            if isinstance(value, str):
                value = value.lower()
            if descending:
                value = -value if isinstance(value, int | float) else _Reversed(value)
            out.append(value)
        return tuple(out)

    return key


class _Reversed:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)
