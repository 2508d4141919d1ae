"""What the unified work models must say, computed from a sandbox tenant's planning world.

The world's change lists are the truth every tracker simulator renders; these functions read
them directly (never the warehouse), so a test that compares them with the models checks the
whole path: simulator, connector, staging and the intermediate models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.sandbox.work.world import BLOCKED, DONE, IN_PROGRESS, STATUS_CATEGORY, TODO, WorkItem


@dataclass(frozen=True)
class Bounds:
    """When a tracker says a sprint starts and ends (Azure keeps whole days, Jira moments)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class ItemScope:
    in_at_start: bool
    in_at_end: bool
    added: bool
    removed: bool
    completed: bool
    points_at_start: float | None
    points_at_end: float | None


def status_at(item: WorkItem, moment: datetime, *, inclusive: bool) -> str:
    status = TODO
    for change in item.changes:
        if change.field == "status" and (change.at <= moment if inclusive else change.at < moment):
            status = change.to_value or TODO
    return status


def points_at(item: WorkItem, moment: datetime, *, inclusive: bool) -> float | None:
    points = item.initial_points
    for change in item.changes:
        if change.field == "story_points" and (change.at <= moment if inclusive else change.at < moment):
            points = None if change.to_value is None else float(change.to_value)
    return points


def in_sprint(item: WorkItem, sprint_id: int, moment: datetime, *, inclusive: bool) -> bool:
    """Whether ``item`` was in the sprint at ``moment`` (just before it, when not inclusive)."""
    inside = False
    for change in item.changes:
        if change.field != "sprint" or not (change.at <= moment if inclusive else change.at < moment):
            continue
        if change.to_value == str(sprint_id):
            inside = True
        elif change.from_value == str(sprint_id):
            inside = False
    return inside


def sprint_scope(item: WorkItem, sprint_id: int, bounds: Bounds) -> ItemScope | None:
    """The item's part in the sprint, or None if it had none between the sprint's start and end."""
    at_start = in_sprint(item, sprint_id, bounds.start, inclusive=True)
    at_end = in_sprint(item, sprint_id, bounds.end, inclusive=False)
    during = [c for c in item.changes if c.field == "sprint" and bounds.start < c.at < bounds.end]
    entered = any(c.to_value == str(sprint_id) for c in during)
    left = any(c.from_value == str(sprint_id) for c in during)
    if not (at_start or at_end or entered or left):
        return None
    done_at_start = STATUS_CATEGORY[status_at(item, bounds.start, inclusive=True)] == "done"
    done_at_end = STATUS_CATEGORY[status_at(item, bounds.end, inclusive=False)] == "done"
    return ItemScope(
        in_at_start=at_start,
        in_at_end=at_end,
        added=entered and not at_start,
        removed=left and not at_end,
        completed=at_end and done_at_end and not done_at_start,
        points_at_start=points_at(item, bounds.start, inclusive=True) if at_start else None,
        points_at_end=points_at(item, bounds.end, inclusive=False) if at_end else None,
    )


def sprint_totals(items: list[WorkItem], sprint_id: int, bounds: Bounds) -> dict[str, float]:
    """committed / end / completed items and points of one sprint, as int_sprints_unified has them."""
    totals = dict.fromkeys(
        ("committed_items", "committed_points", "added_items", "removed_items", "end_items", "end_points",
         "completed_items", "completed_points"),
        0.0,
    )  # fmt: skip
    for item in items:
        scope = sprint_scope(item, sprint_id, bounds)
        if scope is None:
            continue
        if scope.in_at_start:
            totals["committed_items"] += 1
            totals["committed_points"] += scope.points_at_start or 0
        totals["added_items"] += scope.added
        totals["removed_items"] += scope.removed
        if scope.in_at_end:
            totals["end_items"] += 1
            totals["end_points"] += scope.points_at_end or 0
        if scope.completed:
            totals["completed_items"] += 1
            totals["completed_points"] += scope.points_at_end or 0
    return totals


def done_at(item: WorkItem) -> datetime | None:
    return item.resolved_at


def first_in_progress_at(item: WorkItem) -> datetime | None:
    return next(
        (c.at for c in item.changes if c.field == "status" and STATUS_CATEGORY.get(c.to_value or "") == "in_progress"),
        None,
    )


def times_reopened(item: WorkItem) -> int:
    return sum(1 for c in item.changes if c.field == "status" and c.from_value == DONE and c.to_value != DONE)


def blocked_days(item: WorkItem, as_of: datetime) -> float:
    return item.blocked_seconds(as_of) / 86400


def is_blocked_now(item: WorkItem) -> bool:
    return item.status == BLOCKED


__all__ = [
    "IN_PROGRESS",
    "Bounds",
    "ItemScope",
    "blocked_days",
    "done_at",
    "first_in_progress_at",
    "in_sprint",
    "is_blocked_now",
    "points_at",
    "sprint_scope",
    "sprint_totals",
    "status_at",
    "times_reopened",
]
