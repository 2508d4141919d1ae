"""Benchmark: dbt's own executable against ``pulse-dbt`` forked from a warm ``pulse dbt-server``.

On warehouse_scale's home (``--home``, loaded and built), warehouse_scale's build (the same
selection and exclusions) with nothing new, alternating: dbt's own executable (a new process that
imports dbt and compiles every Jinja template), then ``pulse-dbt`` forked from the server started
for the run (dbt imported once; templates read back from the home's compile cache:
pulse/warm_dbt.py, pulse/jinja_cache.py), ``--repeat`` pairs, after one ``pulse-dbt`` build
that fills the template cache (its seconds reported as ``first_build_seconds``); ``--full`` adds that many pairs of
full builds. Each build is timed from the process's start to its end; the medians and their
difference are reported.

    .venv/bin/python bench/warm_dbt.py --home DIR [--repeat 3] [--full N] [--results warm_dbt.json]

Figures go to bench/results/warm_dbt.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warehouse_scale import build_as_of, days_loaded, dbt_build, record, running_built_home, world_day_of

EXECUTABLES = ("dbt", "pulse-dbt")


def pairs(settings: Any, *, full_refresh: bool, repeat: int, as_of: datetime) -> dict[str, Any]:
    """``repeat`` builds with each executable, alternating: each one's seconds and median."""
    seconds: dict[str, list[float]] = {executable: [] for executable in EXECUTABLES}
    kind = "full" if full_refresh else "no_change"
    for run in range(1, repeat + 1):
        for executable in EXECUTABLES:
            label = f"warm_{kind}_{executable}_{run}"
            built = dbt_build(settings, full_refresh=full_refresh, as_of=as_of, label=label, executable=executable)
            seconds[executable].append(built["seconds"])
            print(f"{kind} {executable} {run}: {built['seconds']} s", flush=True)
    medians = {executable: round(statistics.median(runs), 1) for executable, runs in seconds.items()}
    return {
        "runs_seconds": seconds,
        "median_seconds": medians,
        "saved_seconds": round(medians["dbt"] - medians["pulse-dbt"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="warehouse_scale's home, loaded and built")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of builds with nothing new (default 3)")
    parser.add_argument("--full", type=int, default=0, help="pairs of full builds (default none)")
    parser.add_argument("--results", default="warm_dbt.json")
    args = parser.parse_args()
    home = Path(args.home)
    with running_built_home(home, warm_dbt=True) as settings:
        as_of = build_as_of(world_day_of(home), days_loaded(home))
        figures: dict[str, Any] = {
            "benchmark": "warm_dbt",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "world_day": world_day_of(home).date().isoformat(),
            "day": days_loaded(home),
        }
        # untimed: the template cache then holds what this code compiles (the steady state of a
        # deployment; the first build after the cache is emptied compiles and writes it)
        figures["first_build_seconds"] = dbt_build(settings, full_refresh=False, as_of=as_of, label="warm_first")[
            "seconds"
        ]
        figures["no_change"] = pairs(settings, full_refresh=False, repeat=args.repeat, as_of=as_of)
        if args.full:
            figures["full"] = pairs(settings, full_refresh=True, repeat=args.full, as_of=as_of)
    record(figures, args.results)
    print(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
