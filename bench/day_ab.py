"""Benchmark: one day's incremental build with two versions of the dbt project, from one state.

bench/warehouse_scale.py times the day's build on a new day each run, and the days of one world
differ by more than most changes (the same code took 22.4-28.5 s on five days in a row). To
measure a change, this builds the same day with both versions, from the same database:

1. on warehouse_scale's home (``--home``, loaded and built by it), one more day is loaded, as
   warehouse_scale does, and the database is kept unbuilt as a template (``create database …
   template``);
2. ``--repeat`` times, a copy of the template is built incrementally with the ``--before``
   project, then another with the ``--after`` project (alternating, so that the machine's drift
   falls on both), each timed as warehouse_scale times a build; each pair's tables are compared
   (count and md5 of every row of every table);
3. the warehouse itself is then built with the ``--after`` project, so that the home is a built
   day further on for warehouse_scale's next run.

The disk needs room for two more copies of the warehouse database (the template and one build).

    .venv/bin/python bench/day_ab.py --home DIR --before OTHER_CHECKOUT/dbt_project
        [--after dbt_project] [--repeat 3] [--results day_ab.json]

Figures go to bench/results/day_ab.json: each version's runs, their median, and the tables
that differed between the two builds of a pair (none when the change keeps the rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warehouse_scale import (
    build_as_of,
    check_room_for_copies,
    dbt_build,
    drop_databases,
    load_one_more_day,
    make_database_copies,
    record,
    replay_days,
    running_built_home,
    table_checksums,
    tenant_slugs,
    world_sandbox,
)

from pulse.dbt import DBT_PROJECT_DIR

TEMPLATE, COPY = "day_ab_template", "day_ab_build"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="warehouse_scale's home, loaded and built")
    parser.add_argument("--before", type=Path, required=True, help="the dbt project before the change")
    parser.add_argument("--after", type=Path, default=DBT_PROJECT_DIR, help="after it (default: this checkout's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--history-days", type=int, default=730)
    parser.add_argument("--work-scale", type=float, default=4.0)
    parser.add_argument("--activity-scale", type=float, default=2.0)
    parser.add_argument("--results", default="day_ab.json")
    args = parser.parse_args()
    home = Path(args.home)
    from pulse.demo import seed_demo

    versions = {"before": args.before.resolve(), "after": args.after.resolve()}
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    differ: list[list[str]] = []
    stack = ExitStack()
    try:
        # the builds run pulse-dbt with a warm server, as Dagster's do
        settings = stack.enter_context(running_built_home(home, warm_dbt=True))
        sandbox, world_day = world_sandbox(
            home, activity_scale=args.activity_scale, work_scale=args.work_scale, history_days=args.history_days
        )
        stack.callback(sandbox.stop)
        check_room_for_copies(settings, [TEMPLATE, COPY])
        sandbox.start()
        days = replay_days(home, sandbox)
        seed_demo(settings, sandbox)  # points the templates' sources at this sandbox's URL
        print("one more day ...", flush=True)
        load = load_one_more_day(settings, sandbox, home, tenant_slugs(args.tenants), days)
        as_of = build_as_of(world_day, days) + timedelta(days=1)
        make_database_copies(settings, [TEMPLATE])
        try:
            for run in range(1, args.repeat + 1):
                sums = {}
                for label, project in versions.items():
                    make_database_copies(settings, [COPY], template=TEMPLATE)
                    built = dbt_build(
                        settings,
                        full_refresh=False,
                        as_of=as_of,
                        project=project,
                        label=f"ab_{label}_{run}",
                        dbname=COPY,
                    )
                    runs[label].append(built)
                    sums[label] = table_checksums(settings, dbname=COPY)
                    print(f"{label} {run}: {built['seconds']} s (models {built['model_seconds']} s)", flush=True)
                differ.append(
                    sorted(table for table in sums["after"] if sums["after"][table] != sums["before"].get(table))
                )
        finally:
            drop_databases(settings, [TEMPLATE, COPY])
        print("the warehouse itself, with the after version ...", flush=True)
        dbt_build(settings, full_refresh=False, as_of=as_of, project=versions["after"], label="ab_warehouse")
    finally:
        stack.close()
    figures: dict[str, Any] = {
        "benchmark": "day_ab",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "world_day": world_day.date().isoformat(),
        "day": days + 1,
        "load": load,
        "differ": differ,
    }
    for label, project in versions.items():
        seconds = [run["seconds"] for run in runs[label]]
        figures[label] = {
            "project": str(project),
            "runs_seconds": seconds,
            "median_seconds": statistics.median(seconds),
            "runs_model_seconds": [run["model_seconds"] for run in runs[label]],
            "median_model_seconds": statistics.median(run["model_seconds"] for run in runs[label]),
        }
    record(figures, args.results)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
