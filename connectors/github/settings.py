"""Endpoints, page sizes and retry limits of the GitHub connector."""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
USER_AGENT = "pulse-github-connector"

# Endpoints (relative to the base URL).
ORG_REPOS = "/orgs/{org}/repos"
REPO = "/repos/{org}/{repo}"
PULLS = "/repos/{full_name}/pulls"
PULL_REVIEWS = "/repos/{full_name}/pulls/{number}/reviews"
PULL_COMMITS = "/repos/{full_name}/pulls/{number}/commits"
CHECK_RUNS = "/repos/{full_name}/commits/{sha}/check-runs"

#: GitHub's maximum ``per_page``.
PAGE_SIZE = 100
#: ``/pulls/{n}/commits`` lists at most this many commits.
MAX_PULL_COMMITS = 250

# Timeouts of every request, in seconds: (connect, read).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0

# Retries. 500/502/503/504 and network errors: exponential backoff from SERVER_ERROR_BACKOFF,
# at most MAX_ATTEMPTS attempts in all.
MAX_ATTEMPTS = 5
SERVER_ERROR_BACKOFF = 2.0
MAX_BACKOFF = 120.0
# Secondary rate limit without ``retry-after``: wait at least this long, then back off
# exponentially (GitHub: "wait at least one minute").
SECONDARY_LIMIT_WAIT = 60.0
# Rate-limit answers (primary or secondary) retried before giving up on a request.
MAX_RATE_LIMIT_RETRIES = 8
# Longest single wait for a rate limit (``retry-after`` or ``x-ratelimit-reset``); beyond
# it the load fails with GitHubRateLimitError instead of sleeping for an hour.
MAX_RATE_LIMIT_WAIT = 900.0
# Added to the wait until ``x-ratelimit-reset`` against clock skew.
RESET_MARGIN = 1.0
