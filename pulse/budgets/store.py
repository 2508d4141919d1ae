"""Budgets in the control plane: set them, add or remove thresholds, list them.

Every change goes through the database functions of migration 0003 (``control.set_budget``,
``control.add_budget_threshold``, ``control.remove_budget_threshold``), the same ones the
app's org-admin forms call through their checked wrappers, so the CLI and the app cannot
drift apart; each change writes an audit row. Functions take an open connection: the caller
owns the transaction, as in :mod:`pulse.control`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, text

from pulse import control

DEFAULT_THRESHOLDS = (50, 80, 100)
MIN_THRESHOLD, MAX_THRESHOLD = 1, 1000


class BudgetError(control.ControlError):
    """A budget request that cannot be carried out; the message says what to do instead."""


@dataclass(frozen=True)
class Budget:
    """A monthly agent-cost budget of a tenant (``team_id`` None) or of one of its teams."""

    budget_id: int
    tenant_id: str
    team_id: int | None
    team_slug: str | None
    team_name: str | None
    amount_usd: Decimal
    thresholds: tuple[int, ...]
    updated_at: datetime

    @property
    def scope(self) -> str:
        return "organization" if self.team_id is None else "team"

    @property
    def label(self) -> str:
        """``organisation`` or ``team <name>``, as messages name the budget."""
        return "organisation" if self.team_id is None else f"team {self.team_name or self.team_slug}"


@dataclass(frozen=True)
class Utilization:
    """A budget's current month, as ``marts.fct_budget_utilization`` last measured it."""

    period_start: date
    month_to_date_spend_usd: Decimal
    share_used_pct: Decimal
    projected_spend_usd: Decimal | None
    projected_share_pct: Decimal | None
    measured_at: datetime


def parse_amount(value: str | Decimal | float | int) -> Decimal:
    """A positive USD amount with at most two decimals, from what a person typed."""
    try:
        amount = Decimal(str(value).replace(",", "").replace("$", "").strip())
    except InvalidOperation:
        raise BudgetError(f"{value!r} is not an amount: write it in USD, e.g. 1500 or 1500.00.") from None
    if not amount.is_finite() or amount <= 0:
        raise BudgetError(f"A budget is a positive amount in USD, not {value!r}.")
    if amount != amount.quantize(Decimal("0.01")):
        raise BudgetError(f"{value!r} has more than two decimals; budgets are in whole cents.")
    return amount.quantize(Decimal("0.01"))


def check_threshold(pct: int) -> int:
    if not MIN_THRESHOLD <= pct <= MAX_THRESHOLD:
        raise BudgetError(
            f"A threshold is a whole percentage from {MIN_THRESHOLD} to {MAX_THRESHOLD} "
            f"(e.g. 90, or 120 to hear about overspending), not {pct}."
        )
    return pct


def _team_id(conn: Connection, tenant_id: str, team_slug: str | None) -> int | None:
    if team_slug is None:
        return None
    team_id: int | None = conn.execute(
        text("select team_id from control.teams where tenant_id = :t and slug = :s"), {"t": tenant_id, "s": team_slug}
    ).scalar_one_or_none()
    if team_id is None:
        known = conn.execute(
            text("select string_agg(slug, ', ' order by slug) from control.teams where tenant_id = :t"),
            {"t": tenant_id},
        ).scalar()
        raise BudgetError(
            f"Tenant {tenant_id!r} has no team {team_slug!r}"
            + (f"; its teams are {known}." if known else "; add it with `pulse team add`.")
        )
    return int(team_id)


_BUDGETS_SQL = """
    select b.budget_id, b.tenant_id, b.team_id, tm.slug as team_slug, tm.name as team_name,
           b.amount_usd, b.updated_at,
           coalesce(array_agg(th.threshold_pct order by th.threshold_pct)
                    filter (where th.threshold_pct is not null), '{}') as thresholds
    from control.budgets as b
    left join control.teams as tm on tm.team_id = b.team_id
    left join control.budget_thresholds as th on th.budget_id = b.budget_id
    where (cast(:tenant as text) is null or b.tenant_id = :tenant)
      and (cast(:budget as bigint) is null or b.budget_id = :budget)
    group by b.budget_id, tm.slug, tm.name
    order by b.tenant_id, b.team_id nulls first
"""


def _budget(row: object) -> Budget:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["thresholds"] = tuple(int(pct) for pct in values["thresholds"])
    return Budget(**values)


def list_budgets(conn: Connection, tenant_id: str | None = None) -> list[Budget]:
    """Every budget (of one tenant, or of all), organisation budget first, with its thresholds."""
    rows = conn.execute(text(_BUDGETS_SQL), {"tenant": tenant_id, "budget": None})
    return [_budget(row) for row in rows]


def get_budget_by_id(conn: Connection, budget_id: int) -> Budget | None:
    row = conn.execute(text(_BUDGETS_SQL), {"tenant": None, "budget": budget_id}).one_or_none()
    return _budget(row) if row else None


def get_budget(conn: Connection, tenant_id: str, team_slug: str | None = None) -> Budget | None:
    team_id = _team_id(conn, tenant_id, team_slug)
    budget_id = conn.execute(
        text("select budget_id from control.budgets where tenant_id = :t and team_id is not distinct from :team"),
        {"t": tenant_id, "team": team_id},
    ).scalar_one_or_none()
    return None if budget_id is None else get_budget_by_id(conn, int(budget_id))


def require_budget(conn: Connection, tenant_id: str, team_slug: str | None = None) -> Budget:
    budget = get_budget(conn, tenant_id, team_slug)
    if budget is None:
        where = f"team {team_slug!r} of {tenant_id!r}" if team_slug else f"tenant {tenant_id!r}"
        option = f" --team {team_slug}" if team_slug else ""
        raise BudgetError(
            f"There is no budget for {where}. Set one first: "
            f"`pulse budget set --tenant {tenant_id}{option} --amount <USD>`."
        )
    return budget


def set_budget(
    conn: Connection, tenant_id: str, amount: str | Decimal | float | int, *, actor: str, team_slug: str | None = None
) -> Budget:
    """Create or change the monthly budget of a tenant (or of one of its teams).

    A new budget gets the default thresholds 50, 80 and 100 %. Raising a budget mid-month
    re-arms the thresholds the new amount puts back out of reach (see pulse.budgets.evaluate).
    """
    control.require_tenant(conn, tenant_id)
    value = parse_amount(amount)
    team_id = _team_id(conn, tenant_id, team_slug)
    budget_id: int = conn.execute(
        text("select control.set_budget(:actor, :t, :team, :amount)"),
        {"actor": actor, "t": tenant_id, "team": team_id, "amount": value},
    ).scalar_one()
    budget = get_budget_by_id(conn, int(budget_id))
    assert budget is not None
    return budget


def add_threshold(conn: Connection, budget: Budget, pct: int, *, actor: str) -> Budget:
    conn.execute(
        text("select control.add_budget_threshold(:actor, :b, :pct)"),
        {"actor": actor, "b": budget.budget_id, "pct": check_threshold(pct)},
    )
    updated = get_budget_by_id(conn, budget.budget_id)
    assert updated is not None
    return updated


def remove_threshold(conn: Connection, budget: Budget, pct: int, *, actor: str) -> Budget:
    if pct not in budget.thresholds:
        raise BudgetError(
            f"The {budget.label} budget of {budget.tenant_id!r} has no {pct} % threshold; "
            f"its thresholds are {', '.join(map(str, budget.thresholds)) or 'none'}."
        )
    conn.execute(
        text("select control.remove_budget_threshold(:actor, :b, :pct)"),
        {"actor": actor, "b": budget.budget_id, "pct": pct},
    )
    updated = get_budget_by_id(conn, budget.budget_id)
    assert updated is not None
    return updated


def current_utilization(conn: Connection, budget_id: int, period_start: date) -> Utilization | None:
    """The budget's row for ``period_start`` in ``marts.fct_budget_utilization``; None if not built yet."""
    if conn.execute(text("select to_regclass('marts.fct_budget_utilization')")).scalar() is None:
        return None
    row = conn.execute(
        text(
            "select period_start, month_to_date_spend_usd, share_used_pct, projected_spend_usd, "
            "projected_share_pct, measured_at from marts.fct_budget_utilization "
            "where budget_id = :b and period_start = :p"
        ),
        {"b": budget_id, "p": period_start},
    ).one_or_none()
    return Utilization(**row._mapping) if row else None
