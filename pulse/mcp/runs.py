"""Agent runs reported through MCP: validation, durable storage and the per-user usage summary.

Plain functions over a SQLAlchemy engine, so tests and benchmarks call them without MCP.
Each tenant has its own raw schema, ``raw_agent_mcp__<tenant>``, with one ``runs`` table that
the dbt staging model ``stg_agent_mcp__runs`` reads.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, text

from pulse.settings import raw_schema

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
REQUIRED_FIELDS = ("agent_type", "status", "started_at", "model_name")
OPTIONAL_TEXT_FIELDS = ("model_version", "error_category", "error_message", "team")
KNOWN_FIELDS = frozenset(
    ("run_id", *REQUIRED_FIELDS, "ended_at", *OPTIONAL_TEXT_FIELDS, *TOKEN_FIELDS, "cost_usd", "user_email")
)
MAX_TEXT = {"run_id": 200, "error_message": 10_000}
DEFAULT_MAX_TEXT = 500
MAX_SUMMARY_DAYS = 3660


class RunError(ValueError):
    """A report that cannot be recorded; the message says what to change."""


@dataclass(frozen=True)
class AgentIdentity:
    """Who is reporting: one user of one tenant, as an agent token says."""

    tenant_id: str
    user_email: str
    user_name: str | None = None


@dataclass(frozen=True)
class RunReport:
    """One validated report. ``None`` in an optional field means "not given"."""

    run_id: str
    agent_type: str
    status: str
    started_at: datetime
    model_name: str
    ended_at: datetime | None = None
    model_version: str | None = None
    team: str | None = None
    error_category: str | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: Decimal | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def schema_name(tenant_id: str) -> str:
    """The raw schema of a tenant's MCP-reported runs, as dbt's union_tenant_sources expects."""
    return raw_schema("agent_mcp", tenant_id)


def _text(arguments: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = arguments.get(name)
    if value is None:
        if required:
            raise RunError(f"{name} is required.")
        return None
    if not isinstance(value, str):
        raise RunError(f"{name} must be a string, got {type(value).__name__}.")
    value = value.strip()
    if not value:
        if required:
            raise RunError(f"{name} must not be empty.")
        return None
    limit = MAX_TEXT.get(name, DEFAULT_MAX_TEXT)
    if len(value) > limit:
        raise RunError(f"{name} is {len(value)} characters long; the limit is {limit}.")
    return value


def _timestamp(arguments: Mapping[str, Any], name: str, *, required: bool) -> datetime | None:
    value = arguments.get(name)
    if value is None:
        if required:
            raise RunError(f"{name} is required (ISO 8601 with a time zone, e.g. 2025-06-01T09:30:00Z).")
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RunError(f"{name} {value!r} is not an ISO 8601 timestamp; use e.g. 2025-06-01T09:30:00Z.") from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise RunError(f"{name} must be an ISO 8601 timestamp string, got {type(value).__name__}.")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise RunError(f"{name} {value!s} has no time zone; add one, e.g. a trailing Z for UTC.")
    return parsed


def _tokens(arguments: Mapping[str, Any], name: str) -> int | None:
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RunError(f"{name} must be a whole number, got {value!r}.")
    if value < 0:
        raise RunError(f"{name} must not be negative, got {value}.")
    return value


def _cost(arguments: Mapping[str, Any]) -> Decimal | None:
    value = arguments.get("cost_usd")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise RunError(f"cost_usd must be a number, got {type(value).__name__}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise RunError(f"cost_usd must be a finite number, got {value!r}.")
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        raise RunError(f"cost_usd must be a number, got {value!r}.") from None
    if not cost.is_finite():
        raise RunError(f"cost_usd must be a finite number, got {value!r}.")
    if cost < 0:
        raise RunError(f"cost_usd must not be negative, got {value}.")
    return cost


def validate_run(arguments: Mapping[str, Any], identity: AgentIdentity) -> RunReport:
    """Check a report's arguments; raise :class:`RunError` naming the first problem.

    ``arguments`` are the tool arguments as received (JSON values); they are kept as the payload.
    """
    unknown = sorted(set(arguments) - KNOWN_FIELDS)
    if unknown:
        raise RunError(f"Unknown argument(s): {', '.join(unknown)}; accepted: {', '.join(sorted(KNOWN_FIELDS))}.")
    claimed = arguments.get("user_email")
    if claimed is not None and (not isinstance(claimed, str) or claimed.strip().lower() != identity.user_email):
        raise RunError(
            "user_email must be the token's own user; an agent reports only for the user its token acts for "
            "(leave user_email out)."
        )
    run_id = _text(arguments, "run_id", required=False) or str(uuid.uuid4())
    status = _text(arguments, "status", required=True)
    if status not in STATUSES:
        raise RunError(f"status {status!r} is not one of {', '.join(STATUSES)}.")
    started_at = _timestamp(arguments, "started_at", required=True)
    assert started_at is not None
    ended_at = _timestamp(arguments, "ended_at", required=False)
    if ended_at is not None and ended_at < started_at:
        raise RunError(f"ended_at ({ended_at.isoformat()}) is before started_at ({started_at.isoformat()}).")
    agent_type = _text(arguments, "agent_type", required=True)
    model_name = _text(arguments, "model_name", required=True)
    assert agent_type is not None and model_name is not None
    return RunReport(
        run_id=run_id,
        agent_type=agent_type,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        model_name=model_name,
        model_version=_text(arguments, "model_version", required=False),
        team=_text(arguments, "team", required=False),
        error_category=_text(arguments, "error_category", required=False),
        error_message=_text(arguments, "error_message", required=False),
        input_tokens=_tokens(arguments, "input_tokens"),
        output_tokens=_tokens(arguments, "output_tokens"),
        cache_read_tokens=_tokens(arguments, "cache_read_tokens"),
        cache_write_tokens=_tokens(arguments, "cache_write_tokens"),
        cost_usd=_cost(arguments),
        payload=json.loads(json.dumps(dict(arguments), default=str)),
    )


_DDL = """
create table if not exists {table} (
    run_id             text primary key,
    agent_type         text,
    user_email         text,
    user_name          text,
    team               text,
    status             text,
    model_name         text,
    model_version      text,
    created_at         timestamptz,
    started_at         timestamptz,
    ended_at           timestamptz,
    updated_at         timestamptz,
    input_tokens       bigint,
    output_tokens      bigint,
    cache_read_tokens  bigint,
    cache_write_tokens bigint,
    cost_usd           numeric,
    error_category     text,
    error_message      text,
    payload            jsonb,
    reported_at        timestamptz default now()
)
"""

# Optional fields a later report leaves out keep their stored value; given ones replace it.
_UPSERT = """
insert into {table} as r (
    run_id, agent_type, user_email, user_name, team, status, model_name, model_version,
    created_at, started_at, ended_at, updated_at,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
    error_category, error_message, payload, reported_at
) values (
    :run_id, :agent_type, :user_email, :user_name, :team, :status, :model_name, :model_version,
    now(), :started_at, :ended_at, now(),
    coalesce(:input_tokens, 0), coalesce(:output_tokens, 0),
    coalesce(:cache_read_tokens, 0), coalesce(:cache_write_tokens, 0), :cost_usd,
    :error_category, :error_message, cast(:payload as jsonb), now()
)
on conflict (run_id) do update set
    agent_type = excluded.agent_type,
    user_name = coalesce(excluded.user_name, r.user_name),
    team = coalesce(excluded.team, r.team),
    status = excluded.status,
    model_name = excluded.model_name,
    model_version = coalesce(excluded.model_version, r.model_version),
    started_at = excluded.started_at,
    ended_at = coalesce(excluded.ended_at, r.ended_at),
    updated_at = excluded.updated_at,
    input_tokens = coalesce(cast(:input_tokens as bigint), r.input_tokens),
    output_tokens = coalesce(cast(:output_tokens as bigint), r.output_tokens),
    cache_read_tokens = coalesce(cast(:cache_read_tokens as bigint), r.cache_read_tokens),
    cache_write_tokens = coalesce(cast(:cache_write_tokens as bigint), r.cache_write_tokens),
    cost_usd = coalesce(excluded.cost_usd, r.cost_usd),
    error_category = coalesce(excluded.error_category, r.error_category),
    error_message = coalesce(excluded.error_message, r.error_message),
    payload = excluded.payload,
    reported_at = excluded.reported_at
where r.user_email = excluded.user_email
returning run_id
"""


def _table(tenant_id: str) -> str:
    return f'"{schema_name(tenant_id)}".runs'


def ensure_runs_table(conn: Connection, tenant_id: str) -> None:
    """Create the tenant's schema and runs table if missing (safe when processes race)."""
    schema = schema_name(tenant_id)
    conn.execute(text("select pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
    conn.execute(text(f'create schema if not exists "{schema}"'))
    conn.execute(text(_DDL.format(table=_table(tenant_id))))
    conn.execute(
        text(f"create index if not exists runs_user_started_idx on {_table(tenant_id)} (user_email, started_at)")
    )


def upsert_run(conn: Connection, identity: AgentIdentity, report: RunReport) -> None:
    """Insert or update one run of the identity's user; refuse a run_id another user owns."""
    params: dict[str, Any] = {
        "run_id": report.run_id,
        "agent_type": report.agent_type,
        "user_email": identity.user_email,
        "user_name": identity.user_name,
        "team": report.team,
        "status": report.status,
        "model_name": report.model_name,
        "model_version": report.model_version,
        "started_at": report.started_at,
        "ended_at": report.ended_at,
        "cost_usd": report.cost_usd,
        "error_category": report.error_category,
        "error_message": report.error_message,
        "payload": json.dumps(report.payload),
        **{name: getattr(report, name) for name in TOKEN_FIELDS},
    }
    stored = conn.execute(text(_UPSERT.format(table=_table(identity.tenant_id))), params).scalar_one_or_none()
    if stored is None:
        raise RunError(
            f"run_id {report.run_id!r} was already reported by another user of this tenant; "
            "use a new run_id (or leave it out to get one)."
        )


class RunStore:
    """Records runs and summarises usage; creates each tenant's table once per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def _ensure(self, tenant_id: str) -> None:
        if tenant_id in self._ready:
            return
        with self._lock:
            if tenant_id in self._ready:
                return
            with self.engine.begin() as conn:
                ensure_runs_table(conn, tenant_id)
            self._ready.add(tenant_id)

    def record(self, identity: AgentIdentity, arguments: Mapping[str, Any]) -> dict[str, str]:
        """Validate and store one report; return ``{run_id, status: "recorded"}``."""
        report = validate_run(arguments, identity)
        self._ensure(identity.tenant_id)
        with self.engine.begin() as conn:
            upsert_run(conn, identity, report)
        return {"run_id": report.run_id, "status": "recorded"}

    def summary(self, identity: AgentIdentity, days: int, now: datetime) -> dict[str, Any]:
        """The identity's usage over the ``days`` before ``now`` (see :func:`usage_summary`)."""
        self._ensure(identity.tenant_id)
        with self.engine.connect() as conn:
            return usage_summary(conn, identity, days, now)


@dataclass
class UsageFigures:
    """Counts and sums over a set of runs."""

    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    runs_without_cost: int = 0

    def add(self, other: UsageFigures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        finished = self.succeeded + self.failed + self.cancelled
        return {
            "runs": self.runs,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "in_progress": self.runs - finished,
            "success_rate_pct": round(100 * self.succeeded / finished, 1) if finished else None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": float(self.cost_usd),
            "runs_without_cost": self.runs_without_cost,
        }


def usage_rows(conn: Connection, identity: AgentIdentity, since: datetime) -> dict[str, UsageFigures]:
    """Per agent type, the user's runs started since ``since``, from every route.

    Modeled runs come from ``intermediate.int_agent_runs`` (all routes, with computed costs);
    runs reported here since the last model refresh come straight from the MCP raw table, so
    an agent sees its report in the summary at once.
    """
    modeled = conn.execute(text("select to_regclass('intermediate.int_agent_runs')")).scalar() is not None
    modeled_runs = (
        "select agent_run_id, agent_type, status, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, cost_usd, started_at, updated_at from intermediate.int_agent_runs "
        "where tenant_id = :tenant and user_email = :email"
        if modeled
        else "select null::text as agent_run_id, null::text as agent_type, null::text as status, "
        "0::bigint as input_tokens, 0::bigint as output_tokens, 0::bigint as cache_read_tokens, "
        "0::bigint as cache_write_tokens, null::numeric as cost_usd, null::timestamptz as started_at, "
        "null::timestamptz as updated_at where false"
    )
    rows = conn.execute(
        text(
            f"with modeled as ({modeled_runs}), "
            "pending as ("
            "  select 'agent_mcp:' || raw.run_id as agent_run_id, raw.agent_type, raw.status, raw.input_tokens, "
            "  raw.output_tokens, raw.cache_read_tokens, raw.cache_write_tokens, raw.cost_usd, raw.started_at "
            f"  from {_table(identity.tenant_id)} as raw where raw.user_email = :email and not exists ("
            "    select from modeled where modeled.agent_run_id = 'agent_mcp:' || raw.run_id "
            "    and modeled.updated_at >= raw.updated_at)"
            "), "
            "runs as ("
            "  select agent_run_id, agent_type, status, input_tokens, output_tokens, cache_read_tokens, "
            "  cache_write_tokens, cost_usd, started_at from modeled "
            "  where agent_run_id not in (select agent_run_id from pending) "
            "  union all select * from pending"
            ") "
            "select agent_type, count(*), "
            "count(*) filter (where status = 'succeeded'), count(*) filter (where status = 'failed'), "
            "count(*) filter (where status = 'cancelled'), "
            "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            "coalesce(sum(cache_read_tokens), 0), coalesce(sum(cache_write_tokens), 0), "
            "coalesce(sum(cost_usd), 0), count(*) filter (where cost_usd is null) "
            "from runs where started_at >= :since group by agent_type order by agent_type"
        ),
        {"tenant": identity.tenant_id, "email": identity.user_email, "since": since},
    ).all()
    figures: dict[str, UsageFigures] = {}
    for row in rows:
        runs, succeeded, failed, cancelled, input_tokens, output_tokens, cache_read, cache_write = map(int, row[1:9])
        figures[row[0]] = UsageFigures(
            runs=runs,
            succeeded=succeeded,
            failed=failed,
            cancelled=cancelled,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cost_usd=Decimal(row[9]),
            runs_without_cost=int(row[10]),
        )
    return figures


def usage_summary(conn: Connection, identity: AgentIdentity, days: int, now: datetime) -> dict[str, Any]:
    """Runs, outcomes (success rate = succeeded / finished), tokens and cost, in total and by agent type."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_SUMMARY_DAYS:
        raise RunError(f"days must be a whole number from 1 to {MAX_SUMMARY_DAYS}, got {days!r}.")
    since = now - timedelta(days=days)
    by_type = usage_rows(conn, identity, since)
    total = UsageFigures()
    for figures in by_type.values():
        total.add(figures)
    return {
        "user_email": identity.user_email,
        "days": days,
        "since": since.isoformat(),
        **total.as_dict(),
        "by_agent_type": {agent_type: figures.as_dict() for agent_type, figures in by_type.items()},
    }
