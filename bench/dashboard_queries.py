"""Benchmark: the Sprint dashboard's queries as its users wait for them (issue 5).

``--readers`` threads (10 by default) are dashboard users: each, ``--rounds`` times, picks a
random tenant, opens the dashboard (the project picker), picks a random project with sprints
and a random sprint of it, and runs the rest of the page's reads: the sprint's figures, its
velocity and say/do trend, its people, its open compliance flags and its teams' PR health.
Every read is a function of apps/streamlit/sprint_data.py called under its Streamlit cache, so
nothing is cached: each one is a transaction of the row-level-security reader role that checks
the user's grants, declares the tenant and runs the query, exactly as the app does. A read's
latency is what the page waits for: from the call to the DataFrame.

Each tenant gets one org-admin user (``dashboard-bench@<tenant>.bench.example``), created
through pulse.control if it is missing. The tenants must exist and their marts be built.

    .venv/bin/python bench/dashboard_queries.py --tenants acme,globex,initech [--readers 10] [--rounds 20]

uses the database of the PULSE_* settings (PULSE_DATABASE_URL, else the embedded cluster) and
writes bench/results/dashboard_queries.json. Goal: p95 under 200 ms at 10 readers.

bench/warehouse_scale.py calls :func:`measure` after building its marts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa

RESULTS = Path(__file__).resolve().parent / "results"
APP_DIR = Path(__file__).resolve().parent.parent / "apps" / "streamlit"
GOAL_P95_MS = 200.0
#: The reads of one dashboard view, in the order the page runs them.
QUERIES = (
    "projects",
    "sprints",
    "sprint_headline",
    "sprint_trend",
    "sprint_developers",
    "sprint_open_flags",
    "sprint_pr_health",
)


def bench_email(tenant: str) -> str:
    """The benchmark's org-admin user of ``tenant``."""
    return f"dashboard-bench@{tenant.replace('_', '-')}.bench.example"


def ensure_bench_users(conn: sa.Connection, tenants: Sequence[str]) -> dict[str, str]:
    """One org-admin user per tenant (created, and audited, only when missing): tenant → email."""
    from pulse import control

    users: dict[str, str] = {}
    for tenant in tenants:
        control.require_tenant(conn, tenant)
        email = bench_email(tenant)
        granted = conn.execute(
            sa.text(
                "select 1 from control.users as u join control.role_grants as g on g.user_id = u.user_id "
                "where u.email = :email and g.role = 'org_admin' and g.tenant_id = :tenant"
            ),
            {"email": email, "tenant": tenant},
        ).first()
        if granted is None:
            if conn.execute(sa.text("select 1 from control.users where email = :e"), {"e": email}).first() is None:
                control.add_user(conn, email, f"Dashboard bench ({tenant})", actor="bench:dashboard_queries")
            control.grant_role(conn, email, "org_admin", tenant_id=tenant, actor="bench:dashboard_queries")
        users[tenant] = email
    return users


def app_modules() -> tuple[ModuleType, ModuleType]:
    """The app's ``data`` and ``sprint_data`` modules, imported the way Streamlit imports them."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    data = importlib.import_module("data")
    if Path(data.__file__ or "").resolve().parent != APP_DIR:
        raise ImportError(f"the module 'data' imported from {data.__file__} is not the app's ({APP_DIR / 'data.py'})")
    return data, importlib.import_module("sprint_data")


def percentiles(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p95, p99 and max of latencies in milliseconds (interpolated percentiles)."""
    if not samples_ms:
        return {"count": 0}
    if len(samples_ms) == 1:
        only = round(samples_ms[0], 2)
        return {"count": 1, "p50_ms": only, "p95_ms": only, "p99_ms": only, "max_ms": only}
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "count": len(samples_ms),
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(max(samples_ms), 2),
    }


@dataclass
class _Timings:
    """One reader's latencies (ms): per query, and per whole view."""

    queries: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in QUERIES})
    views: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Dashboard:
    """What a reader needs to open views: the app's read functions, uncached, on one engine."""

    sprint_data: ModuleType
    engine: sa.Engine
    users: dict[str, str]
    trend_sprints: int

    def read(self, name: str) -> Callable[..., Any]:
        function: Callable[..., Any] = self.sprint_data.uncached(getattr(self.sprint_data, name))
        return function

    def view(self, rng: random.Random, tenant: str, timings: _Timings | None) -> None:
        """Open the dashboard on a random project and sprint of ``tenant``, timing every read."""
        email = self.users[tenant]

        def timed(name: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = self.read(name)(email, tenant, *args, _bind=self.engine, **kwargs)
            if timings is not None:
                timings.queries[name].append(1000 * (time.perf_counter() - started))
            return result

        started = time.perf_counter()
        projects = timed("projects")
        with_sprints = projects.loc[projects["sprints"] > 0, "project_key"].tolist()
        if not with_sprints:
            raise RuntimeError(f"tenant {tenant} has no project with sprints in marts.dim_projects/dim_sprints")
        sprints = timed("sprints", rng.choice(with_sprints))
        sprint_uid = rng.choice(sprints["sprint_uid"].tolist())
        timed("sprint_headline", sprint_uid)
        timed("sprint_trend", sprint_uid, self.trend_sprints)
        timed("sprint_developers", sprint_uid)
        timed("sprint_open_flags", sprint_uid)
        timed("sprint_pr_health", sprint_uid)
        if timings is not None:
            timings.views.append(1000 * (time.perf_counter() - started))


def _tenants_with_sprints(conn: sa.Connection, tenants: Sequence[str]) -> list[str]:
    rows = conn.execute(
        sa.text("select distinct tenant_id from marts.dim_sprints where tenant_id = any(:tenants)"),
        {"tenants": list(tenants)},
    ).all()
    found = {row.tenant_id for row in rows}
    return [tenant for tenant in tenants if tenant in found]


def measure(
    database_url_admin: str,
    reader_database_url: str,
    tenants: Sequence[str],
    *,
    readers: int = 10,
    rounds: int = 20,
    trend_sprints: int = 12,
    seed: int = 0,
) -> dict[str, Any]:
    """Time the Sprint dashboard's reads at ``readers`` concurrent users; returns the figures.

    ``database_url_admin``: the admin role's URL (creates the benchmark users, finds the tenants
    that have sprints); ``reader_database_url``: the row-level-security reader role's URL
    (``pulse.db.reader_url(settings)``), which every timed read uses. Each of the ``readers``
    threads opens ``rounds`` dashboard views (:data:`QUERIES`, one after the other) of a random
    tenant, project and sprint; ``seed`` makes the picks repeatable. One untimed view per tenant
    warms up first. Tenants without sprints are left out (listed in the figures).

    Figures: per query and over every query (``overall``) count, p50, p95, p99 and max in ms;
    ``view`` the same for whole views; ``queries``, ``seconds`` (wall time of the timed part),
    ``queries_per_second``, ``meets_goal`` (overall p95 under 200 ms).
    """
    if readers < 1 or rounds < 1:
        raise ValueError(f"readers and rounds must be at least 1 (got {readers} and {rounds})")
    if not tenants:
        raise ValueError("no tenants to read: pass at least one tenant slug")
    from pulse.db import sqlalchemy_url

    admin = sa.create_engine(sqlalchemy_url(database_url_admin))
    try:
        with admin.begin() as conn:
            users = ensure_bench_users(conn, tenants)
            readable = _tenants_with_sprints(conn, tenants)
    finally:
        admin.dispose()
    if not readable:
        raise ValueError(f"none of the tenants {', '.join(tenants)} has sprints in marts.dim_sprints: build the marts")
    data, sprint_data = app_modules()
    engine: sa.Engine = data.reader_engine(
        reader_database_url, pool_size=readers, max_overflow=0, application_name="pulse-bench-dashboard"
    )
    dashboard = _Dashboard(sprint_data, engine, users, trend_sprints)
    try:
        warm_started = time.perf_counter()
        for index, tenant in enumerate(readable):
            dashboard.view(random.Random(f"{seed}:warm:{index}"), tenant, None)
        warmup_seconds = time.perf_counter() - warm_started

        def reader(index: int) -> _Timings:
            rng = random.Random(f"{seed}:{index}")
            timings = _Timings()
            for _ in range(rounds):
                dashboard.view(rng, rng.choice(readable), timings)
            return timings

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="dashboard-reader") as pool:
            results = list(pool.map(reader, range(readers)))
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()

    per_query = {name: [ms for timings in results for ms in timings.queries[name]] for name in QUERIES}
    every = [ms for samples in per_query.values() for ms in samples]
    overall = percentiles(every)
    return {
        "path": "sprint_data.<read> (uncached) -> data.scoped: pulse_reader transaction, control.user_grants "
        "check, set_config('pulse.tenant_ids') -> the query -> DataFrame",
        "readers": readers,
        "rounds": rounds,
        "tenants": len(readable),
        "tenants_without_sprints": [tenant for tenant in tenants if tenant not in readable],
        "views": readers * rounds,
        "queries": len(every),
        "seconds": round(seconds, 2),
        "queries_per_second": round(len(every) / seconds, 1) if seconds else None,
        "warmup_seconds": round(warmup_seconds, 2),
        "overall": overall,
        "per_query": {name: percentiles(samples) for name, samples in per_query.items()},
        "view": percentiles([ms for timings in results for ms in timings.views]),
        "goal_p95_ms": GOAL_P95_MS,
        "meets_goal": bool(overall.get("p95_ms", float("inf")) < GOAL_P95_MS),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", required=True, help="comma-separated tenant slugs, e.g. acme,globex,initech")
    parser.add_argument("--readers", type=int, default=10, help="concurrent dashboard users")
    parser.add_argument("--rounds", type=int, default=20, help="dashboard views per reader")
    parser.add_argument("--trend-sprints", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS / "dashboard_queries.json")
    args = parser.parse_args()
    tenants = [tenant.strip() for tenant in args.tenants.split(",") if tenant.strip()]

    from pulse.db import database_url, reader_url
    from pulse.settings import get_settings

    settings = get_settings()
    figures: dict[str, Any] = {
        "benchmark": "dashboard_queries",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        **measure(
            database_url(settings),
            reader_url(settings),
            tenants,
            readers=args.readers,
            rounds=args.rounds,
            trend_sprints=args.trend_sprints,
            seed=args.seed,
        ),
    }
    print(f"{figures['queries']} queries by {figures['readers']} readers in {figures['seconds']} s")
    rows = [*figures["per_query"].items(), ("(every query)", figures["overall"]), ("(whole view)", figures["view"])]
    for name, row in rows:
        print(
            f"{name:20s} p50 {row['p50_ms']:8.2f} ms  p95 {row['p95_ms']:8.2f} ms  "
            f"p99 {row['p99_ms']:8.2f} ms  max {row['max_ms']:8.2f} ms"
        )
    print(f"goal p95 < {GOAL_P95_MS:.0f} ms: {'met' if figures['meets_goal'] else 'NOT met'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
