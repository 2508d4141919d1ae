"""A tenant's planning world as ClickUp v2 sees it: one Workspace, Spaces, Lists, tasks.

ClickUp has no projects, sprints or issue types of its own the way Jira does, so the world
is rendered the way teams set ClickUp up for scrum:

* the tenant is one **Workspace** (``team`` in API v2; a numeric id as a string);
* each world project is a **Space** with the statuses ``to do`` (type ``open``),
  ``in progress``, ``blocked``, ``in review`` (type ``custom``) and ``complete`` (``closed``);
* each Space has a folderless **Backlog** list, every task's home list, and a **Sprints**
  folder whose lists are the sprints (``PLAT Sprint 12 (11/3 - 11/16)``, ``start_date`` and
  ``due_date`` in Unix milliseconds as strings);
* a task in a sprint is *also* in that sprint's list (ClickUp's "tasks in multiple lists":
  ``locations`` on the task, ``include_timl=true`` on the list's task listing);
* stories, bugs and epics are custom task types (``custom_item_id``); plain tasks are 0;
* story points and the Done-Means-Tested fields are Workspace-level custom fields (one uuid
  for every list), plus a few decoys a field mapper must not pick.

Everything here is a pure function of the world, so ids are stable across requests and
advances. ClickUp's ``time_in_status`` keeps one entry per status (the first time it was
entered, with the total time spent in it): :meth:`ClickUpWorkspace.time_in_status` renders
exactly that, so re-opened cycles are lost, as they are in ClickUp.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from connectors.sandbox.work.world import (
    BLOCKED,
    DONE,
    IN_PROGRESS,
    IN_REVIEW,
    TODO,
    Person,
    Project,
    Sprint,
    WorkItem,
    WorkWorld,
)

APP_URL = "https://app.clickup.com"

#: ClickUp status of each canonical status: (name, type, orderindex, color).
STATUSES: dict[str, tuple[str, str, int, str]] = {
    TODO: ("to do", "open", 0, "#87909e"),
    IN_PROGRESS: ("in progress", "custom", 1, "#5f55ee"),
    BLOCKED: ("blocked", "custom", 2, "#e50000"),
    IN_REVIEW: ("in review", "custom", 3, "#f8ae00"),
    DONE: ("complete", "closed", 4, "#008844"),
}

#: Custom task types of every sandbox Workspace (``GET /team/{id}/custom_item``); 0 is "Task".
CUSTOM_ITEMS = {"story": 1300, "bug": 1301, "epic": 1302}
_CUSTOM_ITEM_NAMES = {1300: ("Story", "Stories"), 1301: ("Bug", "Bugs"), 1302: ("Epic", "Epics")}

AC_QUALITY_OPTIONS = ("Incomplete", "Testable", "Final")
UNIT_TEST_STATUS_OPTIONS = ("Not Started", "In Progress", "Done", "Exception Approved")
IMPACT_OPTIONS = ("Low", "Medium", "High")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # ClickUp's custom field type
    options: tuple[str, ...] = ()
    where: str = "all"  # all lists | backlog lists only | sprint lists only


#: Workspace-level fields (every list) and list-level decoys.
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("Story Points", "number"),
    FieldSpec("Acceptance Criteria Quality", "drop_down", AC_QUALITY_OPTIONS),
    FieldSpec("Unit Test Task", "checkbox"),
    FieldSpec("Unit Testing Status", "drop_down", UNIT_TEST_STATUS_OPTIONS),
    FieldSpec("Coverage %", "number"),
    FieldSpec("PR Links", "text"),
    FieldSpec("CI Evidence", "url"),
    FieldSpec("Reviewer DMT Sign-off", "checkbox"),
    FieldSpec("DMT Exception", "checkbox"),
    FieldSpec("DMT Exception Reason", "text"),
    FieldSpec("DMT Exception Approver", "users"),
    FieldSpec("DMT Exception Expires", "date"),
    # Decoys: plausible fields a mapper must not confuse with the ones above.
    FieldSpec("Effort (hours)", "number", where="backlog"),
    FieldSpec("Customer Impact", "drop_down", IMPACT_OPTIONS, where="backlog"),
    FieldSpec("Release Notes", "text", where="backlog"),
    FieldSpec("Design Link", "url", where="backlog"),
    FieldSpec("Sprint Goal", "short_text", where="sprint"),
)
_FIELD_EPOCH = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ListRef:
    """One ClickUp list of the Workspace."""

    id: str
    name: str
    project: Project
    sprint: Sprint | None  # None: the Backlog
    orderindex: int

    @property
    def is_sprint(self) -> bool:
        return self.sprint is not None


def ms(moment: datetime | None) -> str | None:
    """A timestamp as ClickUp writes it: Unix milliseconds in a string."""
    if moment is None:
        return None
    return str(int(moment.timestamp() * 1000))


def _digits(*parts: object, width: int) -> str:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return str(int(digest, 16) % 10**width).zfill(width)


class ClickUpWorkspace:
    """ClickUp's view of one tenant's :class:`WorkWorld` (render under the server's lock)."""

    def __init__(self, world: WorkWorld) -> None:
        self.world = world
        slug = world.slug
        self.team_id = "9" + _digits(slug, "team", width=7)
        self.name = f"{slug.replace('_', ' ').title()} Workspace"
        self._space_ids = {p.key: "9012" + _digits(slug, "space", p.key, width=7) for p in world.projects}
        self._folder_ids = {p.key: "9013" + _digits(slug, "folder", p.key, width=7) for p in world.projects}
        self._hidden_folder_ids = {p.key: "9014" + _digits(slug, "hidden", p.key, width=7) for p in world.projects}
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.invalid/clickup/{slug}")

    # -- ids ---------------------------------------------------------------------------

    def space_id(self, project: Project) -> str:
        return self._space_ids[project.key]

    def folder_id(self, project: Project) -> str:
        return self._folder_ids[project.key]

    def backlog_id(self, project: Project) -> str:
        return "9015" + _digits(self.world.slug, "backlog", project.key, width=8)

    def sprint_list_id(self, sprint: Sprint) -> str:
        return "9016" + _digits(self.world.slug, "sprint", sprint.id, width=8)

    def user_id(self, person: Person) -> int:
        return 80_000_000 + int(_digits(person.email, "user", width=7))

    def field_id(self, spec: FieldSpec) -> str:
        return str(uuid.uuid5(self._namespace, f"field:{spec.name}"))

    def option_id(self, spec: FieldSpec, label: str) -> str:
        return str(uuid.uuid5(self._namespace, f"option:{spec.name}:{label}"))

    # -- look-ups ----------------------------------------------------------------------

    def projects(self) -> list[Project]:
        return sorted(self.world.projects, key=lambda p: p.id)

    def project_of_space(self, space_id: str) -> Project | None:
        return next((p for p in self.world.projects if self._space_ids[p.key] == space_id), None)

    def project_of_folder(self, folder_id: str) -> Project | None:
        return next((p for p in self.world.projects if self._folder_ids[p.key] == folder_id), None)

    def lists(self, project: Project | None = None) -> list[ListRef]:
        out: list[ListRef] = []
        for p in self.projects():
            if project is not None and p.key != project.key:
                continue
            out.append(ListRef(self.backlog_id(p), "Backlog", p, None, 0))
            sprints = sorted((s for s in self.world.sprints if s.project_key == p.key), key=lambda s: s.start)
            for index, sprint in enumerate(sprints):
                out.append(ListRef(self.sprint_list_id(sprint), sprint_list_name(sprint), p, sprint, index))
        return out

    def list_ref(self, list_id: str) -> ListRef | None:
        return next((ref for ref in self.lists() if ref.id == list_id), None)

    def item(self, task_id: str) -> WorkItem | None:
        return self.world.by_clickup_id(task_id)

    def items_in(self, ref: ListRef, *, include_timl: bool) -> list[WorkItem]:
        """The list's tasks: home tasks (the Backlog's: all of its project's), and with
        ``include_timl`` the tasks that are in it as a second list (a sprint's members)."""
        items = [i for i in self.world.items if i.project_key == ref.project.key]
        if ref.sprint is None:
            return items
        if not include_timl:
            return []  # a sprint list is nobody's home list here
        return [i for i in items if i.sprint_id == ref.sprint.id]

    def fields_of(self, ref: ListRef) -> list[FieldSpec]:
        kind = "sprint" if ref.is_sprint else "backlog"
        return [spec for spec in FIELDS if spec.where in ("all", kind)]

    # -- JSON shapes -------------------------------------------------------------------

    def user(self, person: Person) -> dict[str, Any]:
        initials = "".join(part[0] for part in person.name.split()[:2]).upper()
        return {
            "id": self.user_id(person),
            "username": person.name,
            "color": "#" + _digits(person.email, "color", width=6),
            "email": person.email,
            "profilePicture": None,
            "initials": initials,
        }

    def team(self) -> dict[str, Any]:
        members = []
        for index, person in enumerate(self.world.people):
            user = self.user(person)
            user.update({"role": 1 if index == 0 else (2 if person.is_lead else 3), "custom_role": None})
            members.append({"user": user})
        return {"id": self.team_id, "name": self.name, "color": "#7b68ee", "avatar": None, "members": members}

    def custom_items(self) -> list[dict[str, Any]]:
        return [
            {"id": item_id, "name": name, "name_plural": plural, "description": f"{plural} of the team", "avatar": None}
            for item_id, (name, plural) in _CUSTOM_ITEM_NAMES.items()
        ]

    def statuses(self) -> list[dict[str, Any]]:
        return [
            {"id": f"p{self.team_id}_{name.replace(' ', '')}", "status": name, "type": kind, "orderindex": index,
             "color": color}
            for name, kind, index, color in STATUSES.values()
        ]  # fmt: skip

    def space(self, project: Project) -> dict[str, Any]:
        return {
            "id": self.space_id(project),
            "name": project.name,
            "color": None,
            "private": False,
            "avatar": None,
            "admin_can_manage": False,
            "statuses": self.statuses(),
            "multiple_assignees": False,
            "features": {
                "due_dates": {"enabled": True, "start_date": True, "remap_due_dates": False},
                "sprints": {"enabled": True},
                "time_in_status": {"enabled": True},
                "custom_fields": {"enabled": True},
                "custom_items": {"enabled": True},
                "points": {"enabled": True},
                "multiple_lists": {"enabled": True},
            },
            "archived": False,
        }

    def _space_ref(self, project: Project) -> dict[str, Any]:
        return {"id": self.space_id(project), "name": project.name, "access": True}

    def _folder_ref(self, ref: ListRef) -> dict[str, Any]:
        if ref.is_sprint:
            return {"id": self.folder_id(ref.project), "name": "Sprints", "hidden": False, "access": True}
        return {"id": self._hidden_folder_ids[ref.project.key], "name": "hidden", "hidden": True, "access": True}

    def list_json(self, ref: ListRef) -> dict[str, Any]:
        sprint = ref.sprint
        return {
            "id": ref.id,
            "name": ref.name,
            "orderindex": ref.orderindex,
            "content": f"Sprint of the {ref.project.name}" if sprint else f"Everything the {ref.project.name} plans",
            "status": None,
            "priority": None,
            "assignee": None,
            "task_count": len(self.items_in(ref, include_timl=True)),
            "due_date": ms(sprint.end) if sprint else None,
            "due_date_time": sprint is not None,
            "start_date": ms(sprint.start) if sprint else None,
            "start_date_time": sprint is not None,
            "folder": self._folder_ref(ref),
            "space": self._space_ref(ref.project),
            "archived": False,
            "override_statuses": False,
            "permission_level": "create",
        }

    def folder(self, project: Project) -> dict[str, Any]:
        lists = [ref for ref in self.lists(project) if ref.is_sprint]
        return {
            "id": self.folder_id(project),
            "name": "Sprints",
            "orderindex": 0,
            "override_statuses": False,
            "hidden": False,
            "space": self._space_ref(project),
            "task_count": str(sum(len(self.items_in(ref, include_timl=True)) for ref in lists)),
            "archived": False,
            "statuses": [],
            "lists": [self.list_json(ref) for ref in lists],
            "permission_level": "create",
        }

    def field(self, spec: FieldSpec) -> dict[str, Any]:
        type_config: dict[str, Any] = {}
        if spec.options:
            type_config = {
                "sorting": "manual",
                "options": [
                    {"id": self.option_id(spec, label), "name": label, "color": None, "orderindex": index}
                    for index, label in enumerate(spec.options)
                ],
            }
        elif spec.type == "number":
            type_config = {"precision": 1 if "%" in spec.name else 0}
        index = FIELDS.index(spec)
        return {
            "id": self.field_id(spec),
            "name": spec.name,
            "type": spec.type,
            "type_config": type_config,
            "date_created": ms(_FIELD_EPOCH + timedelta(minutes=index)),
            "hide_from_guests": False,
            "required": False,
        }

    def task(self, item: WorkItem) -> dict[str, Any]:
        """The task as ``GET /list/{id}/task`` lists it."""
        home = self.lists(self.world.project(item.project_key))[0]
        name, kind, orderindex, color = STATUSES[item.status]
        people = {p.email: p for p in self.world.people}
        assignee = people.get(item.assignee or "")
        creator = people.get(item.reporter)
        sprint = self.world.sprint(item.sprint_id) if item.sprint_id else None
        parent = self.world.item(item.parent_id) if item.parent_id else None
        resolved = item.resolved_at
        return {
            "id": item.clickup_id,
            "custom_id": None,
            "custom_item_id": CUSTOM_ITEMS.get(item.type, 0),
            "name": item.title,
            "text_content": item.description,
            "description": item.description,
            "status": {"status": name, "color": color, "type": kind, "orderindex": orderindex},
            "orderindex": f"{item.id}.00000000000000000000000000000000",
            "date_created": ms(item.created_at),
            "date_updated": ms(item.updated_at),
            "date_closed": ms(resolved),
            "date_done": ms(resolved),
            "archived": False,
            "creator": self.user(creator) if creator else None,
            "assignees": [self.user(assignee)] if assignee else [],
            "group_assignees": [],
            "watchers": [self.user(p) for p in (creator, assignee) if p is not None],
            "checklists": [],
            "tags": [
                {"name": label, "tag_fg": "#ffffff", "tag_bg": "#e50000", "creator": self.user_id(creator)}
                for label in item.labels
                if creator is not None
            ],
            "parent": parent.clickup_id if parent else None,
            "top_level_parent": parent.clickup_id if parent else None,
            "priority": None,
            "due_date": None,
            "start_date": None,
            "points": item.story_points,
            "time_estimate": None,
            "custom_fields": self._values(item, home),
            "dependencies": [],
            "linked_tasks": self._links(item),
            "locations": [{"id": self.sprint_list_id(sprint), "name": sprint_list_name(sprint)}] if sprint else [],
            "team_id": self.team_id,
            "url": f"{APP_URL}/t/{item.clickup_id}",
            "permission_level": "create",
            "list": {"id": home.id, "name": home.name, "access": True},
            "project": self._folder_ref(home),
            "folder": self._folder_ref(home),
            "space": {"id": self.space_id(home.project)},
        }

    def malformed_task(self, item: WorkItem) -> dict[str, Any]:
        """The broken record of the ``malformed_work_item`` fault: no status object and an
        update time that is no Unix time."""
        task = self.task(item)
        task["status"] = STATUSES[item.status][0]
        task["date_updated"] = "yesterday, after lunch"
        return task

    def _links(self, item: WorkItem) -> list[dict[str, Any]]:
        pairs: list[tuple[WorkItem, WorkItem]] = []  # (bug, story it came from)
        if item.caused_by_id is not None:
            story = self.world.item(item.caused_by_id)
            if story is not None:
                pairs.append((item, story))
        pairs += [(bug, item) for bug in self.world.bugs_caused_by(item.id)]
        links = []
        for bug, story in pairs:
            other = story if bug is item else bug
            reporter = self.world.person(bug.reporter)
            links.append(
                {
                    "task_id": item.clickup_id,
                    "link_id": other.clickup_id,
                    "date_created": ms(bug.created_at),
                    "userid": str(self.user_id(reporter)) if reporter else None,
                    "workspace_id": self.team_id,
                }
            )
        return links

    def _values(self, item: WorkItem, home: ListRef) -> list[dict[str, Any]]:
        dmt = item.dmt
        approver = self.world.person(dmt.exception_approver) if dmt.exception_approver else None
        values: dict[str, Any] = {
            "Story Points": _number(item.story_points),
            "Acceptance Criteria Quality": _option(AC_QUALITY_OPTIONS, dmt.ac_quality),
            "Unit Test Task": _checkbox(dmt.unit_test_task),
            "Unit Testing Status": _option(UNIT_TEST_STATUS_OPTIONS, dmt.unit_test_status),
            "Coverage %": _number(dmt.coverage_pct),
            "PR Links": "\n".join(dmt.pr_links) or None,
            "CI Evidence": dmt.ci_evidence,
            "Reviewer DMT Sign-off": _checkbox(dmt.reviewer_signoff),
            "DMT Exception": _checkbox(dmt.exception),
            "DMT Exception Reason": dmt.exception_reason,
            "DMT Exception Approver": [self.user(approver)] if approver else None,
            "DMT Exception Expires": _date_ms(dmt.exception_expires),
            "Effort (hours)": _number(None if item.story_points is None else item.story_points * 3),
            "Customer Impact": 1 if item.type == "bug" else None,
        }
        out = []
        for spec in self.fields_of(home):
            field = self.field(spec)
            value = values.get(spec.name)
            if value is not None:
                field["value"] = value
            out.append(field)
        return out

    def time_in_status(self, item: WorkItem) -> dict[str, Any]:
        """``GET /task/{id}/time_in_status``: one history entry per status, first entry time."""
        stints: list[tuple[str, datetime]] = [(TODO, item.created_at)]
        stints += [(c.to_value or TODO, c.at) for c in item.changes if c.field == "status"]
        now = max(self.world.clock, item.updated_at)
        minutes: dict[str, int] = {}
        first: dict[str, datetime] = {}
        for index, (status, start) in enumerate(stints):
            end = stints[index + 1][1] if index + 1 < len(stints) else now
            minutes[status] = minutes.get(status, 0) + int((end - start).total_seconds() // 60)
            first.setdefault(status, start)
        history = []
        for status in sorted(first, key=lambda s: STATUSES[s][2]):
            name, kind, orderindex, color = STATUSES[status]
            history.append(
                {
                    "status": name,
                    "color": color,
                    "type": kind,
                    "total_time": {"by_minute": minutes[status], "since": ms(first[status])},
                    "orderindex": orderindex,
                }
            )
        current, since = stints[-1]
        name, _, _, color = STATUSES[current]
        return {
            "current_status": {
                "status": name,
                "color": color,
                "total_time": {"by_minute": int((now - since).total_seconds() // 60), "since": ms(since)},
            },
            "status_history": history,
        }


def sprint_list_name(sprint: Sprint) -> str:
    """``PLAT Sprint 12 (11/3 - 11/16)``: the sprint and its first and last day."""
    last = sprint.end - timedelta(days=1)
    return f"{sprint.name} ({sprint.start.month}/{sprint.start.day} - {last.month}/{last.day})"


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _checkbox(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _option(labels: tuple[str, ...], value: str | None) -> int | None:
    """A drop-down value as ClickUp returns it: the chosen option's ``orderindex``."""
    if value is None:
        return None
    wanted = value.replace("_", " ").lower()
    return next(index for index, label in enumerate(labels) if label.lower() == wanted)


def _date_ms(day: date | None) -> str | None:
    """A date field's value: noon UTC of the day, in Unix milliseconds."""
    return None if day is None else ms(datetime.combine(day, time(12, 0), tzinfo=UTC))
