"""Benchmark: what dbt's one Python interpreter does during a build with nothing new.

dbt runs a build in one process: its threads share Python's interpreter lock, so at any moment
one of them runs dbt's Python (rendering Jinja, compiling, building events) while the others
wait for PostgreSQL or for the lock. On 2 cores that interpreter, not the database, sets the
pace of most of warehouse_scale's build (docs/scaling.md). This measures it:

1. on warehouse_scale's home (``--home``, loaded and built), it runs the build with nothing new
   (warehouse_scale's build, the same selection and exclusions), under ``py-spy record --gil``,
   which samples only the thread holding the lock: every sample is interpreter time (the build
   runs ``pulse-dbt`` with no warm server, so dbt in the profiled process itself: importing dbt
   included, templates read from the home's compile cache: pulse/warm_dbt.py);
2. it sorts each sample by what dbt was doing, by the frames of its stack (CATEGORIES: the first
   category one of whose frames the stack holds takes the sample), and prints the seconds of
   each, against the build's wall time.

The profiler slows the build somewhat (about 17 s against 14-16 s), so compare shares rather than
seconds with warehouse_scale's figures. py-spy is a profiler, not a dependency of Pulse; it needs
permission to trace a process (root, or ptrace allowed):

    uv pip install --python .venv/bin/python py-spy
    .venv/bin/python bench/dbt_profile.py --home DIR [--rate 200] [--results dbt_profile.json] [--raw FILE]

Figures go to bench/results/dbt_profile.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warehouse_scale import build_as_of, days_loaded, dbt_build, record, running_built_home, world_day_of

#: What dbt was doing, by a frame its stack holds ("function (file" as py-spy prints it). The
#: first category one of whose frames a stack holds takes the sample: events and contexts first,
#: as they happen inside compiling and running.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("events (built as protobuf, logged)", ("fire_event (", "BaseEvent.__init__ (")),
    ("importing dbt", ("_find_and_load (",)),
    ("loading the manifest", ("parse_manifest (", "ManifestLoader.")),
    ("selecting the nodes", ("NodeSelector.",)),
    ("writing artifacts and compiled files", ("write_manifest (", "Writable.write (", "write_file (")),
    (
        "each node's context (macros, tests' arguments)",
        ("generate_runtime_model_context (", "generate_runtime_macro_context (", "add_rendered_test_kwargs ("),
    ),
    ("compiling the nodes' SQL", ("Compiler.compile_node (",)),
    ("running the tests", ("TestRunner.execute (",)),
    ("running models and hooks (materializations' Jinja, statements)", ("ModelRunner.execute (", "run_hooks (")),
)
OTHER = "other"


def read_samples(raw: Path) -> Counter[tuple[str, ...]]:
    """py-spy's raw output (one line per distinct stack: frames joined by ';', a space, the
    number of samples) as stacks (frames without their line numbers) → samples."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def category_of(stack: tuple[str, ...]) -> str:
    for name, markers in CATEGORIES:
        if any(marker in frame for frame in stack for marker in markers):
            return name
    return OTHER


def attribute(stacks: Counter[tuple[str, ...]], rate: int) -> dict[str, float]:
    """Seconds of interpreter time per category (samples over the sampling rate), largest first."""
    samples_of: Counter[str] = Counter()
    for stack, samples in stacks.items():
        samples_of[category_of(stack)] += samples
    return {name: round(samples / rate, 2) for name, samples in samples_of.most_common()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="warehouse_scale's home, loaded and built")
    parser.add_argument("--rate", type=int, default=200, help="samples per second (default 200)")
    parser.add_argument("--results", default="dbt_profile.json")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw profile here (for a flame graph)")
    args = parser.parse_args()
    home = Path(args.home)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: uv pip install --python .venv/bin/python py-spy")
    with tempfile.TemporaryDirectory(prefix="pulse-profile-") as folder:
        raw = Path(folder) / "build.raw"
        spy = [py_spy, "record", "--gil", "--rate", str(args.rate), "--format", "raw", "--output", str(raw), "--"]
        with running_built_home(home) as settings:
            world_day, days = world_day_of(home), days_loaded(home)
            built = dbt_build(
                settings, full_refresh=False, as_of=build_as_of(world_day, days), label="profile", wrap=spy
            )
        stacks = read_samples(raw)
        if args.raw:
            shutil.copyfile(raw, args.raw)
    held = round(sum(stacks.values()) / args.rate, 1)
    categories = attribute(stacks, args.rate)
    print(f"build with nothing new: {built['seconds']} s of wall; dbt's interpreter held {held} s of it")
    for name, seconds in categories.items():
        print(f"  {seconds:6.2f} s  {name}")
    figures: dict[str, Any] = {
        "benchmark": "dbt_profile",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "world_day": world_day.date().isoformat(),
        "day": days,
        "rate": args.rate,
        "build_seconds": built["seconds"],
        "interpreter_held_seconds": held,
        "categories_seconds": categories,
    }
    record(figures, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
