"""The subset of JQL the Jira sandbox understands, parsed and evaluated over work items.

Supported: clauses joined by ``AND`` on

* ``project`` (``=``, ``!=``, ``in (…)``, ``not in (…)``), by key or id;
* ``key`` / ``issuekey`` and ``id`` (``=``, ``!=``, ``in``, ``not in``);
* ``created`` and ``updated`` (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``) with
  ``"yyyy/MM/dd HH:mm"``, ``"yyyy-MM-dd HH:mm"``, ``"yyyy/MM/dd"``, ``"yyyy-MM-dd"`` (read in
  the *caller's* time zone, to the minute, as Jira does) or a period such as ``-5d`` or
  ``"-1w 2d"`` (relative to now);

then ``ORDER BY`` ``created``, ``updated``, ``key``/``issuekey`` or ``id``, ``ASC`` or
``DESC``, comma-separated. Anything else is a 400 with Jira's error shape: an unknown field,
``OR``/``NOT``/parentheses, a bad date, a project the caller cannot see (Jira answers as if it
did not exist), and an *unbounded* query: ``/search/jql`` requires at least one restriction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.sandbox.work.world import Project, WorkItem

DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_PERIOD = re.compile(r"^([-+]?)\s*((?:\d+\s*[wdhm]\s*)+)$")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=!<>~]+)
    )""",
    re.VERBOSE,
)
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
SORTABLE = {"created": "created", "updated": "updated", "key": "key", "issuekey": "key", "id": "id"}


class JqlError(ValueError):
    """A query the sandbox (or Jira) rejects; ``str()`` is Jira's message."""


@dataclass(frozen=True)
class Token:
    kind: str  # string | op | punct | word
    text: str
    position: int

    @property
    def value(self) -> str:
        if self.kind == "string":
            return re.sub(r"\\(.)", r"\1", self.text[1:-1])
        return self.text


@dataclass(frozen=True)
class Clause:
    field: str  # project | key | id | created | updated
    operator: str  # = != > >= < <= in "not in"
    values: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...]
    order: tuple[tuple[str, bool], ...]  # (created|updated|key|id, descending)


def tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    text = jql.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise JqlError(
                f"Error in the JQL Query: The character '{text[position]}' is a reserved JQL character. "
                f"You must enclose it in a string or use the escape '\\u{ord(text[position]):04x}' instead. "
                f"(line 1, character {position + 1})"
            )
        kind = match.lastgroup or "word"
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


def parse(jql: str) -> Query:
    """The parsed query; JqlError with Jira's message for anything outside the subset."""
    tokens = tokenize(jql or "")
    at = 0

    def peek(offset: int = 0) -> Token | None:
        return tokens[at + offset] if at + offset < len(tokens) else None

    def expect_word(*words: str) -> Token:
        nonlocal at
        token = peek()
        if token is None or token.kind != "word" or token.text.lower() not in words:
            got = token.text if token else "end of query"
            raise JqlError(f"Error in the JQL Query: Expecting '{words[0].upper()}' but got '{got}'.")
        at += 1
        return token

    clauses: list[Clause] = []
    order: list[tuple[str, bool]] = []
    while peek() is not None:
        token = peek()
        assert token is not None
        if token.kind == "word" and token.text.lower() == "order":
            break
        if clauses:
            joiner = peek()
            assert joiner is not None
            if joiner.kind == "word" and joiner.text.lower() in ("or", "not"):
                raise JqlError(
                    f"Error in the JQL Query: the Jira sandbox supports only AND between clauses, not "
                    f"'{joiner.text.upper()}' (character {joiner.position + 1})."
                )
            expect_word("and")
        clause, at = _clause(tokens, at)
        clauses.append(clause)
    if peek() is not None:
        expect_word("order")
        expect_word("by")
        while True:
            token = peek()
            if token is None or token.kind not in ("word", "string"):
                raise JqlError("Error in the JQL Query: Expecting a field name after 'ORDER BY'.")
            name = token.value.lower()
            if name not in SORTABLE:
                raise JqlError(f"Not able to sort using field '{token.value}'.")
            at += 1
            descending = False
            direction = peek()
            if direction is not None and direction.kind == "word" and direction.text.lower() in ("asc", "desc"):
                descending = direction.text.lower() == "desc"
                at += 1
            order.append((SORTABLE[name], descending))
            comma = peek()
            if comma is None:
                break
            if comma.kind == "punct" and comma.text == ",":
                at += 1
                continue
            raise JqlError(f"Error in the JQL Query: Expecting ',' or end of query but got '{comma.text}'.")
    return Query(tuple(clauses), tuple(order))


_FIELDS = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "id": "id",
    "created": "created",
    "createddate": "created",
    "updated": "updated",
    "updateddate": "updated",
}
_OPERATORS = {
    "project": ("=", "!=", "in", "not in"),
    "key": ("=", "!=", "in", "not in"),
    "id": ("=", "!=", "in", "not in"),
    "created": ("=", "!=", ">", ">=", "<", "<="),
    "updated": ("=", "!=", ">", ">=", "<", "<="),
}


def _clause(tokens: Sequence[Token], at: int) -> tuple[Clause, int]:
    token = tokens[at]
    if token.kind == "punct":
        raise JqlError(
            f"Error in the JQL Query: the Jira sandbox does not support '{token.text}' here "
            f"(character {token.position + 1}); write clauses joined by AND."
        )
    name = token.value.lower()
    if name not in _FIELDS:
        raise JqlError(f"Field '{token.value}' does not exist or you do not have permission to view it.")
    field = _FIELDS[name]
    at += 1
    if at >= len(tokens):
        raise JqlError(f"Error in the JQL Query: Expecting operator but got end of query after '{token.value}'.")
    op_token = tokens[at]
    operator = op_token.text.lower()
    if op_token.kind == "word" and operator == "not" and at + 1 < len(tokens) and tokens[at + 1].text.lower() == "in":
        operator, at = "not in", at + 1
    elif op_token.kind not in ("op", "word") or operator not in ("=", "!=", ">", ">=", "<", "<=", "in", "~", "!~"):
        raise JqlError(f"Error in the JQL Query: Expecting operator but got '{op_token.text}'.")
    if operator not in _OPERATORS[field]:
        raise JqlError(f"The operator '{operator}' is not supported by the '{token.value}' field.")
    at += 1
    if operator in ("in", "not in"):
        if at >= len(tokens) or tokens[at].text != "(":
            raise JqlError("Error in the JQL Query: Expecting '(' after 'IN'.")
        at += 1
        values: list[str] = []
        while True:
            if at >= len(tokens) or tokens[at].kind not in ("word", "string"):
                raise JqlError("Error in the JQL Query: Expecting a value in the list.")
            values.append(tokens[at].value)
            at += 1
            if at < len(tokens) and tokens[at].text == ",":
                at += 1
                continue
            if at < len(tokens) and tokens[at].text == ")":
                at += 1
                break
            raise JqlError("Error in the JQL Query: Expecting ',' or ')' in the list.")
        return Clause(field, operator, tuple(values)), at
    if at >= len(tokens) or tokens[at].kind not in ("word", "string"):
        raise JqlError(f"Error in the JQL Query: Expecting either a value or a function after '{operator}'.")
    value = tokens[at].value
    at += 1
    return Clause(field, operator, (value,)), at


def parse_moment(value: str, field: str, zone: str, now: datetime) -> datetime:
    """A JQL date value as an instant: absolute dates in ``zone`` (minute precision), periods
    relative to ``now``."""
    text = value.strip()
    period = _PERIOD.match(text)
    if period:
        sign = -1 if period.group(1) == "-" else 1
        units = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
        delta = timedelta()
        for amount, unit in re.findall(r"(\d+)\s*([wdhm])", period.group(2)):
            delta += timedelta(**{units[unit]: int(amount)})
        return (now + sign * delta).replace(second=0, microsecond=0)
    for pattern in DATE_FORMATS:
        try:
            local = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=ZoneInfo(zone))
    raise JqlError(
        f"Date value '{value}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )


_COMPARE: dict[str, Callable[[datetime, datetime], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def compile_query(query: Query, projects: Sequence[Project], *, zone: str, now: datetime) -> Callable[[WorkItem], bool]:
    """A predicate for ``query``; ``projects`` are the ones the caller may see (others are
    unknown values, as Jira reports them)."""
    if not query.clauses:
        raise JqlError(UNBOUNDED)
    tests: list[Callable[[WorkItem], bool]] = []
    for clause in query.clauses:
        inside = clause.operator in ("=", "in")
        if clause.field == "project":
            keys = set()
            for value in clause.values:
                match = next((p for p in projects if value.upper() == p.key or value == str(p.id)), None)
                if match is None:
                    raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
                keys.add(match.key)
            tests.append(_membership(lambda item: item.project_key, keys, inside))
        elif clause.field == "key":
            tests.append(_membership(lambda item: item.key, {v.upper() for v in clause.values}, inside))
        elif clause.field == "id":
            tests.append(_membership(lambda item: str(item.id), set(clause.values), inside))
        else:
            moment = parse_moment(clause.values[0], clause.field, zone, now)
            attribute = "created_at" if clause.field == "created" else "updated_at"
            tests.append(_comparison(attribute, _COMPARE[clause.operator], moment))
    return lambda item: all(test(item) for test in tests)


def _membership(value: Callable[[WorkItem], str], values: set[str], inside: bool) -> Callable[[WorkItem], bool]:
    return lambda item: (value(item) in values) == inside


def _comparison(
    attribute: str, compare: Callable[[datetime, datetime], bool], moment: datetime
) -> Callable[[WorkItem], bool]:
    return lambda item: compare(getattr(item, attribute), moment)


def sort_key(query: Query, project_rank: dict[str, int]) -> Callable[[WorkItem], tuple[float, ...]]:
    """Numeric sort values of an item for the query's ORDER BY (descending fields negated),
    the item id last as the tie-breaker, so keyset paging can bisect a sorted list."""
    order = query.order or (("created", True),)  # Jira's default for an unordered search

    def key(item: WorkItem) -> tuple[float, ...]:
        values: list[float] = []
        for field, descending in order:
            sign = -1.0 if descending else 1.0
            if field == "created":
                values.append(sign * item.created_at.timestamp())
            elif field == "updated":
                values.append(sign * item.updated_at.timestamp())
            elif field == "key":
                values += [sign * project_rank.get(item.project_key, 0), sign * item.number]
            else:
                values.append(sign * item.id)
        values.append(float(item.id))
        return tuple(values)

    return key
