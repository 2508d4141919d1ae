"""The planning world as Azure Boards sees it: Agile-process work items, their revisions, fields.

A :class:`~connectors.sandbox.work.world.WorkWorld` holds canonical statuses and a list of
changes per item; Azure Boards stores a work item as numbered *revisions*, each a complete set
of field values. :func:`revisions` replays an item's changes into those revisions (one per
change moment, the first at creation), mapping the world onto the Agile process:

===============  =================================================================
world status     Azure Boards
===============  =================================================================
To Do            ``New`` (category Proposed)
In Progress      ``Active`` (InProgress)
Blocked          ``Active`` with ``Microsoft.VSTS.CMMI.Blocked = "Yes"`` (``"No"`` once unblocked)
In Review        ``Resolved`` (Resolved); a Task has no Resolved state and stays ``Active``
Done             ``Closed`` (Completed)
===============  =================================================================

The project key is the Azure project name (``PLAT``), its team ``PLAT Team``; a sprint is the
iteration ``PLAT\\PLAT Sprint 12``; items outside a sprint sit in the project's root
iteration ``PLAT``. Timestamps are rendered with millisecond precision, as Azure stores them,
and every comparison (WIQL, ``asOf``, the revisions feed) uses the rendered values.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.sandbox.azure_common import project_guid, project_name, pull_request_id, repository_guid
from connectors.sandbox.github.world import GitHubWorld
from connectors.sandbox.work.world import (
    BLOCKED,
    IN_PROGRESS,
    IN_REVIEW,
    TODO,
    Person,
    Project,
    Sprint,
    WorkItem,
    WorkWorld,
)

#: Work item types of the Agile process, by the world's item kind.
WORK_ITEM_TYPES = {"story": "User Story", "bug": "Bug", "task": "Task", "epic": "Epic"}
#: The states of each type and their categories (``/workitemtypes/{type}/states``), in order.
TYPE_STATES: dict[str, list[tuple[str, str, str]]] = {
    "User Story": [
        ("New", "b2b2b2", "Proposed"),
        ("Active", "007acc", "InProgress"),
        ("Resolved", "ff9d00", "Resolved"),
        ("Closed", "339933", "Completed"),
        ("Removed", "ffffff", "Removed"),
    ],
    "Bug": [
        ("New", "b2b2b2", "Proposed"),
        ("Active", "007acc", "InProgress"),
        ("Resolved", "ff9d00", "Resolved"),
        ("Closed", "339933", "Completed"),
    ],
    "Task": [
        ("New", "b2b2b2", "Proposed"),
        ("Active", "007acc", "InProgress"),
        ("Closed", "339933", "Completed"),
        ("Removed", "ffffff", "Removed"),
    ],
    "Epic": [
        ("New", "b2b2b2", "Proposed"),
        ("Active", "007acc", "InProgress"),
        ("Resolved", "ff9d00", "Resolved"),
        ("Closed", "339933", "Completed"),
        ("Removed", "ffffff", "Removed"),
    ],
}
TYPE_INFO = {
    "User Story": ("Microsoft.VSTS.WorkItemTypes.UserStory", "009ccc", "icon_book"),
    "Bug": ("Microsoft.VSTS.WorkItemTypes.Bug", "cc293d", "icon_insect"),
    "Task": ("Microsoft.VSTS.WorkItemTypes.Task", "f2cb1d", "icon_clipboard"),
    "Epic": ("Microsoft.VSTS.WorkItemTypes.Epic", "ff7b00", "icon_crown"),
}

AC_QUALITY = {"incomplete": "Incomplete", "testable": "Testable", "final": "Final"}
UNIT_TEST_STATUS = {
    "not_started": "Not Started",
    "in_progress": "In Progress",
    "done": "Done",
    "exception_approved": "Exception Approved",
}

# Field reference names.
STORY_POINTS = "Microsoft.VSTS.Scheduling.StoryPoints"
BLOCKED_FIELD = "Microsoft.VSTS.CMMI.Blocked"
DMT_FIELDS = {
    "ac_quality": "Custom.AcceptanceCriteriaQuality",
    "unit_test_task": "Custom.UnitTestTask",
    "unit_test_status": "Custom.UnitTestingStatus",
    "coverage_pct": "Custom.CodeCoverage",
    "pr_links": "Custom.PRLinks",
    "ci_evidence": "Custom.CIEvidenceLink",
    "reviewer_signoff": "Custom.ReviewerDMTSignoff",
    "exception": "Custom.DMTException",
    "exception_reason": "Custom.DMTExceptionReason",
    "exception_approver": "Custom.DMTExceptionApprover",
    "exception_expires": "Custom.DMTExceptionExpires",
}
IDENTITY_FIELDS = frozenset(
    {
        "System.AssignedTo",
        "System.CreatedBy",
        "System.ChangedBy",
        "System.AuthorizedAs",
        DMT_FIELDS["exception_approver"],
    }
)


@dataclass(frozen=True)
class FieldDef:
    reference_name: str
    name: str
    type: str  # Azure's field type: string, integer, double, dateTime, plainText, html, treePath, boolean, identity…
    picklist: tuple[str, ...] = ()  # values of a picklist field
    read_only: bool = False

    @property
    def is_picklist(self) -> bool:
        return bool(self.picklist)

    @property
    def picklist_id(self) -> str | None:
        if not self.picklist:
            return None
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-picklist:{self.reference_name}"))


#: The organisation's fields (``/_apis/wit/fields``): system fields, Agile fields, the DMT
#: fields the tenant added, and look-alikes that must not be mapped.
FIELDS: tuple[FieldDef, ...] = (
    FieldDef("System.Id", "ID", "integer", read_only=True),
    FieldDef("System.Rev", "Rev", "integer", read_only=True),
    FieldDef("System.Title", "Title", "string"),
    FieldDef("System.Description", "Description", "html"),
    FieldDef("System.WorkItemType", "Work Item Type", "string", read_only=True),
    FieldDef("System.State", "State", "string"),
    FieldDef("System.Reason", "Reason", "string"),
    FieldDef("System.AssignedTo", "Assigned To", "identity"),
    FieldDef("System.CreatedBy", "Created By", "identity", read_only=True),
    FieldDef("System.CreatedDate", "Created Date", "dateTime", read_only=True),
    FieldDef("System.ChangedBy", "Changed By", "identity", read_only=True),
    FieldDef("System.ChangedDate", "Changed Date", "dateTime", read_only=True),
    FieldDef("System.TeamProject", "Team Project", "string", read_only=True),
    FieldDef("System.AreaPath", "Area Path", "treePath"),
    FieldDef("System.IterationPath", "Iteration Path", "treePath"),
    FieldDef("System.Tags", "Tags", "plainText"),
    FieldDef("System.CommentCount", "Comment Count", "integer", read_only=True),
    FieldDef("System.History", "History", "history"),
    FieldDef("Microsoft.VSTS.Common.Priority", "Priority", "integer", picklist=("1", "2", "3", "4")),
    FieldDef("Microsoft.VSTS.Common.StateChangeDate", "State Change Date", "dateTime", read_only=True),
    FieldDef("Microsoft.VSTS.Common.ActivatedDate", "Activated Date", "dateTime", read_only=True),
    FieldDef("Microsoft.VSTS.Common.ResolvedDate", "Resolved Date", "dateTime", read_only=True),
    FieldDef("Microsoft.VSTS.Common.ClosedDate", "Closed Date", "dateTime", read_only=True),
    FieldDef("Microsoft.VSTS.Common.AcceptanceCriteria", "Acceptance Criteria", "html"),
    FieldDef(STORY_POINTS, "Story Points", "double"),
    FieldDef("Microsoft.VSTS.Scheduling.OriginalEstimate", "Original Estimate", "double"),
    FieldDef("Microsoft.VSTS.Scheduling.RemainingWork", "Remaining Work", "double"),
    FieldDef("Microsoft.VSTS.Scheduling.Effort", "Effort", "double"),
    FieldDef(BLOCKED_FIELD, "Blocked", "string", picklist=("Yes", "No")),
    FieldDef("Microsoft.VSTS.Build.IntegrationBuild", "Integrated in Build", "string"),
    FieldDef(DMT_FIELDS["ac_quality"], "Acceptance Criteria Quality", "string", picklist=tuple(AC_QUALITY.values())),
    FieldDef(DMT_FIELDS["unit_test_task"], "Unit Test Task", "boolean"),
    FieldDef(
        DMT_FIELDS["unit_test_status"], "Unit Testing Status", "string", picklist=tuple(UNIT_TEST_STATUS.values())
    ),
    FieldDef(DMT_FIELDS["coverage_pct"], "Code Coverage", "double"),
    FieldDef(DMT_FIELDS["pr_links"], "PR Links", "plainText"),
    FieldDef(DMT_FIELDS["ci_evidence"], "CI Evidence Link", "string"),
    FieldDef(DMT_FIELDS["reviewer_signoff"], "Reviewer DMT Signoff", "boolean"),
    FieldDef(DMT_FIELDS["exception"], "DMT Exception", "boolean"),
    FieldDef(DMT_FIELDS["exception_reason"], "DMT Exception Reason", "plainText"),
    FieldDef(DMT_FIELDS["exception_approver"], "DMT Exception Approver", "identity"),
    FieldDef(DMT_FIELDS["exception_expires"], "DMT Exception Expires", "dateTime"),
    # Look-alikes a careless mapping would pick.
    FieldDef("Custom.StoryPointsLegacy", "Story Points (legacy)", "string"),
    FieldDef("Custom.SprintGoal", "Sprint Goal", "plainText"),
    FieldDef("Custom.CoverageNotes", "Coverage Notes", "plainText"),
    FieldDef("Custom.ExceptionNotes", "Exception Notes", "plainText"),
    FieldDef("Custom.TestEnvironment", "Test Environment", "string", picklist=("Dev", "Staging", "Production")),
)
FIELDS_BY_REF = {f.reference_name.lower(): f for f in FIELDS}

#: What a Basic-auth-less identity URL looks like on dev.azure.com.
_VSSPS = "https://spsprodweu5.vssps.visualstudio.com/A{org}/_apis/Identities/{id}"


def ms(moment: datetime) -> datetime:
    """``moment`` cut to whole milliseconds (Azure's precision), as aware UTC."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def azure_time(moment: datetime) -> str:
    """``2026-03-31T18:36:26.23Z``: milliseconds without trailing zeros, as Azure writes them."""
    moment = ms(moment)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond // 1000:03d}".rstrip("0")
    return text + "Z"


def azure_date(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def identity_id(email: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-identity:{email.lower()}"))


def identity(world: WorkWorld, email: str, org: str, base_url: str) -> dict[str, Any]:
    """An identity reference ``{displayName, url, _links, id, uniqueName, imageUrl, descriptor}``."""
    person = world.person(email)
    name = person.name if person else email.split("@")[0].replace(".", " ").title()
    ident = identity_id(email)
    descriptor = "aad." + base64.b64encode(ident.encode()).decode().rstrip("=")
    avatar = f"{base_url}/{org}/_apis/GraphProfile/MemberAvatars/{descriptor}"
    return {
        "displayName": name,
        "url": _VSSPS.format(org=uuid.uuid5(uuid.NAMESPACE_URL, org), id=ident),
        "_links": {"avatar": {"href": avatar}},
        "id": ident,
        "uniqueName": email,
        "imageUrl": avatar,
        "descriptor": descriptor,
    }


def identity_text(world: WorkWorld, email: str) -> str:
    """An identity as the reporting feed writes it without ``includeIdentityRef``: ``Name <email>``."""
    person = world.person(email)
    name = person.name if person else email.split("@")[0]
    return f"{name} <{email}>"


def team_name(project: Project) -> str:
    return f"{project_name(project)} Team"


def team_id(tenant: str, project: Project) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-team:{tenant}:{project.key}"))


def iteration_path(sprint: Sprint) -> str:
    return f"{sprint.project_key}\\{sprint.name}"


def iteration_id(tenant: str, sprint: Sprint) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-iteration:{tenant}:{sprint.id}"))


def time_frame(sprint: Sprint, now: datetime) -> str:
    """``past``, ``current`` or ``future``, from the sprint's state in the world."""
    return {"closed": "past", "active": "current", "future": "future"}[sprint.state(now)]


def iteration_dates(sprint: Sprint) -> tuple[date, date]:
    """Azure's whole-day ``startDate`` and inclusive ``finishDate``: the start day, and the day
    before the end (the next sprint starts on the end day)."""
    return sprint.start.date(), (sprint.end - timedelta(days=1)).date()


@dataclass
class Revision:
    """One revision of a work item: the complete field values after a change moment."""

    rev: int
    at: datetime  # ms precision
    by: str  # email
    state: str
    reason: str
    iteration: str
    points: float | None
    assignee: str | None
    blocked: str | None  # "Yes" | "No" | None (never set)
    activated: datetime | None = None
    resolved: datetime | None = None
    closed: datetime | None = None
    state_changed: datetime | None = None
    changed_fields: set[str] = field(default_factory=set)


@dataclass
class RenderedItem:
    item: WorkItem
    type: str
    project: str
    revisions: list[Revision]

    @property
    def changed(self) -> datetime:
        return self.revisions[-1].at

    def at(self, moment: datetime | None) -> Revision | None:
        """The revision in force at ``moment`` (the latest when None); None before creation."""
        if moment is None:
            return self.revisions[-1]
        current = None
        for revision in self.revisions:
            if revision.at > moment:
                break
            current = revision
        return current


def azure_state(kind: str, status: str) -> str:
    if status == TODO:
        return "New"
    if status in (IN_PROGRESS, BLOCKED):
        return "Active"
    if status == IN_REVIEW:
        return "Active" if kind == "task" else "Resolved"
    return "Closed"


def _reason(kind: str, old: str | None, new: str) -> str:
    if new == "New":
        return "New"
    if new == "Active":
        return "Reactivated" if old in ("Resolved", "Closed") else "Implementation started"
    if new == "Resolved":
        return "Fixed" if kind == "bug" else "Code complete and unit tests pass"
    return "Verified" if kind == "bug" else "Acceptance tests pass"


def revisions(world: WorkWorld, item: WorkItem, sprint_paths: dict[int, str]) -> list[Revision]:
    """Replay ``item``'s changes into Azure revisions (rev 1 at creation, one per change moment)."""
    root = project_name(world.project(item.project_key) or Project(item.project_key, "", "", 0))
    created = ms(item.created_at)
    status, sprint, assignee = TODO, None, None
    points = item.initial_points
    blocked: str | None = None
    first = Revision(1, created, item.reporter, "New", "New", root, points, None, None, state_changed=created)
    out = [first]
    moments: dict[datetime, list[Any]] = {}
    for change in item.changes:
        moments.setdefault(max(ms(change.at), created), []).append(change)
    for moment in sorted(moments):
        previous = out[-1]
        author = previous.by
        touched: set[str] = set()
        for change in moments[moment]:
            author = change.author
            if change.field == "status":
                status = change.to_value or TODO
                if status == BLOCKED:
                    blocked = "Yes"
                elif blocked == "Yes":
                    blocked = "No"
                touched.add("status")
            elif change.field == "sprint":
                sprint = int(change.to_value) if change.to_value else None
                touched.add("sprint")
            elif change.field == "assignee":
                assignee = change.to_value
                touched.add("assignee")
            elif change.field == "story_points":
                points = float(change.to_value) if change.to_value else None
                touched.add("story_points")
        state = azure_state(item.type, status)
        revision = Revision(
            rev=previous.rev + 1,
            at=moment,
            by=author,
            state=state,
            reason=previous.reason if state == previous.state else _reason(item.type, previous.state, state),
            iteration=sprint_paths.get(sprint, root) if sprint is not None else root,
            points=points,
            assignee=assignee,
            blocked=blocked,
            activated=previous.activated,
            resolved=previous.resolved,
            closed=previous.closed,
            state_changed=previous.state_changed,
            changed_fields=touched,
        )
        if state != previous.state:
            revision.state_changed = moment
            if state == "Active":
                revision.activated = moment
            if state == "Resolved":
                revision.resolved = moment
            if state == "Closed":
                revision.closed = moment
            if state in ("New", "Active"):  # reactivated: Azure clears the resolved and closed dates
                revision.resolved = None
                revision.closed = None
            if state == "New":
                revision.activated = None
        out.append(revision)
    return out


class BoardsView:
    """One tenant's world rendered for Azure Boards (rebuilt when the world changes)."""

    def __init__(self, world: WorkWorld, github: GitHubWorld | None) -> None:
        self.world = world
        self.tenant = world.slug
        #: The reporting feed's revisions per (project, types, start), sorted by the feed's order
        #: with their keys: a page is a bisection, not a sort of every revision (see api.py).
        self.feeds: dict[tuple[str, tuple[str, ...], datetime | None], tuple[list[Any], list[Any]]] = {}
        self.sprint_paths = {sprint.id: iteration_path(sprint) for sprint in world.sprints}
        self.items: dict[int, RenderedItem] = {}
        for item in world.items:
            project = world.project(item.project_key)
            assert project is not None
            self.items[item.id] = RenderedItem(
                item, WORK_ITEM_TYPES[item.type], project_name(project), revisions(world, item, self.sprint_paths)
            )
        self.children: dict[int, list[int]] = {}
        self.caused: dict[int, list[int]] = {}
        for item in world.items:
            if item.parent_id is not None:
                self.children.setdefault(item.parent_id, []).append(item.id)
            if item.caused_by_id is not None:
                self.caused.setdefault(item.caused_by_id, []).append(item.id)
        self.pull_requests: dict[int, tuple[str, int]] = {}  # world PR id -> (repository GUID, Azure PR id)
        if github is not None:
            for pr in github.pull_requests():
                self.pull_requests[pr.id] = (repository_guid(pr.repo.id), pull_request_id(github, pr))
        self.git_project = project_name(world.projects[0]) if world.projects else self.tenant

    def project(self, name: str) -> Project | None:
        """A project by its Azure name or GUID (case-insensitive, as Azure matches names)."""
        for project in self.world.projects:
            azure = project_name(project)
            if name.lower() in (azure.lower(), project_guid(self.tenant, azure)):
                return project
        return None

    def project_items(self, project: Project) -> list[RenderedItem]:
        name = project_name(project)
        return [rendered for rendered in self.items.values() if rendered.project == name]

    # -- work item JSON -----------------------------------------------------------------

    def fields(self, rendered: RenderedItem, revision: Revision, org: str, base_url: str) -> dict[str, Any]:
        """Every non-empty field of ``rendered`` at ``revision`` (Azure leaves empty fields out)."""
        world, item = self.world, rendered.item
        latest = revision is rendered.revisions[-1]

        def who(email: str) -> dict[str, Any]:
            return identity(world, email, org, base_url)

        out: dict[str, Any] = {
            "System.Id": item.id,
            "System.AreaPath": rendered.project,
            "System.TeamProject": rendered.project,
            "System.IterationPath": revision.iteration,
            "System.WorkItemType": rendered.type,
            "System.State": revision.state,
            "System.Reason": revision.reason,
            "System.CreatedDate": azure_time(rendered.revisions[0].at),
            "System.CreatedBy": who(item.reporter),
            "System.ChangedDate": azure_time(revision.at),
            "System.ChangedBy": who(revision.by),
            "System.CommentCount": 0,
            "System.Title": item.title,
            "Microsoft.VSTS.Common.StateChangeDate": azure_time(revision.state_changed or revision.at),
            "Microsoft.VSTS.Common.Priority": 2,
        }
        if revision.assignee:
            out["System.AssignedTo"] = who(revision.assignee)
        if item.labels:
            out["System.Tags"] = "; ".join(item.labels)
        if revision.activated:
            out["Microsoft.VSTS.Common.ActivatedDate"] = azure_time(revision.activated)
        if revision.resolved:
            out["Microsoft.VSTS.Common.ResolvedDate"] = azure_time(revision.resolved)
        if revision.closed:
            out["Microsoft.VSTS.Common.ClosedDate"] = azure_time(revision.closed)
        if revision.points is not None:
            out[STORY_POINTS] = float(revision.points)
        if revision.blocked is not None:
            out[BLOCKED_FIELD] = revision.blocked
        out["System.Description"] = "<div>" + item.description.replace("\n", "<br>") + "</div>"
        if latest and item.type != "epic":
            out.update(self._dmt(item, org, base_url))
        return out

    def _dmt(self, item: WorkItem, org: str, base_url: str) -> dict[str, Any]:
        dmt = item.dmt
        values: dict[str, Any] = {
            "ac_quality": AC_QUALITY.get(dmt.ac_quality) if dmt.ac_quality else None,
            "unit_test_task": dmt.unit_test_task,
            "unit_test_status": UNIT_TEST_STATUS.get(dmt.unit_test_status) if dmt.unit_test_status else None,
            "coverage_pct": dmt.coverage_pct,
            "pr_links": "\n".join(dmt.pr_links) if dmt.pr_links else None,
            "ci_evidence": dmt.ci_evidence,
            "reviewer_signoff": dmt.reviewer_signoff,
            "exception": dmt.exception,
            "exception_reason": dmt.exception_reason,
            "exception_approver": (
                identity(self.world, dmt.exception_approver, org, base_url) if dmt.exception_approver else None
            ),
            "exception_expires": azure_date(dmt.exception_expires) if dmt.exception_expires else None,
        }
        return {DMT_FIELDS[name]: value for name, value in values.items() if value is not None}

    def url(self, item_id: int, project: str, org: str, base_url: str) -> str:
        return f"{base_url}/{org}/{project_guid(self.tenant, project)}/_apis/wit/workItems/{item_id}"

    def relations(self, rendered: RenderedItem, org: str, base_url: str) -> list[dict[str, Any]]:
        item = rendered.item
        out: list[dict[str, Any]] = []

        def link(rel: str, other: int, name: str, comment: str | None = None) -> dict[str, Any]:
            target = self.items.get(other)
            attributes: dict[str, Any] = {"isLocked": False, "name": name}
            if comment:
                attributes["comment"] = comment
            project = target.project if target else rendered.project
            return {"rel": rel, "url": self.url(other, project, org, base_url), "attributes": attributes}

        if item.parent_id is not None:
            out.append(link("System.LinkTypes.Hierarchy-Reverse", item.parent_id, "Parent"))
        for child in self.children.get(item.id, []):
            out.append(link("System.LinkTypes.Hierarchy-Forward", child, "Child"))
        if item.caused_by_id is not None:
            out.append(link("System.LinkTypes.Related", item.caused_by_id, "Related", "Caused by"))
        for bug in self.caused.get(item.id, []):
            out.append(link("System.LinkTypes.Related", bug, "Related", "Caused by"))
        git_project = project_guid(self.tenant, self.git_project)
        for index, pr_id in enumerate(item.pull_request_ids):
            found = self.pull_requests.get(pr_id)
            if found is None:
                continue
            repo, azure_pr = found
            linked = azure_time(rendered.revisions[-1].at)
            out.append(
                {
                    "rel": "ArtifactLink",
                    "url": f"vstfs:///Git/PullRequestId/{git_project}%2F{repo}%2F{azure_pr}",
                    "attributes": {
                        "authorizedDate": linked,
                        "id": 100_000 + item.id * 10 + index,
                        "resourceCreatedDate": linked,
                        "resourceModifiedDate": linked,
                        "revisedDate": "9999-01-01T00:00:00Z",
                        "name": "Pull Request",
                    },
                }
            )
        return out

    def work_item(
        self,
        rendered: RenderedItem,
        revision: Revision,
        org: str,
        base_url: str,
        *,
        fields: list[str] | None = None,
        expand: str | None = None,
        broken: bool = False,
    ) -> dict[str, Any]:
        """A work item as ``/workitems`` and ``/workitemsbatch`` return it."""
        values = self.fields(rendered, revision, org, base_url)
        values["System.Rev"] = revision.rev
        if fields is not None:
            wanted = {name.lower() for name in fields}
            values = {name: value for name, value in values.items() if name.lower() in wanted}
        elif expand not in ("all", "fields"):
            del values["System.Rev"], values["System.Id"]  # only $expand=all lists them
        if broken:
            values["System.ChangedDate"] = "sometime last week"
            values.pop("System.WorkItemType", None)
        url = self.url(rendered.item.id, rendered.project, org, base_url)
        out: dict[str, Any] = {"id": rendered.item.id, "rev": revision.rev, "fields": values}
        if expand in ("relations", "all"):
            relations = self.relations(rendered, org, base_url)
            if relations:
                out["relations"] = relations
        if expand in ("links", "all") or fields is None:
            out["_links"] = {
                "self": {"href": url},
                "workItemUpdates": {"href": f"{url}/updates"},
                "workItemRevisions": {"href": f"{url}/revisions"},
                "html": {"href": f"{base_url}/{org}/{rendered.project}/_workitems/edit/{rendered.item.id}"},
            }
        out["url"] = url
        return out

    # -- iterations and people ----------------------------------------------------------

    def iterations(self, project: Project, org: str, base_url: str) -> list[dict[str, Any]]:
        out = []
        team = team_id(self.tenant, project)
        guid = project_guid(self.tenant, project_name(project))
        for sprint in sorted((s for s in self.world.sprints if s.project_key == project.key), key=lambda s: s.start):
            start, finish = iteration_dates(sprint)
            ident = iteration_id(self.tenant, sprint)
            out.append(
                {
                    "id": ident,
                    "name": sprint.name,
                    "path": iteration_path(sprint),
                    "attributes": {
                        "startDate": azure_date(start),
                        "finishDate": azure_date(finish),
                        "timeFrame": time_frame(sprint, self.world.now),
                    },
                    "url": f"{base_url}/{org}/{guid}/{team}/_apis/work/teamsettings/iterations/{ident}",
                }
            )
        return out

    def members(self, project: Project) -> list[Person]:
        return [person for person in self.world.people if person.team == project.team]
