"""Endpoints, page sizes, the incremental overlap and retry limits of the Jira connector."""

from __future__ import annotations

USER_AGENT = "pulse-jira-connector"

# Endpoints (relative to the site's base URL, e.g. https://acme.atlassian.net).
MYSELF = "/rest/api/3/myself"
FIELDS = "/rest/api/3/field"
STATUSES = "/rest/api/3/status"
USERS = "/rest/api/3/users/search"
PROJECT_SEARCH = "/rest/api/3/project/search"
SEARCH = "/rest/api/3/search/jql"
ISSUE_CHANGELOG = "/rest/api/3/issue/{issue}/changelog"
BULK_CHANGELOG = "/rest/api/3/changelog/bulkfetch"
BOARDS = "/rest/agile/1.0/board"
BOARD_SPRINTS = "/rest/agile/1.0/board/{board}/sprint"

#: ``maxResults`` asked of ``/search/jql`` (Jira's maximum; it may answer fewer a page, e.g.
#: with ``expand=changelog``: paging follows ``nextPageToken`` whatever the page holds).
PAGE_SIZE = 100
AGILE_PAGE_SIZE = 50
PROJECT_PAGE_SIZE = 50
USERS_PAGE_SIZE = 100
CHANGELOG_PAGE_SIZE = 100
#: Issues per ``/changelog/bulkfetch`` request and histories per page of it.
BULK_ISSUES = 1000
BULK_PAGE_SIZE = 1000

#: Fields every issue row needs, besides the mapped custom fields.
ISSUE_FIELDS = (
    "summary",
    "issuetype",
    "project",
    "status",
    "assignee",
    "reporter",
    "created",
    "updated",
    "resolutiondate",
    "resolution",
    "labels",
    "parent",
    "issuelinks",
    "priority",
)

#: The incremental query starts this long before the cursor: JQL has minute precision and
#: Jira's search index may show a change a little late. Rows seen before are recognised by
#: (id, updated) and not loaded twice.
CURSOR_OVERLAP_MINUTES = 5
#: When the account hides its time zone, JQL dates are written in UTC and widened by this much
#: (the largest UTC offset), so the window misses nothing whatever zone Jira reads them in.
UNKNOWN_ZONE_MARGIN_HOURS = 14

# Timeouts of every request, in seconds: (connect, read).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# Retries: 500/502/503/504 and network errors with exponential backoff, at most MAX_ATTEMPTS
# attempts; 429 waits for Retry-After (Jira always sends it), at most MAX_RATE_LIMIT_RETRIES times.
MAX_ATTEMPTS = 5
SERVER_ERROR_BACKOFF = 2.0
MAX_BACKOFF = 120.0
MAX_RATE_LIMIT_RETRIES = 8
MAX_RATE_LIMIT_WAIT = 900.0
#: A 429 without Retry-After: wait at least this long, doubling each time.
RATE_LIMIT_WAIT = 10.0
