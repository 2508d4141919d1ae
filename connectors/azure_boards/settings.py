"""Endpoints, limits and page sizes of the Azure Boards connector (Azure DevOps REST 7.1).

Paths are relative to the organisation URL (``https://dev.azure.com/<org>``); project and team
names are URL-quoted into them by the client.
"""

from __future__ import annotations

from datetime import UTC, datetime

API_VERSION = "7.1"
USER_AGENT = "pulse-azure-boards-connector"

# Endpoints.
PROJECTS = "/_apis/projects"
PROJECT = "/_apis/projects/{project}"
TEAM_MEMBERS = "/_apis/projects/{project}/teams/{team}/members"
FIELDS = "/_apis/wit/fields"
PICKLIST = "/_apis/work/processes/lists/{picklist_id}"
WIQL = "/{project}/_apis/wit/wiql"
WORK_ITEMS_BATCH = "/{project}/_apis/wit/workitemsbatch"
REVISIONS = "/{project}/_apis/wit/reporting/workitemrevisions"
WORK_ITEM_TYPES = "/{project}/_apis/wit/workitemtypes"
TYPE_STATES = "/{project}/_apis/wit/workitemtypes/{type}/states"
ITERATIONS = "/{project}/{team}/_apis/work/teamsettings/iterations"

#: Azure's hard limits: ids one WIQL query may return (VS402337), ids per hydration call (VS403474).
WIQL_CAP = 20_000
BATCH_SIZE = 200
#: Revisions per page of the reporting feed (Azure allows up to 1000).
REVISIONS_PAGE_SIZE = 1000
#: Team members per page (``$top``); paging stops at the first short page.
MEMBERS_PAGE_SIZE = 100

#: Re-read this many seconds before the stored ``System.ChangedDate`` cursor; merge de-duplicates.
CURSOR_OVERLAP_SECONDS = 60.0
#: Where the WIQL date bisection starts when there is no cursor (no work item is older).
EARLIEST_CHANGE = datetime(2000, 1, 1, tzinfo=UTC)
#: A WIQL slice narrower than this is split by id instead of by date.
SMALLEST_DATE_SLICE_SECONDS = 1.0
#: Work item ids are 32-bit integers.
MAX_WORK_ITEM_ID = 2**31 - 1

#: Fields every work item and revision row reads, besides the mapped ones.
BLOCKED_FIELD = "Microsoft.VSTS.CMMI.Blocked"
DEFAULT_STORY_POINTS_FIELD = "Microsoft.VSTS.Scheduling.StoryPoints"
DEFAULT_SPRINT_FIELD = "System.IterationPath"
REVISION_FIELDS = (
    "System.Id",
    "System.Rev",
    "System.ChangedDate",
    "System.ChangedBy",
    "System.WorkItemType",
    "System.TeamProject",
    "System.State",
    "System.Reason",
    "System.AssignedTo",
    "System.IterationPath",
)

# Timeouts of every request, in seconds: (connect, read).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
#: Longest pause taken on a throttling hint (``X-RateLimit-Delay``) before the next request.
MAX_THROTTLE_DELAY = 30.0
