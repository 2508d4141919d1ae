"""Pure helpers of the Streamlit app (apps/streamlit/presentation.py): no Streamlit, no database."""

from __future__ import annotations

import importlib.util
import math
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest

PRESENTATION = Path(__file__).resolve().parents[2] / "apps" / "streamlit" / "presentation.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pulse_app_presentation", PRESENTATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


ui = _load()


def test_default_window_is_the_last_90_days_including_today() -> None:
    start, end = ui.default_window(date(2026, 3, 31))
    assert (start, end) == (date(2026, 1, 1), date(2026, 3, 31))
    assert (end - start).days + 1 == 90
    assert ui.default_window(date(2026, 3, 31), days=1) == (date(2026, 3, 31), date(2026, 3, 31))
    with pytest.raises(ValueError, match="at least one day"):
        ui.default_window(date(2026, 3, 31), days=0)


@pytest.mark.parametrize(
    ("value", "hours", "percent"),
    [(4.0, "4.0 h", "4.0 %"), (100 / 3, "33.3 h", "33.3 %"), (0.0, "0.0 h", "0.0 %"), (None, "—", "—")],
)
def test_hours_and_percent_formatting(value: float | None, hours: str, percent: str) -> None:
    assert ui.format_hours(value) == hours
    assert ui.format_percent(value) == percent


def test_counts_and_timestamps() -> None:
    assert ui.format_count(12345) == "12,345"
    assert ui.format_hours(1234.56) == "1,234.6 h"
    berlin = timezone(timedelta(hours=1))
    assert ui.format_timestamp(datetime(2026, 1, 15, 9, 30, tzinfo=berlin)) == "2026-01-15 08:30 UTC"
    assert ui.format_timestamp(datetime(2026, 1, 15, 8, 30, tzinfo=UTC)) == "2026-01-15 08:30 UTC"
    assert ui.format_timestamp(None) == "never"


def test_roles_rank_and_label() -> None:
    assert ui.main_role(["member", "org_admin"]) == "org_admin"
    assert ui.main_role(["team_lead", "platform_admin"]) == "platform_admin"
    assert ui.main_role([]) is None
    assert ui.role_label("account_manager") == "Account manager"
    assert ui.role_label("some_new_role") == "Some new role"


def test_every_role_reaches_pull_requests_once() -> None:
    for role in ui.ROLES:
        assert ui.sections_for([role]) == {"Delivery": ["pull_requests"]}
    assert ui.sections_for(ui.ROLES) == {"Delivery": ["pull_requests"]}
    assert ui.sections_for([]) == {}
    assert ui.sections_for(["unknown"]) == {}


def test_sign_in_groups_platform_first_then_tenants_by_name() -> None:
    rows = [
        # as control.dev_sign_in_choices() returns them, pandas-style missing values included
        {"email": "zed@b.example", "name": "Zed", "role": "member", "tenant_id": "beta",
         "tenant_name": "Beta", "team_name": None},
        {"email": "amy@b.example", "name": "Amy", "role": "team_lead", "tenant_id": "beta",
         "tenant_name": "Beta", "team_name": "Payments"},
        {"email": "amy@b.example", "name": "Amy", "role": "org_admin", "tenant_id": "beta",
         "tenant_name": "Beta", "team_name": math.nan},
        {"email": "max@a.example", "name": "Max", "role": "account_manager", "tenant_id": "alpha",
         "tenant_name": "Alpha", "team_name": None},
        {"email": "max@a.example", "name": "Max", "role": "account_manager", "tenant_id": "beta",
         "tenant_name": "Beta", "team_name": None},
        {"email": "root@p.example", "name": "Root", "role": "platform_admin", "tenant_id": math.nan,
         "tenant_name": None, "team_name": None},
    ]  # fmt: skip
    groups = ui.sign_in_groups(rows)

    assert [(group.tenant_id, group.title) for group in groups] == [
        (None, ui.PLATFORM_GROUP),
        ("alpha", "Alpha"),
        ("beta", "Beta"),
    ]
    assert [user.email for user in groups[0].users] == ["root@p.example"]
    beta = groups[2].users
    assert [user.email for user in beta] == ["max@a.example", "amy@b.example", "zed@b.example"]
    amy = beta[1]
    assert amy.roles == ("org_admin", "team_lead")  # one entry, highest role first
    assert amy.teams == ("Payments",)
    assert ui.sign_in_key("amy@b.example", "beta") == "sign_in:beta:amy@b.example"
    assert ui.sign_in_key("root@p.example", None) == "sign_in:_platform:root@p.example"


def test_escape_markdown_shows_text_literally() -> None:
    assert ui.escape_markdown("**bold** [x](y) _a_") == r"\*\*bold\*\* \[x\]\(y\) \_a\_"
    assert ui.escape_markdown("Ada Lovelace") == "Ada Lovelace"
