"""Where the recorded API responses live: ``shared/fixtures`` beside the checkout.

CI clones the project with ``shared/`` beside it. ``PULSE_SHARED_FIXTURES`` points elsewhere;
tests that need the recordings are skipped, with the reason, when they are nowhere to be found.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_FIXTURES = Path(
    os.environ.get("PULSE_SHARED_FIXTURES") or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
)


def recorded(*parts: str) -> Path:
    """The directory of recorded responses under shared/fixtures (skip the test if absent)."""
    path = SHARED_FIXTURES.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"recorded API responses not found at {path}; set PULSE_SHARED_FIXTURES to shared/fixtures")
    return path
