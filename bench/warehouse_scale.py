"""Benchmark: the marts at 50 tenants × 2 years — full build, a day later, and dashboard reads.

Three tenants, one per tool mix (acme: Jira + GitHub; globex: ClickUp + GitHub; initech:
Azure Boards + Azure DevOps Git; each with the agent platform), are served by the sandbox with
two years of history and loaded by the real connectors over real HTTP. Each is then copied,
raw schema by raw schema, into further tenants until there are ``--tenants`` (the connectors'
speed is measured by bench/work_items_throughput.py; this one measures the warehouse).

1. full build: ``dbt build --full-refresh`` of the delivery, compliance, agent and account
   marts and every model they are built from, for every tenant at once (unit tests excluded:
   CI runs them; data tests included, as in production, where the tests a constraint stands
   for are answered from the catalog after the build: pulse/enforced_tests.py);
2. one more day: the sandbox moves a day on, the three tenants are loaded incrementally, each
   copy receives exactly the rows its original gained and lost, and the same ``dbt build``
   runs again, incrementally;
3. nothing new: that build once more, with no new data: the cost every run pays whatever the
   data (dbt's start, each node's compile and queries, each test's pass), which bounds the
   day's speed-up (``speedup_ceiling``);
4. dashboard reads: the sprint dashboard's queries (apps/streamlit/sprint_data.py) through the
   row-level-security reader role at ``--readers`` concurrent readers (bench/dashboard_queries.py).

The builds run ``pulse-dbt``, as Dagster's do, with a ``pulse dbt-server`` started for the run
(dbt imported once, each build forked from it; compiled templates kept in the home:
pulse/warm_dbt.py); ``--plain-dbt`` times dbt's own executable instead.

Each build is timed ``--repeat`` times (default 3; on this kind of machine one run of the same
build varies by ±20-40%) and the run of median wall time is reported, with every run's seconds
(``runs_seconds``): the full build three times over; the day's build from the same state three
times (on two copies of the database made with ``create database … template``, then on the
database itself; the bench stops before loading the day when the disk cannot hold the copies);
the build with nothing new three times. ``speedup`` is the median full build over the median day.

Figures (with the slowest models of each build) go to bench/results/warehouse_scale.json, or to
the file ``--results`` names (another world's figures, so they do not replace the issue's).

    .venv/bin/python bench/warehouse_scale.py [--tenants 50] [--history-days 730]
        [--work-scale 4] [--activity-scale 2] [--repeat 3] [--home DIR [--reuse]] [--results NAME]
        [--plain-dbt]

``--home`` keeps the database in DIR; ``--reuse`` skips the loading and copying when DIR already
holds them (to re-time the builds after changing a model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

RESULTS = Path(__file__).resolve().parent / "results"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ("acme", "globex", "initech")
#: What the builds select: these marts and every model they are built from.
MARTS = ("marts.delivery", "marts.compliance", "marts.agents", "marts.accounts")
#: Pull requests and work items each tenant's day moves on (and agent runs it finishes).
TOUCHES = 20
SOURCE_TYPES = ("jira", "clickup", "azure_boards", "github", "azure_devops_git", "agent_platform")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_slug(template: str, number: int) -> str:
    return f"{template}{number:02d}"


def tenant_slugs(count: int) -> list[str]:
    """The templates, then copies of each in turn (acme01, globex02, initech03, acme04, ...)."""
    slugs = list(TEMPLATES[:count])
    for number in range(1, count - len(slugs) + 1):
        slugs.append(copy_slug(TEMPLATES[(number - 1) % len(TEMPLATES)], number))
    return slugs


def template_of(slug: str) -> str:
    return slug.rstrip("0123456789")


# -- loading and copying --------------------------------------------------------------------


def load_templates(settings: Any) -> dict[str, dict[str, int]]:
    """Load every source of the template tenants; rows by source type and tenant."""
    from pulse import control
    from pulse.db import admin_engine
    from pulse.ingest import load_tenant_sources

    rows: dict[str, dict[str, int]] = {}
    for slug in TEMPLATES:
        with admin_engine(settings).begin() as conn:
            types = sorted({source.type for source in control.list_sources(conn, slug)})
        for source_type in types:
            started = time.perf_counter()
            loads = load_tenant_sources(settings, slug, source_type)
            count = sum(sum(load.rows_by_table.values()) for load in loads)
            rows.setdefault(slug, {})[source_type] = count
            print(f"  {slug} {source_type}: {count} rows in {time.perf_counter() - started:.1f} s", flush=True)
    return rows


def raw_schemas(conn: Any, slug: str) -> list[tuple[str, str]]:
    """(schema, source type) of every raw schema of tenant ``slug``."""
    from sqlalchemy import text

    found = conn.execute(
        text("select nspname from pg_namespace where nspname like 'raw\\_%\\_\\_' || :slug"), {"slug": slug}
    ).scalars()
    pairs = []
    for schema in found:
        source_type = schema[len("raw_") : -len("__" + slug)]
        if source_type in SOURCE_TYPES:
            pairs.append((schema, source_type))
    return sorted(pairs)


def tables_of(conn: Any, schema: str) -> list[str]:
    from sqlalchemy import text

    return list(
        conn.execute(
            text("select tablename from pg_tables where schemaname = :schema order by tablename"), {"schema": schema}
        ).scalars()
    )


def columns_of(conn: Any, schema: str, table: str) -> dict[str, str]:
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = (quote_ident(:schema) || '.' || quote_ident(:table))::regclass "
            "and attnum > 0 and not attisdropped order by attnum"
        ),
        {"schema": schema, "table": table},
    )
    return {name: kind for name, kind in rows}


def make_copies(settings: Any, slugs: Sequence[str]) -> None:
    """Create each copy tenant (control plane, teams) and its raw schemas as copies of its
    template's."""
    from sqlalchemy import text

    from pulse import control
    from pulse.db import admin_engine
    from pulse.demo import ACTOR, DEMO_TEAMS

    engine = admin_engine(settings)
    for slug in slugs:
        template = template_of(slug)
        if slug == template:
            continue
        started = time.perf_counter()
        with engine.begin() as conn:
            original = control.get_tenant(conn, template)
            assert original is not None, f"template tenant {template} is missing"
            if control.get_tenant(conn, slug) is None:
                control.add_tenant(conn, slug, f"{original.name} {slug[len(template) :]}", actor=ACTOR,
                                   timezone=original.timezone)  # fmt: skip
            for team_slug, team_name in DEMO_TEAMS:
                control.add_team(conn, slug, team_slug, team_name, actor=ACTOR)
            for schema, source_type in raw_schemas(conn, template):
                target = f"raw_{source_type}__{slug}"
                conn.execute(text(f'drop schema if exists "{target}" cascade'))
                conn.execute(text(f'create schema "{target}"'))
                for table in tables_of(conn, schema):
                    conn.execute(text(f'create table "{target}"."{table}" (like "{schema}"."{table}" including all)'))
                    conn.execute(text(f'insert into "{target}"."{table}" select * from "{schema}"."{table}"'))
        print(f"  copied {template} to {slug} in {time.perf_counter() - started:.1f} s", flush=True)


def follow_templates(settings: Any, slugs: Sequence[str]) -> dict[str, int]:
    """Give each copy exactly the rows its template gained and lost since the copies were made
    (rows compared whole; a column the template gained is added first). Rows inserted and
    deleted, summed over the copies."""
    from sqlalchemy import text

    from pulse.db import admin_engine

    totals = {"inserted": 0, "deleted": 0}
    engine = admin_engine(settings)
    for slug in slugs:
        template = template_of(slug)
        if slug == template:
            continue
        with engine.begin() as conn:
            for schema, source_type in raw_schemas(conn, template):
                target = f"raw_{source_type}__{slug}"
                existing = set(tables_of(conn, target))
                for table in tables_of(conn, schema):
                    source_columns = columns_of(conn, schema, table)
                    if table not in existing:
                        conn.execute(
                            text(f'create table "{target}"."{table}" (like "{schema}"."{table}" including all)')
                        )
                    else:
                        have = columns_of(conn, target, table)
                        for name, kind in source_columns.items():
                            if name not in have:
                                conn.execute(text(f'alter table "{target}"."{table}" add column "{name}" {kind}'))
                    names = ", ".join(f'"{name}"' for name in source_columns)
                    source, copy = f'"{schema}"."{table}"', f'"{target}"."{table}"'
                    fingerprint = f"md5(row({names})::text)"
                    deleted = conn.execute(
                        text(
                            f"delete from {copy} where {fingerprint} in "
                            f"(select {fingerprint} from {copy} except select {fingerprint} from {source})"
                        )
                    ).rowcount
                    inserted = conn.execute(
                        text(
                            f"insert into {copy} ({names}) select {names} from {source} where {fingerprint} in "
                            f"(select {fingerprint} from {source} except select {fingerprint} from {copy})"
                        )
                    ).rowcount
                    totals["inserted"] += inserted
                    totals["deleted"] += deleted
    return totals


def set_budgets(settings: Any, slugs: Sequence[str]) -> None:
    """A monthly budget for every tenant and each of its teams (what fct_budget_utilization
    measures against)."""
    from pulse.budgets.store import set_budget
    from pulse.db import admin_engine
    from pulse.demo import ACTOR, DEMO_TEAMS

    with admin_engine(settings).begin() as conn:
        for slug in slugs:
            set_budget(conn, slug, 5000, actor=ACTOR)
            for team_slug, _ in DEMO_TEAMS:
                set_budget(conn, slug, 2000, actor=ACTOR, team_slug=team_slug)


def raw_counts(settings: Any, slugs: Sequence[str]) -> dict[str, int]:
    """Rows of each raw table, summed over every tenant (exact counts)."""
    from sqlalchemy import text

    from pulse.db import admin_engine

    totals: dict[str, int] = {}
    with admin_engine(settings).connect() as conn:
        for slug in slugs:
            for schema, _ in raw_schemas(conn, slug):
                for table in tables_of(conn, schema):
                    count: int = conn.execute(text(f'select count(*) from "{schema}"."{table}"')).scalar_one()
                    totals[table] = totals.get(table, 0) + int(count)
    return dict(sorted(totals.items()))


def mart_counts(settings: Any) -> dict[str, int]:
    from sqlalchemy import text

    from pulse.db import admin_engine

    with admin_engine(settings).connect() as conn:
        tables: list[str] = list(
            conn.execute(
                text("select tablename from pg_tables where schemaname in ('marts') order by tablename")
            ).scalars()
        )
        counts = {}
        for table in tables:
            counts[table] = int(conn.execute(text(f'select count(*) from marts."{table}"')).scalar_one())
        return counts


def table_checksums(
    settings: Any, schemas: Sequence[str] = ("staging", "intermediate", "marts"), *, dbname: str | None = None
) -> dict[str, str]:
    """An order-independent checksum of every table's rows in ``schemas`` (of the warehouse, or
    of the cluster's database ``dbname``)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from pulse.db import database_url

    url = database_url(settings)
    with psycopg.connect(make_conninfo(url, dbname=dbname) if dbname else url) as conn:
        tables = [
            table
            for (table,) in conn.execute(
                "select schemaname || '.' || tablename from pg_tables where schemaname = any(%s) order by 1",
                (list(schemas),),
            )
        ]
        return {
            table: str(
                conn.execute(
                    "select count(*) || ':' || coalesce(md5(string_agg(h, '' order by h)), '') "
                    f"from (select md5(t::text) as h from {table} as t) as rows"
                ).fetchone()[0]  # type: ignore[index]
            )
            for table in tables
        }


def keep_copies(settings: Any, into: str, schemas: Sequence[str] = ("staging", "intermediate", "marts")) -> None:
    """Copy every table of ``schemas`` into schema ``into`` (to look at what differs)."""
    from sqlalchemy import text

    from pulse.db import admin_engine

    with admin_engine(settings).begin() as conn:
        conn.execute(text(f"drop schema if exists {into} cascade"))
        conn.execute(text(f"create schema {into}"))
        tables = conn.execute(
            text("select schemaname, tablename from pg_tables where schemaname = any(:schemas)"),
            {"schemas": list(schemas)},
        ).all()
        for schema, table in tables:
            conn.execute(text(f'create table {into}."{schema}__{table}" as select * from {schema}."{table}"'))


def maintenance_connection(settings: Any) -> Any:
    """An autocommit psycopg connection to the cluster's ``postgres`` database (to create and
    drop databases), and the warehouse database's name."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from pulse.db import database_url

    url = database_url(settings)
    return psycopg.connect(url, dbname="postgres", autocommit=True), conninfo_to_dict(url)["dbname"]


def make_database_copies(settings: Any, names: Sequence[str], template: str | None = None) -> None:
    """Copies of the warehouse database (or of the cluster's database ``template``) under ``names``
    (``create database … template``), to time the same build from the same state more than once;
    earlier copies of those names are dropped first. A checkpoint after them, so that writing the
    copies out does not fall in a timed build."""
    connection, warehouse = maintenance_connection(settings)
    original = template or warehouse
    with connection as conn:
        for name in names:
            # a template must have no other session (pooled ones reconnect: pool_pre_ping)
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                (original,),
            )
            conn.execute(f'drop database if exists "{name}"')
            conn.execute(f'create database "{name}" template "{original}"')
        conn.execute("checkpoint")


#: Room to leave beside the database copies: what the builds on them write (new tables of a
#: full refresh, temporary tables, WAL).
COPY_HEADROOM_BYTES = 4 * 1024**3


def check_room_for_copies(settings: Any, names: Sequence[str]) -> None:
    """Stop, saying what to do, when the disk cannot hold copies ``names`` of the warehouse
    database with room to spare: a disk that fills stops the cluster in the middle of a build.
    Checked before the day loads: a day loaded but never built would make the next run's day
    two days."""
    connection, original = maintenance_connection(settings)
    with connection as conn:
        size = conn.execute("select pg_database_size(%s)", (original,)).fetchone()[0]
        # copies left by an interrupted run are dropped first: their room counts
        existing = conn.execute(
            "select coalesce(sum(pg_database_size(datname)), 0) from pg_database where datname = any(%s)",
            (list(names),),
        ).fetchone()[0]
    needed = size * len(names) - int(existing) + COPY_HEADROOM_BYTES
    free = shutil.disk_usage(settings.home).free
    if needed > free:
        gib = 1024**3
        raise SystemExit(
            f"The day's builds run on {len(names)} copies of the warehouse database "
            f"({size / gib:.1f} GiB each): they need {needed / gib:.1f} GiB with "
            f"{COPY_HEADROOM_BYTES // gib} GiB to spare, and {settings.home} has {free / gib:.1f} GiB free. "
            "Free some space, or run with a smaller --repeat (each run after the first is one copy). "
            "The day was not loaded."
        )


def drop_databases(settings: Any, names: Sequence[str]) -> None:
    connection, _ = maintenance_connection(settings)
    with connection as conn:
        for name in names:
            conn.execute(f'drop database if exists "{name}"')


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (the lower middle one of an even count), with every run's
    seconds in ``runs_seconds`` in the order they ran."""
    middle = sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]
    return {**middle, "runs_seconds": [run["seconds"] for run in runs]}


def world_day_of(home: Path) -> datetime:
    """The day this home's world was generated on (bench-day)."""
    return datetime.fromisoformat((home / "bench-day").read_text()).replace(tzinfo=UTC)


def days_loaded(home: Path) -> int:
    """How many days runs on this home loaded after the world's history (bench-days)."""
    days_file = home / "bench-days"
    return int(days_file.read_text()) if days_file.exists() else 0


def use_built_home(home: Path) -> None:
    """Point Pulse at the home of an earlier run (``--home``, loaded and built), for the benchmarks
    that work on its warehouse; exit with what to run when it holds no world."""
    if not (home / "bench-loaded").exists() or not (home / "bench-port").exists():
        raise SystemExit(f"{home} holds no world of warehouse_scale: run bench/warehouse_scale.py --home {home} first")
    os.environ.update({"PULSE_HOME": str(home), "PULSE_DB_PORT": (home / "bench-port").read_text().strip()})
    os.environ.pop("PULSE_DATABASE_URL", None)


@contextmanager
def running_built_home(home: Path, *, warm_dbt: bool = False) -> Iterator[Any]:
    """The settings of an earlier run's home (use_built_home), its cluster started and, with
    ``warm_dbt``, a warm dbt server for the builds (warm_dbt_server); both stopped after."""
    use_built_home(home)
    from pulse.db import database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.settings import get_settings

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    try:
        database_url(settings)  # starts the embedded cluster
        with warm_dbt_server(home) if warm_dbt else nullcontext():
            yield settings
    finally:
        cluster.stop()


def world_sandbox(home: Path, *, activity_scale: float, work_scale: float, history_days: int) -> tuple[Any, datetime]:
    """The sandbox serving this home's world (not started), and the world's day. The day is
    fixed in the home (bench-day): the worlds are a function of it, so a --reuse run sees the
    same sandbox."""
    from connectors.sandbox import SandboxServer

    day_file = home / "bench-day"
    if not day_file.exists():
        day_file.write_text(datetime.now(UTC).date().isoformat())
    world_day = world_day_of(home)
    sandbox = SandboxServer(
        seed=42,
        now=world_day,
        scale=activity_scale,
        work_scale=work_scale,
        history_days=history_days,
        activity_history_days=history_days,
        rate_limit=10**9,
    )
    sandbox.tool_rate_limit = 10**9
    return sandbox, world_day


def replay_days(home: Path, sandbox: Any) -> int:
    """Move the (started) sandbox on by the days earlier runs on this home did (bench-days; the
    worlds' advances are deterministic), so that it serves what the database already holds; their
    number."""
    days = days_loaded(home)
    for _ in range(days):
        sandbox.advance(days=1, touches_per_tenant=TOUCHES)
    return days


def load_one_more_day(settings: Any, sandbox: Any, home: Path, slugs: Sequence[str], days: int) -> dict[str, Any]:
    """Move the sandbox on a day, load the three templates incrementally and give each copy what
    its template gained and lost; the home then counts one day more. The figures of the load."""
    sandbox.advance(days=1, touches_per_tenant=TOUCHES)
    started = time.perf_counter()
    figures: dict[str, Any] = {"day_template_rows": load_templates(settings)}
    (home / "bench-days").write_text(str(days + 1))
    figures["day_copy"] = follow_templates(settings, slugs)
    figures["day_load_seconds"] = round(time.perf_counter() - started, 1)
    return figures


def build_as_of(world_day: datetime, days: int) -> datetime:
    """The "now" of the builds after ``days`` days of the world, as a scheduled run's: after
    everything loaded (the sandbox's events are up to its day; Pulse's own stamps, such as ClickUp
    sprint memberships, are the clock's)."""
    return max(world_day + timedelta(days=days, hours=6), datetime.now(UTC).replace(microsecond=0))


# -- dbt ----------------------------------------------------------------------------------


@contextmanager
def warm_dbt_server(home: Path) -> Iterator[None]:
    """``pulse dbt-server`` for this home while the builds run, as a deployment runs one beside
    Dagster: the builds' ``pulse-dbt`` forks from it."""
    from pulse.warm_dbt import connect, socket_path

    server = subprocess.Popen([str(Path(sys.executable).with_name("pulse")), "dbt-server"], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while (connection := connect(socket_path())) is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pulse dbt-server did not start listening on {socket_path()}")
            time.sleep(0.1)
        connection.close()
        yield
    finally:
        server.terminate()
        server.wait(30)


def dbt_build(
    settings: Any,
    *,
    full_refresh: bool,
    as_of: datetime,
    project: Path | None = None,
    label: str | None = None,
    dbname: str | None = None,
    wrap: Sequence[str] = (),
    executable: str = "pulse-dbt",
) -> dict[str, Any]:
    """One ``dbt build`` of the marts and their parents for every tenant; wall seconds, and the
    slowest nodes from run_results.json (kept as run_results_<label>.json in the home).
    ``dbname``: build that database of the cluster (a copy) instead of the warehouse; ``wrap``: a
    command that runs ``dbt build`` (a profiler's, ending in ``--``); ``executable``: ``pulse-dbt``,
    what Dagster runs (forked warm from ``pulse dbt-server`` while warm_dbt_server runs one;
    compiled templates kept in the home), or ``dbt``, dbt's own (a new process importing dbt and
    compiling every template, every build)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from pulse.db import database_url
    from pulse.dbt import DBT_PROJECT_DIR, dbt_env
    from pulse.enforced_tests import enforced_tests, exclusions, verify

    selection = [f"+{mart}" for mart in MARTS]
    # its own: another dbt run in the checkout cannot clobber it; and one per project, as dbt's
    # partial parse would otherwise read one project's saved manifest for another's (day_ab.py)
    target = settings.home / "dbt-target"
    if project is not None and project.resolve() != DBT_PROJECT_DIR.resolve():
        target = settings.home / f"dbt-target-{hashlib.md5(str(project.resolve()).encode()).hexdigest()[:8]}"
    env = {**os.environ, **dbt_env(settings, as_of=as_of)}
    if dbname:
        env["PULSE_DBT_DBNAME"] = dbname
    dbt = str(Path(sys.executable).with_name(executable))
    project_dir = str(project or DBT_PROJECT_DIR)
    # As the Dagster steps do: the tests a constraint stands for are answered from the catalog.
    parse = [str(Path(sys.executable).with_name("dbt")), "parse", "--project-dir", project_dir]
    subprocess.run([*parse, "--target-path", str(target), "--quiet"], env=env, check=True)
    manifest = json.loads((target / "manifest.json").read_text())
    enforced = enforced_tests(manifest)
    command = [
        *wrap,
        dbt,
        "build",
        "--project-dir",
        project_dir,
        "--target-path",
        str(target),
        "--select",
        *selection,
        "--exclude",
        "test_type:unit",
        *exclusions(manifest),
        "--quiet",
    ]
    if full_refresh:
        command.append("--full-refresh")
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-5000:], done.stderr[-5000:], sep="\n")
        raise RuntimeError(f"dbt build failed (exit code {done.returncode}); see its output above")
    checked = time.perf_counter()
    results = json.loads((target / "run_results.json").read_text())["results"]
    built = {r["unique_id"] for r in results if r["status"] == "success"}
    enforced = [test for test in enforced if test.model_id in built]
    url = make_conninfo(database_url(settings), dbname=dbname) if dbname else database_url(settings)
    with psycopg.connect(url) as connection:
        failed = [verdict.message for verdict in verify(connection, enforced) if not verdict.passed]
    if failed:
        raise RuntimeError("enforced tests failed:\n" + "\n".join(failed))
    seconds = time.perf_counter() - started
    check_seconds = time.perf_counter() - checked
    # kept per kind of build, to look at a run's timeline afterwards
    label = label or ("full" if full_refresh else "incremental")
    shutil.copyfile(target / "run_results.json", settings.home / f"run_results_{label}.json")
    nodes = sorted(
        ({"node": r["unique_id"].split(".", 2)[-1], "seconds": round(r["execution_time"], 2)} for r in results),
        key=lambda node: -node["seconds"],
    )
    model_seconds = sum(r["execution_time"] for r in results if r["unique_id"].startswith("model."))
    test_seconds = sum(r["execution_time"] for r in results if r["unique_id"].startswith("test."))
    return {
        "seconds": round(seconds, 1),
        "model_seconds": round(model_seconds, 1),
        "test_seconds": round(test_seconds, 1),
        "nodes": len(results),
        "enforced_tests": len(enforced),
        "enforced_test_seconds": round(check_seconds, 3),
        "slowest": nodes[:12],
        "models": {
            r["unique_id"].split(".")[-1]: round(r["execution_time"], 2)
            for r in results
            if r["unique_id"].startswith("model.")
        },
    }


# -- the run --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--history-days", type=int, default=730)
    parser.add_argument("--work-scale", type=float, default=4.0, help="planning world scale (4 ≈ 9k items in 2 years)")
    parser.add_argument("--activity-scale", type=float, default=2.0, help="pull request and agent run scale")
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--home", help="keep the database here (default: a new temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="with --home: skip loading if already loaded")
    parser.add_argument("--skip-dashboard", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="stop after loading and copying")
    parser.add_argument(
        "--skip-full",
        action="store_true",
        help="with --reuse: the full build of this home's world was done before (refused otherwise)",
    )
    parser.add_argument("--dbt-project", type=Path, help="time this dbt project (default: the checkout's)")
    parser.add_argument(
        "--results",
        default="warehouse_scale.json",
        help="file name under bench/results for the figures (default warehouse_scale.json: the issue's world; "
        "name another world's, such as --history-days 1460, apart)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="time each build this many times and report the median run (default 3: one run varies by ±20-40%%)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="after the incremental build, rebuild in full and compare every table"
    )
    parser.add_argument(
        "--plain-dbt",
        action="store_true",
        help="build with dbt's own executable, not pulse-dbt and a warm dbt server (what Dagster runs)",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    slugs = tenant_slugs(args.tenants)

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="pulse-scale-"))
    home.mkdir(parents=True, exist_ok=True)
    port_file = home / "bench-port"
    port = int(port_file.read_text()) if port_file.exists() else free_port()
    port_file.write_text(str(port))
    os.environ.update({"PULSE_HOME": str(home), "PULSE_DB_PORT": str(port)})
    os.environ.pop("PULSE_DATABASE_URL", None)

    from pulse.db.embedded import EmbeddedPostgres
    from pulse.db.migrate import migrate
    from pulse.dbt import ensure_manifest
    from pulse.demo import seed_demo
    from pulse.settings import get_settings

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    ensure_manifest()
    figures: dict[str, Any] = {
        "benchmark": "warehouse_scale",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "tenants": len(slugs),
        "history_days": args.history_days,
    }
    sandbox, world_day = world_sandbox(
        home, activity_scale=args.activity_scale, work_scale=args.work_scale, history_days=args.history_days
    )

    executable = "dbt" if args.plain_dbt else "pulse-dbt"

    def timed(label: str, *, full_refresh: bool, as_of: datetime, databases: Sequence[str | None]) -> dict[str, Any]:
        """The build once on each of ``databases`` in turn (None: the warehouse): the median run."""
        runs = [
            dbt_build(
                settings,
                full_refresh=full_refresh,
                as_of=as_of,
                project=args.dbt_project,
                label=f"{label}_{run}",
                dbname=database,
                executable=executable,
            )
            for run, database in enumerate(databases, start=1)
        ]
        return median_run(runs)

    servers = ExitStack()
    try:
        from pulse.db import database_url

        database_url(settings)  # starts the embedded cluster
        migrate(settings)
        sandbox.start()
        if not args.plain_dbt:
            servers.enter_context(warm_dbt_server(home))
        figures["dbt"] = "dbt (its own executable)" if args.plain_dbt else "pulse-dbt (warm dbt server)"
        days = replay_days(home, sandbox)
        loaded_marker = home / "bench-loaded"
        if not (args.reuse and loaded_marker.exists()):
            started = time.perf_counter()
            seed_demo(settings, sandbox)
            print("loading the three template tenants over HTTP ...", flush=True)
            figures["template_rows"] = load_templates(settings)
            figures["template_load_seconds"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            print(f"copying them to {len(slugs)} tenants ...", flush=True)
            make_copies(settings, slugs)
            figures["copy_seconds"] = round(time.perf_counter() - started, 1)
            loaded_marker.write_text("yes")
        else:
            seed_demo(settings, sandbox)  # points the templates' sources at this sandbox's URL
        set_budgets(settings, slugs)
        figures["raw_rows"] = raw_counts(settings, slugs)
        print("raw rows:", json.dumps(figures["raw_rows"]), flush=True)
        if args.load_only:
            return 0

        # "now" of the builds; the day after, one day later
        as_of = build_as_of(world_day, days)
        figures["world_day"] = world_day.date().isoformat()
        if args.skip_full:
            recorded = json.loads((RESULTS / args.results).read_text())
            if recorded.get("world_day") != figures["world_day"]:
                raise SystemExit(
                    f"--skip-full: the recorded full build is of the world of "
                    f"{recorded.get('world_day', 'an unknown day')}, this home's ({home}) is of "
                    f"{figures['world_day']}: the ratio would compare two worlds. "
                    "Run without --skip-full to time this home's full build."
                )
            figures = {**recorded, **figures}
        else:
            print(f"full dbt build × {args.repeat} ...", flush=True)
            figures["full_build"] = timed("full", full_refresh=True, as_of=as_of, databases=[None] * args.repeat)
            print(f"full build: {figures['full_build']['runs_seconds']} s", flush=True)
            figures["mart_rows"] = mart_counts(settings)
            record(figures, args.results)

        # the day's build from the same state each time: on copies of the database, then on it
        copies = [f"bench_copy_{run}" for run in range(1, args.repeat)]
        check_room_for_copies(settings, copies)
        print("one more day ...", flush=True)
        figures.update(load_one_more_day(settings, sandbox, home, slugs, days))
        try:
            make_database_copies(settings, copies)
            figures["incremental_build"] = timed(
                "incremental", full_refresh=False, as_of=as_of + timedelta(days=1), databases=[*copies, None]
            )
        finally:
            drop_databases(settings, copies)
        print(f"incremental build: {figures['incremental_build']['runs_seconds']} s", flush=True)
        figures["speedup"] = round(figures["full_build"]["seconds"] / figures["incremental_build"]["seconds"], 1)
        figures["model_speedup"] = round(
            figures["full_build"]["model_seconds"] / figures["incremental_build"]["model_seconds"], 1
        )
        # The same build again with nothing new: what every run costs whatever the data (dbt's
        # start, each node's compile and round trips, each model finding nothing to do, each test's
        # pass). The day cannot be faster than this, so full / this bounds the speed-up.
        figures["no_change_build"] = timed(
            "no_change", full_refresh=False, as_of=as_of + timedelta(days=1), databases=[None] * args.repeat
        )
        figures["speedup_ceiling"] = round(figures["full_build"]["seconds"] / figures["no_change_build"]["seconds"], 1)
        print(f"the same build with nothing new: {figures['no_change_build']['runs_seconds']} s", flush=True)
        record(figures, args.results)
        if args.verify:
            incremental = table_checksums(settings)
            keep_copies(settings, "bench_incremental")
            dbt_build(
                settings,
                full_refresh=True,
                as_of=as_of + timedelta(days=1),
                project=args.dbt_project,
                executable=executable,
            )
            full = table_checksums(settings)
            figures["verify"] = {
                "tables": len(full),
                "differ": sorted(table for table in full if incremental.get(table) != full[table]),
            }
            print("incremental vs full rebuild, tables that differ:", figures["verify"]["differ"], flush=True)
            record(figures, args.results)

        if not args.skip_dashboard:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from dashboard_queries import measure

            from pulse.db import reader_url

            figures["dashboard"] = measure(database_url(settings), reader_url(settings), slugs, readers=args.readers)
            record(figures, args.results)
    finally:
        servers.close()
        sandbox.stop()
        cluster.stop()
    print(json.dumps({k: v for k, v in figures.items() if k not in ("raw_rows", "mart_rows")}, indent=2))
    return 0


def record(figures: dict[str, Any], name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
