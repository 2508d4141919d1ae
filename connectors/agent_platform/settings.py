"""Endpoints, page sizes and retry limits of the agent-platform connector."""

from __future__ import annotations

USER_AGENT = "pulse-agent-platform-connector"

# Endpoints (relative to the base URL).
RUNS = "/agent-platform/v1/runs"
RUN = "/agent-platform/v1/runs/{run_id}"

#: The API's maximum ``page_size``.
MAX_PAGE_SIZE = 200
PAGE_SIZE = 200

#: ``updated_after`` is sent this many seconds before the stored cursor, so that runs written
#: with a slightly late ``updated_at`` (clock skew, slow commits upstream) are not missed;
#: dlt's incremental drops what was loaded before, and merge on ``run_id`` absorbs the rest.
CURSOR_OVERLAP_SECONDS = 300
