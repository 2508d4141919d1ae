"""Pure presentation helpers of the Pulse app: formatting, default window, role routing.

No Streamlit, no database: everything here is a plain function the unit tests call directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

#: Roles in the order the app ranks them (the sidebar shows the first the user holds).
ROLES: tuple[str, ...] = ("platform_admin", "account_director", "account_manager", "org_admin", "team_lead", "member")
ROLE_LABELS: dict[str, str] = {
    "platform_admin": "Platform admin",
    "account_director": "Account director",
    "account_manager": "Account manager",
    "org_admin": "Org admin",
    "team_lead": "Team lead",
    "member": "Member",
}

#: Navigation: section title → page keys, per role. Every tenant role reads pull requests for now.
SECTIONS_BY_ROLE: dict[str, dict[str, tuple[str, ...]]] = {role: {"Delivery": ("pull_requests",)} for role in ROLES}

DEFAULT_WINDOW_DAYS = 90
#: How far back the date pickers reach (about ten years).
HISTORY_DAYS = 3653
PLATFORM_GROUP = "Platform (all tenants)"

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def default_window(today: date, days: int = DEFAULT_WINDOW_DAYS) -> tuple[date, date]:
    """The last ``days`` days up to and including ``today``."""
    if days < 1:
        raise ValueError(f"A window has at least one day, not {days}.")
    return today - timedelta(days=days - 1), today


def format_count(value: int) -> str:
    return f"{value:,}"


def format_hours(value: float | None) -> str:
    """``4.0 h``; an em dash when there is nothing to measure."""
    return "—" if value is None else f"{value:,.1f} h"


def format_percent(value: float | None) -> str:
    """``33.3 %``; an em dash when there is nothing to divide by."""
    return "—" if value is None else f"{value:.1f} %"


def format_timestamp(value: datetime | None) -> str:
    """A UTC timestamp to the minute, e.g. ``2026-01-15 08:30 UTC``; ``never`` for None."""
    if value is None:
        return "never"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role.replace("_", " ").capitalize())


def main_role(roles: Iterable[str]) -> str | None:
    """The highest-ranked of ``roles`` (platform admin first), or None."""
    held = set(roles)
    return next((role for role in ROLES if role in held), None)


def sections_for(roles: Iterable[str]) -> dict[str, list[str]]:
    """Navigation sections (title → page keys, in order, no duplicates) for a user's roles."""
    sections: dict[str, list[str]] = {}
    held = set(roles)
    for role in ROLES:
        if role not in held:
            continue
        for title, keys in SECTIONS_BY_ROLE[role].items():
            pages = sections.setdefault(title, [])
            pages.extend(key for key in keys if key not in pages)
    return sections


def escape_markdown(text: str) -> str:
    """Escape ``text`` so Streamlit's Markdown shows it literally (names, titles)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


# -- development sign-in ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignInUser:
    email: str
    name: str
    roles: tuple[str, ...]
    teams: tuple[str, ...]


@dataclass(frozen=True)
class SignInGroup:
    """The demo users of one tenant (``tenant_id`` None: platform-wide grants)."""

    tenant_id: str | None
    title: str
    users: tuple[SignInUser, ...]


def sign_in_groups(rows: Iterable[Mapping[str, Any]]) -> list[SignInGroup]:
    """Group grant rows (email, name, role, tenant_id, tenant_name, team_name) by tenant.

    Platform-wide grants come first, then tenants by name; within a group users are ordered
    by their highest role, then email, and a user with several roles in a tenant appears once.
    """
    titles: dict[str | None, str] = {}
    users: dict[str | None, dict[str, dict[str, Any]]] = {}
    for row in rows:
        tenant_id = _none_if_missing(row.get("tenant_id"))
        titles[tenant_id] = (
            PLATFORM_GROUP if tenant_id is None else str(_none_if_missing(row.get("tenant_name")) or tenant_id)
        )
        entry = users.setdefault(tenant_id, {}).setdefault(
            str(row["email"]), {"name": str(row["name"]), "roles": [], "teams": []}
        )
        if row["role"] not in entry["roles"]:
            entry["roles"].append(str(row["role"]))
        team = _none_if_missing(row.get("team_name"))
        if team and team not in entry["teams"]:
            entry["teams"].append(str(team))

    def rank(roles: list[str]) -> int:
        return min((ROLES.index(role) for role in roles if role in ROLES), default=len(ROLES))

    groups = []
    for tenant_id in sorted(titles, key=lambda t: (t is not None, titles[t].lower(), t or "")):
        members = sorted(users[tenant_id].items(), key=lambda item: (rank(item[1]["roles"]), item[0]))
        groups.append(
            SignInGroup(
                tenant_id,
                titles[tenant_id],
                tuple(
                    SignInUser(
                        email,
                        entry["name"],
                        tuple(sorted(entry["roles"], key=lambda r: rank([r]))),
                        tuple(entry["teams"]),
                    )
                    for email, entry in members
                ),
            )
        )
    return groups


def sign_in_key(email: str, tenant_id: str | None) -> str:
    """Stable widget key of a development sign-in button."""
    return f"sign_in:{tenant_id or '_platform'}:{email}"


def _none_if_missing(value: object) -> Any:
    """None for None and pandas' missing values (NaN/NA/NaT), the value otherwise."""
    if value is None:
        return None
    try:
        return None if value != value else value  # NaN and friends are not equal to themselves
    except (TypeError, ValueError):  # pandas.NA refuses a truth value
        return None
