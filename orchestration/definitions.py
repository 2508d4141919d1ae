"""The Pulse code location: everything under orchestration/defs/, loaded by folder.

Importing this module touches neither the network nor the database.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
