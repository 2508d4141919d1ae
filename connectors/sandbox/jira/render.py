"""The tenant's planning world in Jira Cloud's JSON shapes: users, projects, boards, sprints,
statuses, the field catalogue, issues and their changelogs.

:class:`Site` renders one :class:`~connectors.sandbox.work.world.WorkWorld` for one request
(the site's base URL for ``self`` links, the API version for rich text); the API handlers in
``api.py`` only page and filter. Look-ups go through an index cached per world and world
version, so a site of 100,000 issues renders each page in time proportional to the page.

Shapes follow recorded Jira Cloud answers (``shared/fixtures/jira``): string ids,
``"2026-11-20T05:15:30.000-0500"`` issue timestamps in the caller's time zone, ``…Z`` agile
sprint timestamps, Atlassian Document Format (ADF) for rich text in API v3, custom fields as
``customfield_<n>`` keys. What the site holds besides the world's facts, so that clients have
to cope with it:

* custom fields that only their schema tells apart (``Story Points (old)`` is a text field;
  the estimate is ``com.pyxis.greenhopper.jira:jsw-story-points``) and fields nobody needs;
* a ``Sprint`` field that is a *list*: Jira keeps a closed sprint in it when an unfinished
  issue is carried over, and drops an active one when the issue is removed from it;
* changelog histories for the Done-Means-Tested fields (filled in just before the status
  change that made them due) and for the development integration's remote links (branch,
  commits, pull request), so long histories exceed what ``expand=changelog`` embeds;
* changelog authors without ``emailAddress`` (Jira's privacy default): clients resolve
  account ids through ``/users/search``.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.sandbox.work.world import (
    BLOCKED,
    DONE,
    IN_PROGRESS,
    IN_REVIEW,
    STATUS_CATEGORY,
    TODO,
    Change,
    Person,
    Project,
    Sprint,
    WorkItem,
    WorkWorld,
)

JsonDict = dict[str, Any]

#: The profile time zone of every API caller (``GET /myself``): JQL dates are read in it and
#: issue timestamps are written in it.
CALLER_TIME_ZONE = "America/New_York"
#: Zones of the site's people, by team (sorted team names, in turn).
PEOPLE_TIME_ZONES = ("America/New_York", "Europe/Berlin", "America/Los_Angeles")

SPRINT_FIELD = "customfield_10020"
STORY_POINTS_FIELD = "customfield_10024"
SPRINT_SCHEMA = "com.pyxis.greenhopper.jira:gh-sprint"
STORY_POINTS_SCHEMA = "com.pyxis.greenhopper.jira:jsw-story-points"
_CF = "com.atlassian.jira.plugin.system.customfieldtypes:"

#: World status → Jira status id.
STATUS_IDS = {TODO: "10000", IN_PROGRESS: "3", BLOCKED: "10004", IN_REVIEW: "10003", DONE: "10001"}
#: Pulse category → Jira status category (id, key, name, colour).
CATEGORIES = {
    "todo": (2, "new", "To Do", "blue-gray"),
    "in_progress": (4, "indeterminate", "In Progress", "yellow"),
    "done": (3, "done", "Done", "green"),
}
#: Statuses of another workflow that no issue is in, listed by ``/status`` all the same.
EXTRA_STATUSES = (("10005", "Backlog", "todo"), ("6", "Closed", "done"))

#: World item type → (issue type id, name, hierarchy level, description).
ISSUE_TYPES = {
    "epic": ("10000", "Epic", 1, "A big user story that needs to be broken down."),
    "story": ("10001", "Story", 0, "Functionality or a feature expressed as a user goal."),
    "task": ("10002", "Task", 0, "A small, distinct piece of work."),
    "bug": ("10004", "Bug", 0, "A problem or error."),
}

#: The DMT fields: world attribute → (field id, display name, schema type, custom type key, items).
DMT_FIELDS: dict[str, tuple[str, str, str, str, str | None]] = {
    "ac_quality": ("customfield_10100", "Acceptance Criteria Quality", "option", _CF + "select", None),
    "unit_test_task": ("customfield_10101", "Unit Test Task", "option", _CF + "radiobuttons", None),
    "unit_test_status": ("customfield_10102", "Unit Testing Status", "option", _CF + "select", None),
    "coverage_pct": ("customfield_10103", "Code Coverage %", "number", _CF + "float", None),
    "pr_links": ("customfield_10104", "Pull Request Links", "string", _CF + "textarea", None),
    "ci_evidence": ("customfield_10105", "CI Evidence", "string", _CF + "url", None),
    "reviewer_signoff": ("customfield_10106", "Reviewer DMT Sign-off", "option", _CF + "select", None),
    "exception": ("customfield_10107", "DMT Exception", "array", _CF + "multicheckboxes", "option"),
    "exception_reason": ("customfield_10108", "DMT Exception Reason", "string", _CF + "textarea", None),
    "exception_approver": ("customfield_10109", "DMT Exception Approver", "user", _CF + "userpicker", None),
    "exception_expires": ("customfield_10110", "DMT Exception Expires", "date", _CF + "datepicker", None),
}
#: Drop-down options: (DMT attribute, world value) → (option id, label).
OPTIONS: dict[tuple[str, str | bool], tuple[str, str]] = {
    ("ac_quality", "incomplete"): ("10200", "Incomplete"),
    ("ac_quality", "testable"): ("10201", "Testable"),
    ("ac_quality", "final"): ("10202", "Final"),
    ("unit_test_task", True): ("10210", "Yes"),
    ("unit_test_task", False): ("10211", "No"),
    ("unit_test_status", "not_started"): ("10220", "Not started"),
    ("unit_test_status", "in_progress"): ("10221", "In progress"),
    ("unit_test_status", "done"): ("10222", "Done"),
    ("unit_test_status", "exception_approved"): ("10223", "Exception approved"),
    ("reviewer_signoff", True): ("10230", "Yes"),
    ("reviewer_signoff", False): ("10231", "No"),
    ("exception", True): ("10240", "Yes"),
}
OPTION_FIELDS = frozenset(attribute for attribute, _ in OPTIONS)
#: Fields nobody maps, some named to lure a match by display name: (id, name, type, custom key, items).
DECOY_FIELDS: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("customfield_10019", "Rank", "any", "com.pyxis.greenhopper.jira:gh-lexo-rank", None),
    ("customfield_10021", "Flagged", "array", _CF + "multicheckboxes", "option"),
    ("customfield_10015", "Start date", "date", _CF + "datepicker", None),
    ("customfield_10026", "Story Points (old)", "string", _CF + "textfield", None),
    ("customfield_10027", "Sprint Goal", "string", _CF + "textfield", None),
)
#: System fields: (id, name, schema type or None, items).
SYSTEM_FIELDS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("issuekey", "Key", None, None),
    ("summary", "Summary", "string", None),
    ("description", "Description", "string", None),
    ("issuetype", "Issue Type", "issuetype", None),
    ("project", "Project", "project", None),
    ("status", "Status", "status", None),
    ("statusCategory", "Status Category", "statusCategory", None),
    ("assignee", "Assignee", "user", None),
    ("reporter", "Reporter", "user", None),
    ("creator", "Creator", "user", None),
    ("created", "Created", "datetime", None),
    ("updated", "Updated", "datetime", None),
    ("resolutiondate", "Resolved", "datetime", None),
    ("resolution", "Resolution", "resolution", None),
    ("statuscategorychangedate", "Status Category Changed", "datetime", None),
    ("labels", "Labels", "array", "string"),
    ("priority", "Priority", "priority", None),
    ("parent", "Parent", None, None),
    ("issuelinks", "Linked Issues", "array", "issuelinks"),
    ("duedate", "Due date", "date", None),
)
#: Every field an issue carries (``fields=*all``).
ISSUE_FIELDS = frozenset(
    [f[0] for f in SYSTEM_FIELDS if f[0] not in ("issuekey", "statusCategory")]
    + [SPRINT_FIELD, STORY_POINTS_FIELD]
    + [f[0] for f in DECOY_FIELDS]
    + [f[0] for f in DMT_FIELDS.values()]
)
PROBLEM_LINK_TYPE = {"id": "10004", "name": "Problem/Incident", "inward": "is caused by", "outward": "causes"}
AUTOMATION_ACCOUNT = "557058:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "jira-sandbox:automation"))
#: Remote-link, DMT and world-change histories of an item number from these offsets.
_REMOTE_LINK_BASE, _DMT_BASE = 800, 900


# -- time ------------------------------------------------------------------------------------------


def jira_time(moment: datetime | None, zone: str = CALLER_TIME_ZONE) -> str | None:
    """``2026-11-20T05:15:30.000-0500``: Jira's issue timestamp, in ``zone``."""
    if moment is None:
        return None
    local = moment.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def agile_time(moment: datetime | None) -> str | None:
    """``2026-11-09T09:12:00.000Z``: the agile API's sprint timestamps (UTC)."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def account_id(email: str) -> str:
    """A person's stable Atlassian account id (24 hex digits, as Cloud's)."""
    return hashlib.sha1(f"jira-sandbox:{email.lower()}".encode()).hexdigest()[:24]


def history_id(item: WorkItem, number: int) -> str:
    """Stable changelog ids: the item's id times 1000 plus the history's own number (world
    changes by their index in ``item.changes``, which only ever grows at the end)."""
    return str(item.id * 1000 + number)


# -- the index -------------------------------------------------------------------------------------


@dataclass
class Index:
    """Look-ups over one world version (the world's own are linear scans)."""

    by_id: dict[int, WorkItem]
    by_key: dict[str, WorkItem]
    caused: dict[int, list[WorkItem]]  # story id → the bugs it caused
    sprints: dict[int, Sprint]
    people: dict[str, Person]
    projects: dict[str, Project]
    zones: dict[str, str]  # team → time zone
    version: tuple[int, int, int] = (0, 0, 0)


_INDEXES: dict[int, tuple[weakref.ref[WorkWorld], Index]] = {}
_INDEX_LOCK = threading.Lock()


def world_version(world: WorkWorld) -> tuple[int, int, int]:
    """Changes when items or sprints are added or advanced (the world only grows)."""
    return (world.advances, len(world.items), len(world.sprints))


def index_of(world: WorkWorld) -> Index:
    version = world_version(world)
    with _INDEX_LOCK:
        cached = _INDEXES.get(id(world))
        if cached is not None and cached[0]() is world and cached[1].version == version:
            return cached[1]
        caused: dict[int, list[WorkItem]] = {}
        for item in world.items:
            if item.caused_by_id is not None:
                caused.setdefault(item.caused_by_id, []).append(item)
        teams = sorted({p.team for p in world.people})
        index = Index(
            by_id={item.id: item for item in world.items},
            by_key={item.key: item for item in world.items},
            caused=caused,
            sprints={s.id: s for s in world.sprints},
            people={p.email: p for p in world.people},
            projects={p.key: p for p in world.projects},
            zones={team: PEOPLE_TIME_ZONES[n % len(PEOPLE_TIME_ZONES)] for n, team in enumerate(teams)},
            version=version,
        )
        for key in [k for k, (ref, _) in _INDEXES.items() if ref() is None]:
            del _INDEXES[key]
        _INDEXES[id(world)] = (weakref.ref(world), index)
        return index


# -- the Sprint field over time ------------------------------------------------------------------------


@dataclass(frozen=True)
class SprintStep:
    """One change of the Sprint field: the sprint id lists before and after it."""

    change_index: int
    before: tuple[int, ...]
    after: tuple[int, ...]


def sprint_steps(world: WorkWorld, item: WorkItem) -> list[SprintStep]:
    """The Sprint field's list at each of the item's sprint changes, as Jira keeps it.

    Added → appended. Removed from an active sprint → dropped. Moved from A to B: B appended,
    and A kept if it was closed by then (the record of an unfinished, carried-over issue)."""
    sprints = index_of(world).sprints
    current: list[int] = []
    steps: list[SprintStep] = []
    for number, change in enumerate(item.changes):
        if change.field != "sprint":
            continue
        before = tuple(current)
        if change.from_value:
            left = int(change.from_value)
            old = sprints.get(left)
            closed = old is not None and old.completed_at is not None and old.completed_at <= change.at
            if not (change.to_value and closed) and left in current:
                current.remove(left)
        if change.to_value and int(change.to_value) not in current:
            current.append(int(change.to_value))
        steps.append(SprintStep(number, before, tuple(current)))
    return steps


def sprint_list(world: WorkWorld, item: WorkItem) -> list[int]:
    """The item's Sprint field now: the sprint ids in the order they were added."""
    steps = sprint_steps(world, item)
    return list(steps[-1].after) if steps else []


def dmt_values(item: WorkItem) -> list[tuple[str, Any]]:
    """The item's filled-in DMT fields as ``(attribute, value)``, in field order (an unticked
    checkbox and an empty list count as not filled)."""
    out: list[tuple[str, Any]] = []
    for attribute in DMT_FIELDS:
        value = getattr(item.dmt, attribute)
        if value is None or (value is False and attribute == "exception") or value == []:
            continue
        out.append((attribute, value))
    return out


def dmt_anchor(item: WorkItem) -> datetime | None:
    """When the DMT fields were filled: just before the item's last move to In Review or Done."""
    moments = [c.at for c in item.changes if c.field == "status" and c.to_value in (IN_REVIEW, DONE)]
    return max(moments) if moments else None


def remote_link_count(item: WorkItem) -> int:
    """Remote links (branch, commits, pull request) the development integration adds."""
    if not item.pull_request_ids or item.first_in_progress_at is None:
        return 0
    return 2 + (item.id * 7) % 9


# -- rich text (ADF) --------------------------------------------------------------------------------------


def adf(lines: list[str], *, links: bool = False) -> JsonDict:
    """Atlassian Document Format: one paragraph per line (each a link when ``links``)."""
    paragraphs = []
    for line in lines:
        text: JsonDict = {"type": "text", "text": line}
        if links:
            text["marks"] = [{"type": "link", "attrs": {"href": line}}]
        paragraphs.append({"type": "paragraph", "content": [text] if line else []})
    return {"type": "doc", "version": 1, "content": paragraphs}


# -- the site ----------------------------------------------------------------------------------------------


@dataclass
class Site:
    """One request's view of the tenant's Jira site."""

    world: WorkWorld
    base: str  # e.g. http://127.0.0.1:8765/jira
    version: int = 3  # REST API version: 3 writes rich text as ADF, 2 as plain text
    index: Index = field(init=False)

    def __post_init__(self) -> None:
        self.index = index_of(self.world)

    # -- people -----------------------------------------------------------------------------

    def _avatars(self, seed: str) -> JsonDict:
        url = f"{self.base}/avatars/{hashlib.md5(seed.encode()).hexdigest()[:16]}"
        return {size: f"{url}?s={size.split('x')[0]}" for size in ("48x48", "24x24", "16x16", "32x32")}

    def user(self, person: Person, *, with_email: bool = True) -> JsonDict:
        """A person as Jira embeds users (``assignee``, ``reporter``, ``/users/search`` rows)."""
        aid = account_id(person.email)
        out: JsonDict = {
            "self": f"{self.base}/rest/api/{self.version}/user?accountId={aid}",
            "accountId": aid,
            "avatarUrls": self._avatars(aid),
            "displayName": person.name,
            "active": True,
            "timeZone": self.index.zones.get(person.team, PEOPLE_TIME_ZONES[0]),
            "accountType": "atlassian",
        }
        if with_email:
            out["emailAddress"] = person.email
        return out

    def user_by_email(self, email: str | None, *, with_email: bool = True) -> JsonDict | None:
        person = self.index.people.get(email or "")
        return self.user(person, with_email=with_email) if person is not None else None

    def automation_user(self) -> JsonDict:
        return {
            "self": f"{self.base}/rest/api/{self.version}/user?accountId={AUTOMATION_ACCOUNT}",
            "accountId": AUTOMATION_ACCOUNT,
            "accountType": "app",
            "avatarUrls": self._avatars(AUTOMATION_ACCOUNT),
            "displayName": "Automation for Jira",
            "active": True,
            "timeZone": "UTC",
        }

    def users(self) -> list[JsonDict]:
        """Every account of the site, as ``/users/search`` lists them: people, then the app."""
        return [*(self.user(p) | {"locale": "en_US"} for p in self.world.people), self.automation_user()]

    def myself(self, email: str | None) -> JsonDict:
        """The calling account: the API token's owner (any email) or the OAuth app's user."""
        name = (email or "pulse-oauth@sandbox.example").lower()
        aid = account_id(name)
        return {
            "self": f"{self.base}/rest/api/{self.version}/user?accountId={aid}",
            "accountId": aid,
            "accountType": "atlassian",
            "emailAddress": name,
            "avatarUrls": self._avatars(aid),
            "displayName": name.split("@", 1)[0].replace(".", " ").title(),
            "active": True,
            "timeZone": CALLER_TIME_ZONE,
            "locale": "en_US",
            "groups": {"size": 1, "items": []},
            "applicationRoles": {"size": 1, "items": []},
            "expand": "groups,applicationRoles",
        }

    # -- projects, boards, sprints ------------------------------------------------------------

    def project(self, proj: Project, *, full: bool = False) -> JsonDict:
        out: JsonDict = {
            "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
            "self": f"{self.base}/rest/api/{self.version}/project/{proj.id}",
            "id": str(proj.id),
            "key": proj.key,
            "name": proj.name,
            "avatarUrls": self._avatars(proj.key),
            "projectTypeKey": "software",
            "simplified": False,
            "style": "classic",
            "isPrivate": False,
            "properties": {},
        }
        if full:
            leads = self.world.leads(proj.team)
            out["description"] = f"Planning of the {proj.team} team."
            out["lead"] = self.user(leads[0], with_email=False) if leads else None
            out["issueTypes"] = [self.issue_type(kind) for kind in ("epic", "story", "task", "bug")]
            out["assigneeType"] = "UNASSIGNED"
        return out

    def board_id(self, proj: Project) -> int:
        """One Scrum board per project, numbered from 1 in the world's project order."""
        return self.world.projects.index(proj) + 1

    def board(self, proj: Project) -> JsonDict:
        number = self.board_id(proj)
        return {
            "id": number,
            "self": f"{self.base}/rest/agile/1.0/board/{number}",
            "name": f"{proj.key} board",
            "type": "scrum",
            "location": {
                "projectId": proj.id,
                "displayName": f"{proj.name} ({proj.key})",
                "projectName": proj.name,
                "projectKey": proj.key,
                "projectTypeKey": "software",
                "avatarURI": f"{self.base}/rest/api/2/universal_avatar/view/type/project/avatar/{proj.id}?size=small",
                "name": f"{proj.name} ({proj.key})",
            },
        }

    def sprint(self, spr: Sprint, *, in_issue: bool = False) -> JsonDict:
        """A sprint as the agile API lists it (or, ``in_issue``, as the Sprint field holds it)."""
        proj = self.index.projects.get(spr.project_key)
        origin = self.board_id(proj) if proj is not None else 0
        state = spr.state(self.world.clock)
        out: JsonDict = {"id": spr.id}
        if not in_issue:
            out["self"] = f"{self.base}/rest/agile/1.0/sprint/{spr.id}"
        out |= {"state": state, "name": spr.name, "startDate": agile_time(spr.start), "endDate": agile_time(spr.end)}
        if state == "closed":
            out["completeDate"] = agile_time(spr.completed_at)
        if in_issue:
            out |= {"boardId": origin, "goal": ""}
        else:
            out |= {"createdDate": agile_time(spr.start - timedelta(days=3)), "originBoardId": origin, "goal": ""}
        return out

    # -- statuses, issue types, fields ---------------------------------------------------------

    def status_category(self, category: str) -> JsonDict:
        number, key, name, colour = CATEGORIES[category]
        return {
            "self": f"{self.base}/rest/api/{self.version}/statuscategory/{number}",
            "id": number,
            "key": key,
            "colorName": colour,
            "name": name,
        }

    def status(self, name: str, *, status_id: str | None = None, category: str | None = None) -> JsonDict:
        sid = status_id or STATUS_IDS[name]
        return {
            "self": f"{self.base}/rest/api/{self.version}/status/{sid}",
            "description": "",
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": name,
            "untranslatedName": name,
            "id": sid,
            "statusCategory": self.status_category(category or STATUS_CATEGORY[name]),
        }

    def statuses(self) -> list[JsonDict]:
        out = [self.status(name) for name in STATUS_IDS]
        return out + [self.status(name, status_id=sid, category=cat) for sid, name, cat in EXTRA_STATUSES]

    def issue_type(self, kind: str) -> JsonDict:
        type_id, name, level, description = ISSUE_TYPES[kind]
        return {
            "self": f"{self.base}/rest/api/{self.version}/issuetype/{type_id}",
            "id": type_id,
            "description": description,
            "iconUrl": f"{self.base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/{type_id}?size=medium",
            "name": name,
            "subtask": False,
            "avatarId": int(type_id),
            "hierarchyLevel": level,
        }

    @staticmethod
    def fields() -> list[JsonDict]:
        """``GET /rest/api/{2,3}/field``: system fields, then custom fields by number."""
        out: list[JsonDict] = []
        for field_id, name, kind, items in SYSTEM_FIELDS:
            entry: JsonDict = {
                "id": field_id,
                "key": field_id,
                "name": name,
                "custom": False,
                "orderable": field_id not in ("issuekey", "created", "updated", "statusCategory", "creator"),
                "navigable": True,
                "searchable": True,
                "clauseNames": [field_id],
            }
            if kind is not None:
                entry["schema"] = {"type": kind, **({"items": items} if items else {}), "system": field_id}
            out.append(entry)
        custom = [
            _custom_field(SPRINT_FIELD, "Sprint", "array", SPRINT_SCHEMA, "json"),
            _custom_field(STORY_POINTS_FIELD, "Story Points", "number", STORY_POINTS_SCHEMA, None),
            *(_custom_field(*spec) for spec in DECOY_FIELDS),
            *(_custom_field(*spec) for spec in DMT_FIELDS.values()),
        ]
        custom.sort(key=lambda f: int(f["id"].rsplit("_", 1)[1]))
        return out + custom

    def rich_text(self, lines: list[str], *, links: bool = False) -> Any:
        """A rich-text value: ADF in API v3, plain text in API v2."""
        if not lines:
            return None
        return adf(lines, links=links) if self.version >= 3 else "\n".join(lines)

    # -- changelog -----------------------------------------------------------------------------------

    def _author(self, email: str | None) -> JsonDict:
        return self.user_by_email(email, with_email=False) or self.automation_user()

    def _change_entry(self, change: Change, step: SprintStep | None) -> JsonDict:
        people, sprints = self.index.people, self.index.sprints
        if change.field == "status":
            return _entry(
                "status",
                "status",
                "jira",
                STATUS_IDS.get(change.from_value or ""),
                change.from_value,
                STATUS_IDS.get(change.to_value or ""),
                change.to_value,
            )
        if change.field == "assignee":
            old, new = people.get(change.from_value or ""), people.get(change.to_value or "")
            return _entry(
                "assignee",
                "assignee",
                "jira",
                account_id(old.email) if old else None,
                old.name if old else None,
                account_id(new.email) if new else None,
                new.name if new else None,
            )
        if change.field == "story_points":
            return _entry("Story Points", STORY_POINTS_FIELD, "custom", None, change.from_value, None, change.to_value)
        assert step is not None, "every sprint change has a step"

        def ids(values: tuple[int, ...]) -> str:
            return ", ".join(str(v) for v in values)

        def names(values: tuple[int, ...]) -> str:
            return ", ".join(sprints[v].name for v in values if v in sprints)

        return _entry(
            "Sprint", SPRINT_FIELD, "custom", ids(step.before), names(step.before), ids(step.after), names(step.after)
        )

    def _dmt_entry(self, attribute: str, value: Any) -> JsonDict:
        field_id, name = DMT_FIELDS[attribute][:2]
        if attribute in OPTION_FIELDS:
            option_id, label = OPTIONS[(attribute, value)]
            to = f"[{option_id}]" if attribute == "exception" else option_id
            return _entry(name, field_id, "custom", None, None, to, label)
        if attribute == "exception_approver":
            person = self.index.people.get(value)
            return _entry(name, field_id, "custom", None, None, account_id(value), person.name if person else value)
        if attribute == "pr_links":
            return _entry(name, field_id, "custom", None, None, None, "\n".join(value))
        if attribute == "coverage_pct":
            return _entry(name, field_id, "custom", None, None, None, f"{float(value):g}")
        if attribute == "exception_expires":
            text = value.isoformat() if isinstance(value, date) else str(value)
            return _entry(name, field_id, "custom", None, None, text, text)
        return _entry(name, field_id, "custom", None, None, None, str(value))

    def histories(self, item: WorkItem) -> list[JsonDict]:
        """Every changelog history of ``item``, oldest first (as ``/issue/{id}/changelog`` pages)."""
        steps = {step.change_index: step for step in sprint_steps(self.world, item)}
        entries: list[tuple[datetime, int, JsonDict]] = []
        for number, change in enumerate(item.changes):
            entries.append(
                (
                    change.at,
                    number,
                    self._history(
                        item, number, change.author, change.at, self._change_entry(change, steps.get(number))
                    ),
                )
            )
        owner = item.assignee or item.reporter
        anchor = dmt_anchor(item)
        values = dmt_values(item)
        if anchor is not None:
            for number, (attribute, value) in enumerate(values):
                at = anchor - timedelta(seconds=40 * (len(values) - number))
                author = item.dmt.exception_approver if attribute.startswith("exception") else owner
                entry = self._dmt_entry(attribute, value)
                entries.append((at, _DMT_BASE + number, self._history(item, _DMT_BASE + number, author, at, entry)))
        count = remote_link_count(item)
        started = item.first_in_progress_at
        if count and started is not None:
            span = ((anchor or item.updated_at) - started) / (count + 1)
            for number in range(count):
                at = (started + span * (number + 1)).replace(microsecond=0)
                kind = "Branch" if number == 0 else ("Pull request" if number == count - 1 else "Commit")
                text = f'This issue links to "{kind} - {item.key}: {item.title} (GitHub)"'
                entry = {
                    "field": "RemoteIssueLink",
                    "fieldtype": "jira",
                    "from": None,
                    "fromString": None,
                    "to": str(item.id * 100 + number),
                    "toString": text,
                }
                number_ = _REMOTE_LINK_BASE + number
                entries.append((at, number_, self._history(item, number_, owner, at, entry)))
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        return [history for _, _, history in entries]

    def _history(self, item: WorkItem, number: int, author: str | None, at: datetime, entry: JsonDict) -> JsonDict:
        return {
            "id": history_id(item, number),
            "author": self._author(author),
            "created": jira_time(at),
            "items": [entry],
        }

    # -- issues ----------------------------------------------------------------------------------------

    def _priority(self) -> JsonDict:
        return {
            "self": f"{self.base}/rest/api/{self.version}/priority/3",
            "name": "Medium",
            "id": "3",
            "iconUrl": f"{self.base}/images/icons/priorities/medium.svg",
        }

    def issue_ref(self, other: WorkItem) -> JsonDict:
        """Another issue as ``parent`` and ``issuelinks`` name it."""
        return {
            "id": str(other.id),
            "key": other.key,
            "self": f"{self.base}/rest/api/{self.version}/issue/{other.id}",
            "fields": {
                "summary": other.title,
                "status": self.status(other.status),
                "priority": self._priority(),
                "issuetype": self.issue_type(other.type),
            },
        }

    def _links(self, item: WorkItem) -> list[JsonDict]:
        """``issuelinks``: a post-release bug "is caused by" its story; the story "causes" it."""
        link_type = PROBLEM_LINK_TYPE | {"self": f"{self.base}/rest/api/{self.version}/issueLinkType/10004"}
        out: list[JsonDict] = []
        story = self.index.by_id.get(item.caused_by_id) if item.caused_by_id is not None else None
        if story is not None:
            link = str(20_000 + item.id)
            out.append(
                {
                    "id": link,
                    "self": f"{self.base}/rest/api/{self.version}/issueLink/{link}",
                    "type": link_type,
                    "inwardIssue": self.issue_ref(story),
                }
            )
        for bug in self.index.caused.get(item.id, []):
            link = str(20_000 + bug.id)
            out.append(
                {
                    "id": link,
                    "self": f"{self.base}/rest/api/{self.version}/issueLink/{link}",
                    "type": link_type,
                    "outwardIssue": self.issue_ref(bug),
                }
            )
        return out

    def _dmt_value(self, attribute: str, value: Any) -> Any:
        if attribute in OPTION_FIELDS:
            option_id, label = OPTIONS[(attribute, value)]
            option = {
                "self": f"{self.base}/rest/api/{self.version}/customFieldOption/{option_id}",
                "value": label,
                "id": option_id,
            }
            return [option] if attribute == "exception" else option
        if attribute == "coverage_pct":
            return float(value)
        if attribute == "pr_links":
            return self.rich_text(list(value), links=True)
        if attribute == "exception_reason":
            return self.rich_text([str(value)])
        if attribute == "exception_approver":
            return self.user_by_email(value)
        if attribute == "exception_expires":
            return value.isoformat() if isinstance(value, date) else str(value)
        return value

    def issue_fields(self, item: WorkItem) -> JsonDict:
        """Every field of ``item`` (a search answer keeps the requested ones)."""
        proj = self.index.projects[item.project_key]
        resolved = item.resolved_at
        reporter = self.user_by_email(item.reporter)
        sprints = [self.sprint(self.index.sprints[s], in_issue=True) for s in sprint_list(self.world, item)]
        out: JsonDict = {
            "summary": item.title,
            "description": self.rich_text(item.description.splitlines()),
            "issuetype": self.issue_type(item.type),
            "project": {
                k: v
                for k, v in self.project(proj).items()
                if k in ("self", "id", "key", "name", "projectTypeKey", "simplified", "avatarUrls")
            },
            "status": self.status(item.status),
            "statuscategorychangedate": jira_time(_category_changed(item)),
            "assignee": self.user_by_email(item.assignee),
            "reporter": reporter,
            "creator": reporter,
            "created": jira_time(item.created_at),
            "updated": jira_time(item.updated_at),
            "resolutiondate": jira_time(resolved),
            "resolution": {
                "self": f"{self.base}/rest/api/{self.version}/resolution/10000",
                "id": "10000",
                "description": "Work done.",
                "name": "Done",
            }
            if resolved
            else None,
            "labels": list(item.labels),
            "priority": self._priority(),
            "issuelinks": self._links(item),
            "duedate": None,
            "customfield_10019": f"0|i{item.id:06d}:",
            "customfield_10021": None,
            "customfield_10015": None,
            "customfield_10026": None,
            "customfield_10027": None,
            SPRINT_FIELD: sprints or None,
            STORY_POINTS_FIELD: item.story_points,
        }
        parent = self.index.by_id.get(item.parent_id) if item.parent_id is not None else None
        if parent is not None:
            out["parent"] = self.issue_ref(parent)
        filled = dict(dmt_values(item))
        for attribute, spec in DMT_FIELDS.items():
            out[spec[0]] = self._dmt_value(attribute, filled[attribute]) if attribute in filled else None
        return out

    def issue(
        self, item: WorkItem, wanted: set[str] | None, *, changelog: bool = False, embedded: int = 20
    ) -> JsonDict:
        """One issue as search and ``GET /issue`` return it: its id only unless fields were asked for.

        With ``changelog``, at most ``embedded`` histories are embedded, the newest first;
        ``total`` says how many there are (the rest come from the changelog endpoints)."""
        if not wanted or wanted <= {"id"}:
            return {"id": str(item.id)}
        every = self.issue_fields(item)
        out: JsonDict = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": str(item.id),
            "self": f"{self.base}/rest/api/{self.version}/issue/{item.id}",
            "key": item.key,
            "fields": {name: every.get(name) for name in sorted(wanted) if name in every},
        }
        if changelog:
            every_history = self.histories(item)
            shown = every_history[::-1][:embedded]
            out["changelog"] = {"startAt": 0, "maxResults": len(shown), "total": len(every_history), "histories": shown}
        return out


def _custom_field(field_id: str, name: str, kind: str, custom: str, items: str | None) -> JsonDict:
    number = int(field_id.rsplit("_", 1)[1])
    schema: JsonDict = {"type": kind, **({"items": items} if items else {}), "custom": custom, "customId": number}
    return {
        "id": field_id,
        "key": field_id,
        "name": name,
        "untranslatedName": name,
        "custom": True,
        "orderable": True,
        "navigable": True,
        "searchable": True,
        "clauseNames": [f"cf[{number}]", name],
        "schema": schema,
    }


def _entry(field: str, field_id: str, fieldtype: str, frm: Any, frm_s: Any, to: Any, to_s: Any) -> JsonDict:
    return {
        "field": field,
        "fieldtype": fieldtype,
        "fieldId": field_id,
        "from": frm,
        "fromString": frm_s,
        "to": to,
        "toString": to_s,
    }


def _category_changed(item: WorkItem) -> datetime:
    moment, previous = item.created_at, STATUS_CATEGORY[TODO]
    for change in item.changes:
        if change.field == "status" and change.to_value is not None:
            category = STATUS_CATEGORY[change.to_value]
            if category != previous:
                moment, previous = change.at, category
    return moment


def select_fields(requested: list[str]) -> set[str] | None:
    """The field ids a ``fields`` parameter asks for; None: only the issue's id."""
    wanted: set[str] = set()
    excluded: set[str] = set()
    for name in (part.strip() for value in requested for part in value.split(",")):
        if name in ("*all", "*navigable"):
            wanted |= ISSUE_FIELDS
        elif name.startswith("-"):
            excluded.add(name[1:])
        elif name:
            wanted.add(name)
    wanted -= excluded
    return wanted or None


def malformed_issue(issue_json: JsonDict) -> JsonDict:
    """``issue_json`` broken as a faulty add-on or proxy would: no key, a ``created`` that is
    no timestamp, no status."""
    broken = dict(issue_json)
    broken.pop("key", None)
    fields_ = dict(broken.get("fields") or {})
    fields_["created"] = "last Tuesday"
    fields_.pop("status", None)
    broken["fields"] = fields_
    return broken
