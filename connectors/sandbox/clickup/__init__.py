"""ClickUp API v2 simulator: a tenant's planning world as a ClickUp Workspace (see ``api.py``)."""

from connectors.sandbox.clickup.api import handle
from connectors.sandbox.clickup.workspace import ClickUpWorkspace, ms, sprint_list_name

__all__ = ["ClickUpWorkspace", "handle", "ms", "sprint_list_name"]
