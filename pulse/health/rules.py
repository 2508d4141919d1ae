"""Account-health rules in plain Python: bands, when a fall alerts, the alert setting.

The score itself is computed in SQL (``marts.fct_account_health_daily``, docs/health.md); what
happens when it falls is decided here, so that the sensor, the CLI-less tests and the app agree
on one definition.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pulse.control import ControlError

#: Bands, worst first, with their lowest score: red 0-50, amber 51-75, green 76-100.
BANDS: tuple[str, ...] = ("red", "amber", "green")
BAND_FLOORS: dict[str, int] = {"red": 0, "amber": 51, "green": 76}

ALERT_DROP_ENV = "PULSE_HEALTH_ALERT_DROP"
DEFAULT_ALERT_DROP = 10

#: The six factors in the order docs/health.md lists them, with the names people read.
FACTOR_LABELS: dict[str, str] = {
    "agent_runs_trend": "Agent runs trend",
    "active_users_trend": "Active users trend",
    "agent_success_rate": "Agent success rate",
    "budget_adherence": "Budget adherence",
    "dmt_compliance_trend": "DMT compliance trend",
    "data_freshness": "Data freshness",
}


class HealthConfigError(ControlError):
    """An account-health setting holds a value that cannot work; the message names it."""


def band_of(score: int) -> str:
    """The band of a whole-number score: red up to 50, amber up to 75, green above."""
    if not 0 <= score <= 100:
        raise ValueError(f"A health score is from 0 to 100, not {score}.")
    if score <= 50:
        return "red"
    if score <= 75:
        return "amber"
    return "green"


def band_rank(band: str) -> int:
    """0 for red, 1 for amber, 2 for green."""
    try:
        return BANDS.index(band)
    except ValueError:
        raise ValueError(f"Unknown band {band!r}; the bands are {', '.join(BANDS)}.") from None


def alert_reason(
    score: int, band: str, previous_score: int, previous_band: str, drop_threshold: int = DEFAULT_ALERT_DROP
) -> str | None:
    """Why a day's score alerts against the day before's, or None.

    ``drop``: it fell by ``drop_threshold`` points or more; ``band``: it fell to a lower band
    (by fewer points); ``drop_and_band``: both. A rise, or a smaller fall within the band, is
    no alert.
    """
    if drop_threshold < 1:
        raise ValueError(f"The alert drop is at least 1 point, not {drop_threshold}.")
    dropped = previous_score - score >= drop_threshold
    lower_band = band_rank(band) < band_rank(previous_band)
    if dropped and lower_band:
        return "drop_and_band"
    if dropped:
        return "drop"
    if lower_band:
        return "band"
    return None


def alert_drop_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The fall in points that alerts: ``PULSE_HEALTH_ALERT_DROP`` (1-100), default 10."""
    env = os.environ if environ is None else environ
    raw = env.get(ALERT_DROP_ENV, "").strip()
    if not raw:
        return DEFAULT_ALERT_DROP
    try:
        points = int(raw)
    except ValueError:
        raise HealthConfigError(
            f"{ALERT_DROP_ENV}={raw!r} is not a whole number of points; write e.g. 10 (the default)."
        ) from None
    if not 1 <= points <= 100:
        raise HealthConfigError(f"{ALERT_DROP_ENV}={points} is out of range: a fall of 1 to 100 points.")
    return points


def configured_weights(project_file: Path | None = None) -> dict[str, float]:
    """The factor weights the mart is built with: var ``health_weights`` of dbt_project.yml.

    A build given other weights with ``--vars`` is not seen here; the orchestrator passes none.
    """
    import yaml

    from pulse.dbt import DBT_PROJECT_DIR

    path = project_file or DBT_PROJECT_DIR / "dbt_project.yml"
    config = yaml.safe_load(path.read_text()) or {}
    weights = (config.get("vars") or {}).get("health_weights") or {}
    unknown = sorted(set(weights) - set(FACTOR_LABELS))
    missing = [factor for factor in FACTOR_LABELS if factor not in weights]
    if unknown or missing:
        raise HealthConfigError(
            f"var health_weights in {path} must give a weight to each of {', '.join(FACTOR_LABELS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    return {factor: float(weights[factor]) for factor in FACTOR_LABELS}
