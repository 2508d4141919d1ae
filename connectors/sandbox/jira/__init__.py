"""Jira Cloud simulator: the tenant's planning world behind Jira's REST and agile APIs.

The sandbox server routes every path under ``/jira`` to :func:`api.handle`; a Jira source's
base URL is ``{sandbox.url}/jira``, its credentials any email with the API token
``atl_sandbox_<tenant>`` (``connectors.sandbox.tools.token_for("jira", tenant)``).
See README.md in this folder.
"""

from connectors.sandbox.jira.api import EMBEDDED_HISTORIES, handle
from connectors.sandbox.jira.render import CALLER_TIME_ZONE, SPRINT_FIELD, STORY_POINTS_FIELD, Site

__all__ = ["CALLER_TIME_ZONE", "EMBEDDED_HISTORIES", "SPRINT_FIELD", "STORY_POINTS_FIELD", "Site", "handle"]
