"""Endpoints, page sizes, incremental overlap and timeouts of the Azure DevOps Git connector."""

from __future__ import annotations

API_VERSION = "7.1"
USER_AGENT = "pulse-azure-devops-git-connector"

# Endpoints, relative to the organisation URL (``https://dev.azure.com/<org>``).
REPOSITORIES = "/{project}/_apis/git/repositories"
REPOSITORY = "/{project}/_apis/git/repositories/{repository}"
PULL_REQUESTS = "/{project}/_apis/git/repositories/{repository}/pullrequests"
PULL_REQUEST = "/{project}/_apis/git/repositories/{repository}/pullRequests/{id}"
PULL_REQUEST_THREADS = PULL_REQUEST + "/threads"
PULL_REQUEST_COMMITS = PULL_REQUEST + "/commits"
PULL_REQUEST_WORK_ITEMS = PULL_REQUEST + "/workitems"

#: ``$top`` of pull request lists (Azure DevOps allows at most 1000; more is a 400).
PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000
#: ``$top`` of a pull request's commits (continued with ``x-ms-continuationtoken``).
COMMITS_PAGE_SIZE = 100
#: Pull request lists cut ``description`` to this many characters; longer ones are re-read whole.
LIST_DESCRIPTION_LIMIT = 400
#: Completed and abandoned pull requests closed this long before the cursor are still listed
#: (their stored state tells whether they changed), against clock skew between Azure's nodes.
CURSOR_OVERLAP_SECONDS = 600

# Timeouts of every request, in seconds: (connect, read).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
